// Scheduler: admission, the per-step plan (decode tokens, then prefill chunks under the budget and
// the free KV blocks), preemption of the newest request when KV runs out, and retirement.
#include "engine/sched/scheduler.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include <fmt/format.h>

namespace tessera::engine {

namespace {
int64_t blocks_for(int64_t tokens) { return (tokens + kKvBlock - 1) / kKvBlock; }
}  // namespace

Scheduler::Scheduler(Context& ctx, const SchedulerOptions& opts) : ctx_(ctx), opts_(opts) {
  budget_ = opts.max_batch_tokens > 0 ? opts.max_batch_tokens : ctx.options().n_batch;
  const int n_seq = ctx.options().n_seq_max;
  for (int s = n_seq - 1; s >= 0; --s) {
    if (ctx.n_past(s) != 0) throw_error("scheduler: sequence {} of the context is not empty", s);
    free_seqs_.push_back(s);  // popped from the back: sequence 0 first
  }
}

Scheduler::~Scheduler() = default;

int Scheduler::submit(std::shared_ptr<Request> req) {
  if (!req) throw_error("scheduler: submit of a null request");
  std::lock_guard<std::mutex> lock(mu_);
  const int id = next_id_++;
  all_.emplace(id, req);
  incoming_.push_back({id, std::move(req)});
  return id;
}

int Scheduler::submit(std::vector<int32_t> prompt, const GenerateParams& params, TokenCallback on_text) {
  return submit(std::make_shared<Request>(ctx_.model().tokenizer(), std::move(prompt), params, std::move(on_text)));
}

bool Scheduler::cancel(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = all_.find(id);
  if (it == all_.end()) return false;
  it->second->cancel();
  return true;
}

std::shared_ptr<Request> Scheduler::request(int id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = all_.find(id);
  return it == all_.end() ? nullptr : it->second;
}

void Scheduler::forget(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = all_.find(id);
  if (it != all_.end() && it->second->done()) all_.erase(it);
}

int Scheduler::n_waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(waiting_.size() + incoming_.size());
}

bool Scheduler::idle() const { return running_.empty() && n_waiting() == 0; }

void Scheduler::take_submissions() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Waiting& w : incoming_) waiting_.push_back(std::move(w));
  incoming_.clear();
}

bool Scheduler::fail_if_invalid(const Waiting& w, std::span<const int32_t> toks) {
  const size_t n_tokens = toks.size();
  const int n_vocab = ctx_.n_vocab();
  for (int32_t id : toks) {
    if (id < 0 || id >= n_vocab) {
      w.req->finish(FinishReason::Error, fmt::format("token id {} is out of range (vocabulary of {})", id, n_vocab));
      return true;
    }
  }
  const int n_ctx = ctx_.options().n_ctx;
  const int n_blocks = ctx_.kv_cache().n_blocks();
  if (static_cast<int64_t>(n_tokens) > n_ctx) {
    w.req->finish(FinishReason::Error, fmt::format("the prompt of {} tokens does not fit the context of {} tokens per sequence",
                                              n_tokens, n_ctx));
    return true;
  }
  if (blocks_for(static_cast<int64_t>(n_tokens)) > n_blocks) {
    w.req->finish(FinishReason::Error, fmt::format("the prompt of {} tokens needs {} KV blocks; the whole cache has {} ({} tokens)",
                                              n_tokens, blocks_for(static_cast<int64_t>(n_tokens)), n_blocks,
                                              int64_t{n_blocks} * kKvBlock));
    return true;
  }
  return false;
}

void Scheduler::admit(StepStats& st) {
  // Blocks the running requests will still take for the prompts they are prefilling, plus a reserve
  // per running request for decoding: an admission must leave those free.
  int64_t committed = 0;
  for (const Slot& s : running_)
    if (!s.decoding) committed += ctx_.blocks_needed(s.seq, static_cast<int>(s.pending.size() - s.fed));
  while (!waiting_.empty() && !free_seqs_.empty()) {
    Waiting& w = waiting_.front();
    std::vector<int32_t> toks = w.req->context_tokens();
    if (fail_if_invalid(w, toks)) {
      ++st.n_finished;
      waiting_.pop_front();
      continue;
    }
    const int seq = free_seqs_.back();
    const int held = ctx_.reuse_prefix(seq, toks);
    const int64_t need = ctx_.blocks_needed(seq, static_cast<int>(toks.size()) - held);
    const int64_t reserve = int64_t{opts_.reserve_blocks_per_seq} * static_cast<int64_t>(running_.size());
    if (!running_.empty() && need + committed + reserve > ctx_.n_free_blocks()) {
      ctx_.clear(seq);  // adopted blocks go back to the cache; the head waits (FIFO)
      break;
    }
    committed += need;
    free_seqs_.pop_back();
    Slot slot;
    slot.id = w.id;
    slot.req = std::move(w.req);
    slot.seq = seq;
    slot.pending.assign(toks.begin() + held, toks.end());
    if (!w.admitted_before) {
      slot.req->mutable_result().n_prompt_cached = held;
      admit_log_.push_back(w.id);
    }
    slot.req->begin_prompt();
    running_.push_back(std::move(slot));
    waiting_.pop_front();
    ++st.n_admitted;
  }
}

void Scheduler::retire(size_t i, StepStats& st) {
  Slot& s = running_[i];
  ctx_.clear(s.seq);
  free_seqs_.push_back(s.seq);
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
  ++st.n_finished;
}

void Scheduler::preempt(size_t i, StepStats& st) {
  Slot& s = running_[i];
  ctx_.clear(s.seq);  // full blocks stay cached: the recompute adopts what survives
  free_seqs_.push_back(s.seq);
  ++s.req->mutable_result().n_preempted;
  waiting_.push_front({s.id, std::move(s.req), true});
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
  ++st.n_preempted;
}

void Scheduler::fail(size_t i, StepStats& st) {
  Slot& s = running_[i];
  const int n_blocks = ctx_.kv_cache().n_blocks();
  s.req->finish(FinishReason::Error,
                fmt::format("KV cache exhausted: the request holds {} tokens and needs more than the whole cache "
                       "({} blocks, {} tokens)",
                       ctx_.n_past(s.seq), n_blocks, int64_t{n_blocks} * kKvBlock));
  retire(i, st);
}

bool Scheduler::step(StepStats* out) {
  const auto t0 = std::chrono::steady_clock::now();
  StepStats st;
  take_submissions();
  // Cancelled requests end here, before anything runs: their blocks are free for this step.
  for (size_t i = running_.size(); i-- > 0;) {
    if (running_[i].req->cancel_requested()) {
      running_[i].req->finish(FinishReason::Cancelled);
      retire(i, st);
    }
  }
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->req->cancel_requested()) {
      it->req->finish(FinishReason::Cancelled);
      ++st.n_finished;
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  admit(st);

  // Plan: every decoding request's token first, then prefill chunks (oldest first) in the rest of the
  // budget and of the free blocks. When the decode tokens do not fit, or the oldest request cannot
  // move at all, preempt the newest and plan again.
  for (;;) {
    inputs_.clear();
    input_slot_.clear();
    if (running_.empty()) break;
    int64_t free_left = ctx_.n_free_blocks();
    bool decode_fits = true;
    for (size_t i = 0; i < running_.size(); ++i) {
      Slot& s = running_[i];
      if (!s.decoding) continue;
      const int need = ctx_.blocks_needed(s.seq, 1);
      if (need > free_left) {
        decode_fits = false;
        break;
      }
      free_left -= need;
      inputs_.push_back({s.seq, std::span<const int32_t>(s.pending.data() + s.fed, 1), false});
      input_slot_.push_back(i);
    }
    bool oldest_stuck = false;
    if (decode_fits) {
      int64_t budget_left = budget_ - static_cast<int64_t>(inputs_.size());
      for (size_t i = 0; i < running_.size() && budget_left > 0; ++i) {
        Slot& s = running_[i];
        if (s.decoding) continue;
        int lo = 0, hi = static_cast<int>(std::min<int64_t>(budget_left, static_cast<int64_t>(s.pending.size() - s.fed)));
        while (lo < hi) {  // the longest chunk whose blocks fit
          const int mid = (lo + hi + 1) / 2;
          if (ctx_.blocks_needed(s.seq, mid) <= free_left) lo = mid;
          else hi = mid - 1;
        }
        if (lo == 0) {
          if (i == 0) oldest_stuck = true;
          continue;
        }
        free_left -= ctx_.blocks_needed(s.seq, lo);
        budget_left -= lo;
        inputs_.push_back({s.seq, std::span<const int32_t>(s.pending.data() + s.fed, static_cast<size_t>(lo)), false});
        input_slot_.push_back(i);
      }
    }
    if (decode_fits && !oldest_stuck && !inputs_.empty()) break;
    if (running_.size() == 1) fail(0, st);  // alone and still out of blocks: larger than the cache
    else preempt(running_.size() - 1, st);
  }

  if (!inputs_.empty()) {
    const std::span<const float> logits = ctx_.eval_batch(inputs_);
    const size_t V = static_cast<size_t>(ctx_.n_vocab());
    const int n_ctx = ctx_.options().n_ctx;
    std::vector<size_t> done;
    for (size_t k = 0; k < inputs_.size(); ++k) {
      Slot& s = running_[input_slot_[k]];
      if (s.decoding) ++st.n_decode;
      else st.n_prefill += static_cast<int>(inputs_[k].tokens.size());
      s.fed += inputs_[k].tokens.size();
      if (s.fed < s.pending.size()) continue;  // a prefill chunk: more to feed
      bool more = s.req->advance(logits.subspan(k * V, V));
      if (more && ctx_.n_past(s.seq) >= n_ctx) {  // context full: length
        s.req->finish(FinishReason::Length);
        more = false;
      }
      if (more) {
        s.pending.assign(1, s.req->last_token());
        s.fed = 0;
        s.decoding = true;
      } else {
        done.push_back(input_slot_[k]);
      }
    }
    std::sort(done.begin(), done.end());
    for (size_t j = done.size(); j-- > 0;) retire(done[j], st);
  }
  st.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (out) *out = st;
  return !inputs_.empty() || st.n_finished > 0 || st.n_preempted > 0 || st.n_admitted > 0;
}

void Scheduler::run_until_idle() {
  while (!idle()) {
    if (!step()) break;
  }
}

}  // namespace tessera::engine
