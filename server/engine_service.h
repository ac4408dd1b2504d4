// The engine behind the HTTP front: one thread drives the Scheduler (continuous batching, prefix
// cache) over one Context; HTTP threads submit Jobs and read their text as it is generated. A Job
// is the HTTP side's handle on a scheduler Request: pieces of text pile up in it under a lock, the
// HTTP thread takes them (wait()), and cancel() frees the sequence at the next decode step.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/context.h"
#include "engine/model/model.h"
#include "engine/sched/request.h"
#include "engine/sched/scheduler.h"

namespace tessera::server {

using Clock = std::chrono::steady_clock;

// The service cannot take the job now (queue full, shutting down): the HTTP layer answers 503.
struct Overloaded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct JobSpec {
  std::vector<int32_t> prompt;
  engine::GenerateParams params;
  Clock::time_point deadline = Clock::time_point::max();  // finishes with Length once past it
  // Generation time limit that starts at the first newline generated (llama.cpp's /infill
  // t_max_predict_ms); 0: none.
  int t_max_predict_ms = 0;
};

class Job {
 public:
  struct Update {
    std::string text;               // pieces generated since the last wait()
    bool done = false;              // result is final
    engine::GenerateResult result;  // set when done
  };
  // Waits until there is new text, the job is done, or timeout; moves what there is into u.
  // Returns true when u holds something (text or the end).
  bool wait(Update& u, std::chrono::milliseconds timeout);
  void cancel();  // thread-safe; the sequence is freed at the next step
  int id() const { return id_; }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class EngineService;
  int id_ = -1;
  std::shared_ptr<engine::Request> req_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool done_ = false;
  bool taken_done_ = false;
  engine::GenerateResult result_;
  std::atomic<bool> cancelled_{false};
  // Engine-thread state for t_max_predict_ms.
  int t_max_predict_ms_ = 0;
  bool saw_newline_ = false;
};

// What the engine holds now (published after every step; read from any thread).
struct EngineSnapshot {
  int running = 0;         // sequences in use
  int waiting = 0;         // requests queued for a sequence
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;    // referenced by live sequences
  int kv_blocks_cached = 0;  // held only by the prefix cache (evictable)
  int64_t steps = 0;
};

struct EngineOptions {
  engine::ContextOptions context;
  engine::SchedulerOptions scheduler;
  int max_queue = 64;  // jobs waiting for a sequence before submit() throws Overloaded
};

class EngineService {
 public:
  EngineService(std::shared_ptr<const engine::Model> model, const EngineOptions& opts);
  ~EngineService();  // cancels what is left and joins the engine thread
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  // Queues a job (any thread). Throws Overloaded when the queue is full or the service is draining,
  // tessera::Error for a job that can never run (empty prompt).
  std::shared_ptr<Job> submit(JobSpec spec);

  // Stops taking jobs; waits until every job is done or the deadline passes, then cancels the rest
  // and waits for them to end. Returns the number of jobs cancelled that way.
  int drain(Clock::time_point deadline);

  EngineSnapshot snapshot() const;
  const engine::Model& model() const { return *model_; }
  const tok::Tokenizer& tokenizer() const { return model_->tokenizer(); }
  int n_ctx() const { return opts_.context.n_ctx; }
  int n_parallel() const { return opts_.context.n_seq_max; }

 private:
  void loop(engine::Scheduler& sched);
  void publish(const engine::Context& ctx, const engine::Scheduler& sched, int64_t steps);

  std::shared_ptr<const engine::Model> model_;
  EngineOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the engine thread (new job, cancel, stop)
  std::condition_variable idle_cv_;  // signals drain() when a job ends
  std::vector<std::shared_ptr<Job>> incoming_;  // submitted, not yet seen by the engine thread
  int active_ = 0;                              // submitted and not done
  bool draining_ = false;
  bool stop_ = false;
  EngineSnapshot snap_;
  std::thread thread_;
};

}  // namespace tessera::server
