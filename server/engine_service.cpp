// EngineService: the engine thread, job hand-off and the published snapshot (see engine_service.h).
#include "server/engine_service.h"

#include <algorithm>

#include "core/error.h"

namespace tessera::server {

bool Job::wait(Update& u, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || (done_ && !taken_done_); });
  u.text = std::move(pending_);
  pending_.clear();
  u.done = done_;
  if (done_ && !taken_done_) {
    u.result = result_;
    taken_done_ = true;
    return true;
  }
  return !u.text.empty();
}

void Job::cancel() {
  cancelled_.store(true);
  if (req_) req_->cancel();
}

EngineService::EngineService(std::shared_ptr<const engine::Model> model, const EngineOptions& opts)
    : model_(std::move(model)), opts_(opts) {
  // The Context is built on the engine thread's behalf here so that a bad size fails the constructor.
  auto ctx = std::make_shared<engine::Context>(model_, opts_.context);
  auto sched = std::make_shared<engine::Scheduler>(*ctx, opts_.scheduler);
  thread_ = std::thread([this, ctx, sched] { loop(*sched); });
}

EngineService::~EngineService() {
  {
    std::lock_guard lock(mu_);
    draining_ = true;
  }
  drain(Clock::now());
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<Job> EngineService::submit(JobSpec spec) {
  if (spec.prompt.empty()) throw_error("empty prompt");
  auto job = std::make_shared<Job>();
  job->t_max_predict_ms_ = spec.t_max_predict_ms;
  Job* raw = job.get();
  // Runs on the engine thread for every safe piece of text.
  auto on_text = [raw](std::string_view text, int32_t) {
    if (text.empty()) return !raw->cancelled();
    {
      std::lock_guard lock(raw->mu_);
      raw->pending_.append(text);
    }
    raw->cv_.notify_all();
    if (raw->t_max_predict_ms_ > 0 && !raw->saw_newline_ && text.find('\n') != std::string_view::npos) {
      raw->saw_newline_ = true;
      raw->req_->set_deadline(Clock::now() + std::chrono::milliseconds(raw->t_max_predict_ms_));
    }
    return !raw->cancelled();
  };
  job->req_ = std::make_shared<engine::Request>(tokenizer(), std::move(spec.prompt), std::move(spec.params),
                                                on_text);
  job->req_->set_deadline(spec.deadline);
  {
    std::lock_guard lock(mu_);
    if (draining_) throw Overloaded("the server is shutting down");
    const int queued = std::max(0, active_ - opts_.context.n_seq_max);
    if (queued >= opts_.max_queue)
      throw Overloaded("the request queue is full (" + std::to_string(opts_.max_queue) + " waiting)");
    ++active_;
    incoming_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

int EngineService::drain(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  draining_ = true;
  idle_cv_.wait_until(lock, deadline, [&] { return active_ == 0; });
  if (active_ == 0) return 0;
  const int n = active_;
  lock.unlock();
  cv_.notify_all();  // the engine thread cancels everything once draining and past the deadline
  lock.lock();
  stop_ = true;  // tells the loop to cancel all and finish them
  cv_.notify_all();
  idle_cv_.wait(lock, [&] { return active_ == 0; });
  return n;
}

EngineSnapshot EngineService::snapshot() const {
  std::lock_guard lock(mu_);
  return snap_;
}

void EngineService::publish(const engine::Context& ctx, const engine::Scheduler& sched, int64_t steps) {
  EngineSnapshot s;
  s.running = sched.n_running();
  s.waiting = sched.n_waiting();
  s.kv_blocks_total = ctx.kv_cache().n_blocks();
  s.kv_blocks_cached = ctx.kv_cache().n_cached();
  s.kv_blocks_used = s.kv_blocks_total - ctx.n_free_blocks();
  s.steps = steps;
  std::lock_guard lock(mu_);
  s.waiting += static_cast<int>(incoming_.size());
  snap_ = s;
}

void EngineService::loop(engine::Scheduler& sched) {
  std::vector<std::shared_ptr<Job>> live;
  int64_t steps = 0;
  for (;;) {
    std::vector<std::shared_ptr<Job>> fresh;
    bool stopping = false;
    {
      std::lock_guard lock(mu_);
      fresh.swap(incoming_);
      stopping = stop_;
    }
    for (auto& job : fresh) {
      job->id_ = sched.submit(job->req_);
      if (job->cancelled()) sched.cancel(job->id_);
      live.push_back(std::move(job));
    }
    if (stopping) {
      for (auto& job : live) job->cancel();
    }
    bool worked = false;
    try {
      worked = sched.step();
    } catch (const std::exception& e) {  // a failed forward pass fails the jobs in it, not the server
      // (cancel() too, so that the next step retires their sequences)
      for (auto& job : live) {
        job->req_->finish(engine::FinishReason::Error, std::string("engine: ") + e.what());
        job->req_->cancel();
      }
    }
    if (worked) ++steps;
    // Hand finished jobs their results.
    int ended = 0;
    for (size_t i = live.size(); i-- > 0;) {
      Job& job = *live[i];
      if (!job.req_->done()) continue;
      {
        std::lock_guard lock(job.mu_);
        job.result_ = job.req_->result();
        job.done_ = true;
      }
      job.cv_.notify_all();
      sched.forget(job.id_);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      ++ended;
    }
    publish(sched.context(), sched, steps);
    std::unique_lock lock(mu_);
    if (ended > 0) {
      active_ -= ended;
      idle_cv_.notify_all();
    }
    if (stop_ && live.empty() && incoming_.empty()) break;
    if (!worked && incoming_.empty()) {
      cv_.wait_for(lock, std::chrono::milliseconds(live.empty() ? 200 : 5),
                   [&] { return !incoming_.empty() || stop_; });
    }
  }
}

}  // namespace tessera::server
