// The scheduler: continuous batching of many Requests over one Context. Each step() is one
// Context::eval_batch that carries the decode token of every running request and then chunks of
// prompts being prefilled, under a token budget (chunked prefill: a long prompt never stalls running
// streams). Admission is FIFO when a sequence slot is free and the prompt's KV blocks fit (prefix
// cache first: reuse_prefix adopts cached blocks). When KV runs out the most recently admitted
// request is preempted: its sequence is cleared (its full blocks stay cached) and it goes back to
// the head of the queue to recompute prompt + generated tokens later, its sampler and text state
// untouched. Cancellation frees a sequence at the next step.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/context.h"
#include "engine/sched/request.h"

namespace tessera::engine {

struct SchedulerOptions {
  int max_batch_tokens = 0;  // tokens per step, decode + prefill (0: the context's n_batch)
  // Blocks kept free per running sequence when admitting (room to decode before a preemption).
  int reserve_blocks_per_seq = 1;
};

// What one step() did.
struct StepStats {
  int n_decode = 0;     // sequences that fed one generated token
  int n_prefill = 0;    // prompt (or recompute) tokens fed
  int n_admitted = 0;   // requests admitted this step
  int n_preempted = 0;  // requests preempted this step
  int n_finished = 0;   // requests that finished this step (any reason)
  double ms = 0;        // wall time of the step
};

// Threads: submit(), cancel() and request() may be called from any thread; step(), run_until_idle()
// and the other members from the one thread that drives the scheduler. A request's callback runs on
// that thread; read its result() there, or once it is done and the driver has moved on.
class Scheduler {
 public:
  explicit Scheduler(Context& ctx, const SchedulerOptions& opts = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request (thread-safe); returns its id (0, 1, 2 ... in submission order).
  int submit(std::shared_ptr<Request> req);
  // Convenience: builds the Request with the context's tokenizer.
  int submit(std::vector<int32_t> prompt, const GenerateParams& params, TokenCallback on_text = {});
  // Thread-safe: the request stops at the next step (finish reason cancelled; its blocks are freed
  // then). False for an unknown id.
  bool cancel(int id);

  // One forward pass: retires cancelled requests, admits, plans decode + prefill under the budget
  // (preempting when KV runs out), runs it and advances every request whose input was complete.
  // Returns false (and does nothing) when there was nothing to do.
  bool step(StepStats* stats = nullptr);
  void run_until_idle();
  bool idle() const;

  std::shared_ptr<Request> request(int id) const;  // null for an unknown id (or one forgotten)
  void forget(int id);  // drops the scheduler's reference to a finished request (a server's bookkeeping)
  int n_running() const { return static_cast<int>(running_.size()); }
  int n_waiting() const;
  // Admission order so far: request ids in the order they were first admitted.
  const std::vector<int>& admission_log() const { return admit_log_; }
  Context& context() { return ctx_; }

 private:
  struct Slot {  // a running request on a sequence of the context
    int id = -1;
    std::shared_ptr<Request> req;
    int seq = -1;
    std::vector<int32_t> pending;  // tokens to feed before the next advance()
    size_t fed = 0;                // of pending
    bool decoding = false;         // pending is one generated token (else a prompt or recompute)
  };
  struct Waiting {
    int id;
    std::shared_ptr<Request> req;
    bool admitted_before = false;  // a preempted request (not logged or counted again)
  };

  void take_submissions();
  void admit(StepStats& st);
  void retire(size_t slot_index, StepStats& st);  // releases the sequence, drops the slot
  void preempt(size_t slot_index, StepStats& st);
  // Finishes (Error) a request that can never run: bad token ids, longer than n_ctx or the cache.
  bool fail_if_invalid(const Waiting& w, std::span<const int32_t> toks);
  void fail(size_t slot_index, StepStats& st);  // a lone request the whole cache cannot hold

  Context& ctx_;
  SchedulerOptions opts_;
  int budget_;
  mutable std::mutex mu_;  // guards incoming_ and all_
  std::vector<Waiting> incoming_;
  std::unordered_map<int, std::shared_ptr<Request>> all_;
  int next_id_ = 0;
  std::deque<Waiting> waiting_;
  std::vector<Slot> running_;
  std::vector<int> free_seqs_;
  std::vector<int> admit_log_;
  // Scratch of step().
  std::vector<SeqInput> inputs_;
  std::vector<size_t> input_slot_;
};

}  // namespace tessera::engine
