// EngineService: jobs from other threads through the scheduler thread — streamed text equals the
// result, cancel frees the sequence and its KV blocks, a full queue and a drain say Overloaded, a
// drain past its deadline cancels what is left. Tiny random-weight model, random prompt tokens.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "server/engine_service.h"

namespace tessera::server {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const engine::Model> tiny_model() {
  static auto m = [] {
    engine::LoadOptions lo;
    lo.print_plan = false;
    return std::shared_ptr<const engine::Model>(engine::Model::load(TESSERA_GOLDEN_DIR "/models/tiny-q8_0.gguf", lo));
  }();
  return m;
}

EngineOptions options(int parallel, int max_queue = 64, int n_ctx = 256) {
  EngineOptions o;
  o.context.n_ctx = n_ctx;
  o.context.n_seq_max = parallel;
  o.context.n_threads = 1;
  o.context.print_plan = false;
  o.max_queue = max_queue;
  return o;
}

JobSpec random_job(std::mt19937& rng, int n_prompt, int max_tokens) {
  JobSpec j;
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(tiny_model()->config().n_vocab) - 1);
  for (int i = 0; i < n_prompt; ++i) j.prompt.push_back(tok(rng));
  j.params.max_tokens = max_tokens;
  j.params.stop_at_eog = false;
  j.params.sampler.seed = rng();
  return j;
}

// Reads a job to its end; returns the streamed text and the result.
std::pair<std::string, engine::GenerateResult> drain_job(Job& job) {
  std::string text;
  Job::Update u;
  for (int i = 0; i < 3000; ++i) {
    if (job.wait(u, 10ms)) {
      text += u.text;
      if (u.done) return {text, u.result};
    }
  }
  ADD_FAILURE() << "job did not end";
  return {text, {}};
}

void expect_idle(const EngineService& eng) {
  for (int i = 0; i < 200; ++i) {
    const EngineSnapshot s = eng.snapshot();
    if (s.running == 0 && s.waiting == 0 && s.kv_blocks_used == 0) return;
    std::this_thread::sleep_for(5ms);
  }
  const EngineSnapshot s = eng.snapshot();
  FAIL() << "still in use: running " << s.running << ", waiting " << s.waiting << ", kv blocks " << s.kv_blocks_used;
}

TEST(EngineService, ConcurrentJobsStreamTheirWholeText) {
  EngineService eng(tiny_model(), options(2));
  std::mt19937 rng(1);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(eng.submit(random_job(rng, 5 + 7 * i, 12)));
  for (auto& job : jobs) {
    auto [text, r] = drain_job(*job);
    EXPECT_EQ(r.finish, engine::FinishReason::Length) << r.error;
    EXPECT_EQ(r.n_generated, 12);
    EXPECT_EQ(text, r.text);
  }
  expect_idle(eng);
}

TEST(EngineService, CancelFreesTheSequenceAndItsBlocks) {
  EngineService eng(tiny_model(), options(2));
  std::mt19937 rng(2);
  auto job = eng.submit(random_job(rng, 40, 100000));
  Job::Update u;
  while (!job->wait(u, 10ms) || (u.text.empty() && !u.done)) {
  }
  ASSERT_FALSE(u.done) << "ended before any text: " << engine::finish_reason_name(u.result.finish) << " "
                       << u.result.error << " after " << u.result.n_generated;
  EXPECT_GT(eng.snapshot().kv_blocks_used, 0);
  job->cancel();
  auto [text, r] = drain_job(*job);
  EXPECT_EQ(r.finish, engine::FinishReason::Cancelled);
  EXPECT_LT(r.n_generated, 240);
  expect_idle(eng);
}

TEST(EngineService, FullQueueIsOverloaded) {
  EngineService eng(tiny_model(), options(1, 1));
  std::mt19937 rng(3);
  auto a = eng.submit(random_job(rng, 8, 100000));  // runs
  auto b = eng.submit(random_job(rng, 8, 100000));  // waits
  EXPECT_THROW(eng.submit(random_job(rng, 8, 4)), Overloaded);
  a->cancel();
  b->cancel();
  EXPECT_EQ(drain_job(*a).second.finish, engine::FinishReason::Cancelled);
  EXPECT_EQ(drain_job(*b).second.finish, engine::FinishReason::Cancelled);
  expect_idle(eng);
  EXPECT_NO_THROW(drain_job(*eng.submit(random_job(rng, 8, 4))));
}

TEST(EngineService, DrainFinishesWorkThenRefusesNewJobs) {
  EngineService eng(tiny_model(), options(2));
  std::mt19937 rng(4);
  auto job = eng.submit(random_job(rng, 10, 30));
  EXPECT_EQ(eng.drain(Clock::now() + 60s), 0);
  auto [text, r] = drain_job(*job);
  EXPECT_EQ(r.finish, engine::FinishReason::Length);
  EXPECT_EQ(r.n_generated, 30);
  EXPECT_THROW(eng.submit(random_job(rng, 4, 4)), Overloaded);
}

TEST(EngineService, DrainPastItsDeadlineCancels) {
  EngineService eng(tiny_model(), options(2, 64, 16384));  // room for more than 50 ms of generation
  std::mt19937 rng(5);
  auto job = eng.submit(random_job(rng, 10, 100000));
  EXPECT_EQ(eng.drain(Clock::now() + 50ms), 1);
  EXPECT_EQ(drain_job(*job).second.finish, engine::FinishReason::Cancelled);
  expect_idle(eng);
}

TEST(EngineService, BadTokenIdsFailTheJobNotTheEngine) {
  EngineService eng(tiny_model(), options(2));
  std::mt19937 rng(6);
  JobSpec bad = random_job(rng, 4, 4);
  bad.prompt[1] = 1 << 30;
  auto [text, r] = drain_job(*eng.submit(std::move(bad)));
  EXPECT_EQ(r.finish, engine::FinishReason::Error);
  EXPECT_FALSE(r.error.empty());
  auto [t2, ok] = drain_job(*eng.submit(random_job(rng, 4, 4)));
  EXPECT_EQ(ok.n_generated, 4);
  expect_idle(eng);
}

}  // namespace
}  // namespace tessera::server
