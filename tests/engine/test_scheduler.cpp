// Scheduler: a request's tokens and per-step logits are the same alone, batched with 7 others,
// chunk-prefilled, preempted and recomputed, or resumed from the prefix cache; cancellation frees
// blocks within one step; FIFO admission; requests larger than the cache fail with an error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/context.h"
#include "engine/generate.h"
#include "engine/model/model.h"
#include "engine/sched/scheduler.h"

namespace fs = std::filesystem;
using namespace tessera::engine;

namespace {

std::shared_ptr<Model> load(const char* name, const char* kernels = "") {
  LoadOptions lo;
  lo.print_plan = false;
  if (*kernels) lo.kernels.parse(kernels);
  return Model::load((fs::path(TESSERA_GOLDEN_DIR) / "models" / name).string(), lo);
}

std::shared_ptr<Model> tiny() {
  static auto m = load("tiny-q8_0.gguf");
  return m;
}

// The same model with the reference kernels, whose results do not depend on how many tokens a step
// holds: a recomputed prompt then gives bit-identical logits, so even sampled text must match.
std::shared_ptr<Model> tiny_ref_kernels() {
  static auto m = load("tiny-q8_0.gguf", "*=ref");
  return m;
}

ContextOptions opts(int n_seq, int n_ctx = 256, int kv_tokens = 0) {
  ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_seq_max = n_seq;
  co.kv_tokens = kv_tokens;
  co.n_batch = 256;
  co.print_plan = false;
  return co;
}

GenerateParams greedy(int n) {
  GenerateParams p;
  p.max_tokens = n;
  p.sampler.temperature = 0.0f;
  p.stop_at_eog = false;
  return p;
}

std::vector<int32_t> random_prompt(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, 4095);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// A request under observation: its logits rows, streamed text and final result.
struct Observed {
  std::shared_ptr<Request> req;
  std::vector<std::vector<float>> rows;
  std::string streamed;
};

std::shared_ptr<Observed> observe(Scheduler& s, std::vector<int32_t> prompt, const GenerateParams& p) {
  auto o = std::make_shared<Observed>();
  Observed* raw = o.get();
  o->req = std::make_shared<Request>(s.context().model().tokenizer(), std::move(prompt), p,
                                     [raw](std::string_view t, int32_t) {
                                       raw->streamed += t;
                                       return true;
                                     });
  o->req->set_logits_hook([raw](std::span<const float> l) { raw->rows.emplace_back(l.begin(), l.end()); });
  s.submit(o->req);
  return o;
}

// The reference: the request alone in its own context.
std::shared_ptr<Observed> run_alone(const std::vector<int32_t>& prompt, const GenerateParams& p,
                                    std::shared_ptr<Model> model = tiny()) {
  Context ctx(std::move(model), opts(1));
  Scheduler s(ctx);
  auto o = observe(s, prompt, p);
  s.run_until_idle();
  return o;
}

struct Diff {
  double max_nmse = 0;
  double top1 = 1;  // share of rows with the same argmax
};

Diff compare(const Observed& a, const Observed& b) {
  Diff d;
  EXPECT_EQ(a.rows.size(), b.rows.size());
  const size_t n = std::min(a.rows.size(), b.rows.size());
  int same = 0;
  for (size_t r = 0; r < n; ++r) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.rows[r].size(); ++i) {
      const double x = a.rows[r][i], y = b.rows[r][i];
      num += (x - y) * (x - y);
      den += x * x;
    }
    d.max_nmse = std::max(d.max_nmse, num / std::max(den, 1e-30));
    same += argmax(a.rows[r]) == argmax(b.rows[r]) ? 1 : 0;
  }
  d.top1 = n ? static_cast<double>(same) / static_cast<double>(n) : 1.0;
  return d;
}

// Golden thresholds (tests/golden/README.md) where the batch changes the kernels used.
constexpr double kGoldenNmse = 6e-4;
constexpr double kExactNmse = 1e-6;  // same kernels: chunking and the prefix cache change nothing

// The gap between the two largest logits of a row, and the largest difference between two rows.
double top2_gap(const std::vector<float>& row) {
  float a = -INFINITY, b = -INFINITY;
  for (float v : row) {
    if (v > a) b = a, a = v;
    else if (v > b) b = v;
  }
  return static_cast<double>(a) - b;
}
double max_abs_diff(const std::vector<float>& x, const std::vector<float>& y) {
  double m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) m = std::max(m, std::abs(static_cast<double>(x[i]) - y[i]));
  return m;
}

void expect_same(const Observed& ref, const Observed& got, double max_nmse, const char* what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(got.req->done());
  EXPECT_EQ(got.streamed, got.req->result().text);
  const auto& want = ref.req->result().tokens;
  const auto& have = got.req->result().tokens;
  size_t split = 0;  // the first generated token that differs
  while (split < want.size() && split < have.size() && want[split] == have[split]) ++split;
  if (max_nmse > kExactNmse && split < want.size() && split < have.size() && split < ref.rows.size() &&
      split < got.rows.size()) {
    // Where the batch changes the kernels, greedy decoding may take the other side of a near-tie: the
    // two best logits of that row closer than the kernels' difference. Past it the texts differ, so
    // only the rows up to it are compared; anything but a near-tie is a fault.
    const double gap = top2_gap(ref.rows[split]), noise = max_abs_diff(ref.rows[split], got.rows[split]);
    std::printf("[%s] greedy split at token %zu: top-2 gap %.3g, row difference %.3g\n", what, split, gap, noise);
    EXPECT_LE(gap, 2 * noise) << "tokens differ at " << split << " without a near-tie";
    Observed a = ref, b = got;
    a.rows.resize(split + 1);
    b.rows.resize(split + 1);
    const Diff d = compare(a, b);
    std::printf("[%s] rows %zu (to the split) max per-row NMSE %.3g\n", what, split + 1, d.max_nmse);
    EXPECT_LE(d.max_nmse, max_nmse);
    return;
  }
  EXPECT_EQ(have, want);
  EXPECT_EQ(got.req->result().text, ref.req->result().text);
  const Diff d = compare(ref, got);
  ::testing::Test::RecordProperty(std::string(what) + "_max_nmse", std::to_string(d.max_nmse));
  std::printf("[%s] rows %zu max per-row NMSE %.3g top-1 %.3f\n", what, got.rows.size(), d.max_nmse, d.top1);
  EXPECT_LE(d.max_nmse, max_nmse);
  EXPECT_EQ(d.top1, 1.0);
}

const std::vector<int32_t> kPrompt = {4112, 750, 282, 579, 263, 580, 66, 72, 1445, 982, 257, 4114, 198, 4113};

TEST(Scheduler, AloneMatchesGenerate) {
  auto o = run_alone(kPrompt, greedy(12));
  Context ctx(tiny(), opts(1));
  auto g = generate(ctx, kPrompt, greedy(12));
  EXPECT_EQ(o->req->result().tokens, g.tokens);
  EXPECT_EQ(o->req->result().text, g.text);
  EXPECT_EQ(o->req->result().finish, FinishReason::Length);
  EXPECT_EQ(o->rows.size(), 12u);
  EXPECT_GT(o->req->result().ttft_ms, 0.0);
}

TEST(Scheduler, BatchedWithSevenOthers) {
  const GenerateParams p = greedy(16);
  auto ref = run_alone(kPrompt, p);
  Context ctx(tiny(), opts(8));
  Scheduler s(ctx);
  std::vector<std::shared_ptr<Observed>> others;
  for (int i = 0; i < 3; ++i) others.push_back(observe(s, random_prompt(5 + 9 * i, 100 + i), greedy(4 + 5 * i)));
  auto got = observe(s, kPrompt, p);
  for (int i = 3; i < 7; ++i) others.push_back(observe(s, random_prompt(5 + 9 * i, 100 + i), greedy(4 + 5 * i)));
  StepStats st;
  ASSERT_TRUE(s.step(&st));
  EXPECT_EQ(st.n_admitted, 8);  // all prefilled in one pass
  s.run_until_idle();
  expect_same(*ref, *got, kGoldenNmse, "batched8");
  for (auto& o : others) {  // each of the others matches its own run alone too
    auto alone = run_alone(std::vector<int32_t>(o->req->prompt().begin(), o->req->prompt().end()), o->req->params());
    expect_same(*alone, *o, kGoldenNmse, "batched8-other");
  }
}

TEST(Scheduler, ChunkedPrefill) {
  const GenerateParams p = greedy(12);
  const std::vector<int32_t> prompt = random_prompt(90, 7);
  auto ref = run_alone(prompt, p);
  {  // alone, the prompt in chunks of 16
    Context ctx(tiny(), opts(1));
    SchedulerOptions so;
    so.max_batch_tokens = 16;
    Scheduler s(ctx, so);
    auto got = observe(s, prompt, p);
    StepStats st;
    s.step(&st);
    EXPECT_EQ(st.n_prefill, 16);
    s.run_until_idle();
    expect_same(*ref, *got, kExactNmse, "chunked16");
  }
  {  // next to a decoding stream: decode first, the prompt fills the rest of a budget of 8
    Context ctx(tiny(), opts(2));
    SchedulerOptions so;
    so.max_batch_tokens = 8;
    Scheduler s(ctx, so);
    auto first = observe(s, kPrompt, greedy(40));
    auto ref_first = run_alone(kPrompt, greedy(40));
    s.step();  // kPrompt (14 tokens) needs two steps of 8
    s.step();
    auto got = observe(s, prompt, p);
    int max_step_tokens = 0;
    while (!s.idle()) {
      StepStats st;
      s.step(&st);
      if (first->req->done() || got->req->done()) continue;
      max_step_tokens = std::max(max_step_tokens, st.n_decode + st.n_prefill);
      EXPECT_GE(st.n_decode, 1);  // the running stream decodes every step
    }
    EXPECT_LE(max_step_tokens, 8);
    expect_same(*ref, *got, kGoldenNmse, "chunked-beside-decode");
    expect_same(*ref_first, *first, kGoldenNmse, "decode-beside-chunks");
  }
}

TEST(Scheduler, PreemptedAndRecomputed) {
  // 4 blocks of 32 tokens for 4 requests that each grow to 3 blocks: preemption is unavoidable.
  GenerateParams p = greedy(60);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back(random_prompt(20 + i, 300 + i));
  Context ctx(tiny(), opts(4, 256, 4 * 32));
  Scheduler s(ctx);
  std::vector<std::shared_ptr<Observed>> obs;
  for (auto& pr : prompts) obs.push_back(observe(s, pr, p));
  int preempted = 0;
  while (!s.idle()) {
    StepStats st;
    s.step(&st);
    preempted += st.n_preempted;
    ctx.kv_cache().check();
  }
  EXPECT_GT(preempted, 0);
  int n_preempted_requests = 0;
  for (size_t i = 0; i < obs.size(); ++i) {
    EXPECT_EQ(obs[i]->req->result().finish, FinishReason::Length) << obs[i]->req->result().error;
    n_preempted_requests += obs[i]->req->result().n_preempted > 0 ? 1 : 0;
    auto alone = run_alone(prompts[i], p);
    expect_same(*alone, *obs[i], kGoldenNmse, "preempted");
  }
  EXPECT_GT(n_preempted_requests, 0);
  EXPECT_EQ(ctx.n_free_blocks(), ctx.kv_cache().n_blocks());
}

TEST(Scheduler, PreemptionKeepsSamplerState) {
  // Seeded sampling at temperature 1: a preempted request continues its random stream and penalty
  // window, so it draws the same tokens as when it runs alone.
  GenerateParams p;
  p.max_tokens = 50;
  p.stop_at_eog = false;
  p.sampler.temperature = 1.0f;
  p.sampler.repeat_penalty = 1.3f;
  p.sampler.seed = 42;
  // Sampling at temperature 1 flips a token wherever a draw lands within the kernels' difference of a
  // boundary, so this runs on kernels that give the same logits in any batch (ref).
  Context ctx(tiny_ref_kernels(), opts(3, 256, 4 * 32));
  Scheduler s(ctx);
  std::vector<std::shared_ptr<Observed>> obs;
  for (int i = 0; i < 3; ++i) obs.push_back(observe(s, random_prompt(30, 500 + i), p));
  s.run_until_idle();
  int n_preempted = 0;
  for (int i = 0; i < 3; ++i) {
    n_preempted += obs[i]->req->result().n_preempted;
    auto alone = run_alone(random_prompt(30, 500 + i), p, tiny_ref_kernels());
    EXPECT_EQ(obs[i]->req->result().tokens, alone->req->result().tokens) << i;
    EXPECT_EQ(obs[i]->req->result().text, alone->req->result().text) << i;
    EXPECT_EQ(obs[i]->streamed, alone->streamed) << i;  // no token text emitted twice
  }
  EXPECT_GT(n_preempted, 0);
}

TEST(Scheduler, ResumedFromPrefixCache) {
  const GenerateParams p = greedy(12);
  const std::vector<int32_t> shared = random_prompt(100, 11);
  std::vector<int32_t> a = shared, b = shared;
  for (int32_t t : random_prompt(10, 12)) a.push_back(t);
  for (int32_t t : random_prompt(7, 13)) b.push_back(t);
  auto ref = run_alone(b, p);
  Context ctx(tiny(), opts(1));
  Scheduler s(ctx);
  auto first = observe(s, a, p);
  s.run_until_idle();
  EXPECT_EQ(first->req->result().n_prompt_cached, 0);
  auto got = observe(s, b, p);
  s.run_until_idle();
  EXPECT_EQ(got->req->result().n_prompt_cached, 96);  // 3 full blocks of the 100 shared tokens
  expect_same(*ref, *got, kExactNmse, "prefix-cache");
  // The same prompt again: its 3 full blocks come from the cache again.
  auto again = observe(s, b, p);
  s.run_until_idle();
  EXPECT_GE(again->req->result().n_prompt_cached, 96);
  expect_same(*ref, *again, kExactNmse, "prefix-cache-repeat");
}

TEST(Scheduler, CancelFreesBlocksWithinOneStep) {
  Context ctx(tiny(), opts(2));
  Scheduler s(ctx);
  const int n_blocks = ctx.kv_cache().n_blocks();
  const int a = s.submit(random_prompt(70, 21), greedy(100));
  const int b = s.submit(random_prompt(40, 22), greedy(100));
  for (int i = 0; i < 5; ++i) s.step();
  ASSERT_EQ(s.n_running(), 2);
  std::thread([&] { EXPECT_TRUE(s.cancel(b)); }).join();  // from another thread
  StepStats st;
  s.step(&st);
  EXPECT_EQ(st.n_decode, 1);
  EXPECT_TRUE(s.request(b)->done());
  EXPECT_EQ(s.request(b)->result().finish, FinishReason::Cancelled);
  EXPECT_EQ(s.request(b)->result().n_generated, 5);
  EXPECT_EQ(ctx.n_past(1), 0);  // b's sequence (admitted second) holds nothing
  const int held_a = (ctx.n_past(0) + kKvBlock - 1) / kKvBlock;
  EXPECT_EQ(ctx.n_free_blocks(), n_blocks - held_a);
  s.cancel(a);
  s.step(&st);
  EXPECT_EQ(st.n_decode, 0);
  EXPECT_EQ(s.request(a)->result().finish, FinishReason::Cancelled);
  EXPECT_EQ(ctx.n_free_blocks(), n_blocks);
  EXPECT_TRUE(s.idle());
  EXPECT_FALSE(s.cancel(12345));
  ctx.kv_cache().check();
}

TEST(Scheduler, CancelWhileWaiting) {
  Context ctx(tiny(), opts(1));
  Scheduler s(ctx);
  const int a = s.submit(kPrompt, greedy(5));
  const int b = s.submit(kPrompt, greedy(5));
  s.cancel(b);
  s.run_until_idle();
  EXPECT_EQ(s.request(a)->result().finish, FinishReason::Length);
  EXPECT_EQ(s.request(b)->result().finish, FinishReason::Cancelled);
  EXPECT_EQ(s.request(b)->result().n_generated, 0);
}

TEST(Scheduler, FifoAdmissionNoStarvation) {
  Context ctx(tiny(), opts(2));
  Scheduler s(ctx);
  std::vector<int> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(s.submit(random_prompt(5 + (i * 7) % 40, 900 + i), greedy(1 + (i * 5) % 13)));
  std::vector<int> finished;
  while (!s.idle()) {
    s.step();
    for (int id : ids)
      if (s.request(id)->done() && std::find(finished.begin(), finished.end(), id) == finished.end()) finished.push_back(id);
    EXPECT_LE(s.n_running(), 2);
  }
  EXPECT_EQ(s.admission_log(), ids);
  EXPECT_EQ(finished.size(), 20u);
  for (int id : ids) EXPECT_EQ(s.request(id)->result().finish, FinishReason::Length);
}

TEST(Scheduler, TooLargeForTheCacheFailsClearly) {
  Context ctx(tiny(), opts(2, 256, 2 * 32));  // 64 tokens of KV
  Scheduler s(ctx);
  const int big = s.submit(random_prompt(100, 31), greedy(4));       // prompt alone exceeds the cache
  const int grows = s.submit(random_prompt(40, 32), greedy(60));     // exceeds it while generating
  const int fine = s.submit(random_prompt(10, 33), greedy(8));
  s.run_until_idle();
  const auto& rb = s.request(big)->result();
  EXPECT_EQ(rb.finish, FinishReason::Error);
  EXPECT_NE(rb.error.find("whole cache"), std::string::npos) << rb.error;
  const auto& rg = s.request(grows)->result();
  EXPECT_EQ(rg.finish, FinishReason::Error);
  EXPECT_NE(rg.error.find("whole cache"), std::string::npos) << rg.error;
  EXPECT_GT(rg.n_generated, 0);
  EXPECT_EQ(s.request(fine)->result().finish, FinishReason::Length);
  EXPECT_EQ(ctx.n_free_blocks(), ctx.kv_cache().n_blocks());

  Context small(tiny(), opts(1, 16));
  Scheduler s2(small);
  const int over = s2.submit(random_prompt(20, 34), greedy(4));
  const int fills = s2.submit(random_prompt(10, 35), greedy(100));
  s2.run_until_idle();
  EXPECT_EQ(s2.request(over)->result().finish, FinishReason::Error);
  EXPECT_NE(s2.request(over)->result().error.find("context"), std::string::npos);
  EXPECT_EQ(s2.request(fills)->result().finish, FinishReason::Length);
  EXPECT_EQ(s2.request(fills)->result().n_generated, 7);  // 10 + 6 fed = 16 = n_ctx, 7 sampled
}

TEST(Scheduler, StopStringsAndDeadline) {
  Context ctx(tiny(), opts(2));
  auto full = generate(ctx, kPrompt, greedy(16));
  ctx.clear();
  ASSERT_GE(full.text.size(), 8u);
  GenerateParams p = greedy(16);
  p.stop = {full.text.substr(full.text.size() / 2, 3)};
  Scheduler s(ctx);
  auto stopped = observe(s, kPrompt, p);
  auto late = std::make_shared<Request>(tiny()->tokenizer(), kPrompt, greedy(16));
  late->set_deadline(Request::Clock::now());
  s.submit(late);
  s.run_until_idle();
  Context ctx2(tiny(), opts(1));
  auto g = generate(ctx2, kPrompt, p);
  EXPECT_EQ(stopped->req->result().finish, FinishReason::Stop);
  EXPECT_EQ(stopped->req->result().text, g.text);
  EXPECT_EQ(stopped->streamed, g.text);
  EXPECT_EQ(late->result().finish, FinishReason::Length);
  EXPECT_EQ(late->result().n_generated, 0);
}

}  // namespace

namespace {

TEST(Scheduler, InvalidRequestsFailWithoutThrowing) {
  Context ctx(tiny(), opts(2));
  Scheduler s(ctx);
  const int bad = s.submit(std::vector<int32_t>{1, 2, 999999}, greedy(4));
  const int zero = s.submit(kPrompt, greedy(0));
  const int ok = s.submit(kPrompt, greedy(3));
  s.run_until_idle();
  EXPECT_EQ(s.request(bad)->result().finish, FinishReason::Error);
  EXPECT_NE(s.request(bad)->result().error.find("out of range"), std::string::npos);
  EXPECT_EQ(s.request(zero)->result().finish, FinishReason::Length);
  EXPECT_EQ(s.request(zero)->result().n_generated, 0);
  EXPECT_EQ(s.request(ok)->result().n_generated, 3);
  Context c2(tiny(), opts(1));
  EXPECT_EQ(generate(c2, kPrompt, greedy(0)).n_generated, 0);  // as before: max_tokens 0 samples nothing
}

}  // namespace
