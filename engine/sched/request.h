// A generation request advanced one token at a time: its prompt, parameters, sampler state, streaming
// detokenizer, stop-string holder, limits (max tokens, deadline), cancel flag, text callback and
// result. generate() and the Scheduler both drive requests through Request::advance().
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace tessera::engine {

struct GenerateParams {
  int max_tokens = 128;            // generated tokens at most (< 0: until the context is full)
  std::vector<std::string> stop;   // stop strings (not included in the text); like the text, they
                                   // are read as UTF-8 with invalid bytes as U+FFFD
  SamplerParams sampler;
  bool stop_at_eog = true;         // end on the tokenizer's end-of-generation tokens
};

// Stop: an end-of-generation token or a stop string. Length: max tokens, the context or the deadline.
// Cancelled: cancel() or the callback returned false. Error: the request cannot run (GenerateResult::error).
enum class FinishReason { Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct GenerateResult {
  FinishReason finish = FinishReason::Length;
  std::string text;                 // generated text (stop string and EOG token excluded)
  std::vector<int32_t> tokens;      // generated ids (the EOG token included when it ended)
  std::string stop_matched;         // the stop string that ended it (as read), if any
  std::string error;                // why it failed (finish == Error)
  int n_prompt = 0;
  int n_generated = 0;
  int n_prompt_cached = 0;          // prompt tokens adopted from the prefix cache at first admission
  int n_preempted = 0;              // times the scheduler freed its KV and recomputed it later
  double ttft_ms = 0;               // submission (construction) to the first sampled token
  double prompt_ms = 0;             // prompt evaluation (from admission to the first token's logits)
  double gen_ms = 0;                // everything after the prompt
  double prompt_cpu_ms = 0;         // process CPU time (all threads) of the same phases: shows how
  double gen_cpu_ms = 0;            // much of the wall time was this process's when cores are shared
};

// Called with each piece of text that is safe to show (held back while it could still be the start
// of a stop string or an incomplete UTF-8 sequence) and the token that completed it (-1 for the
// final flush of held text). Return false to cancel.
using TokenCallback = std::function<bool(std::string_view text, int32_t token)>;

class Request {
 public:
  using Clock = std::chrono::steady_clock;

  Request(const tok::Tokenizer& tok, std::vector<int32_t> prompt, GenerateParams params,
          TokenCallback on_text = {});
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // Limits and hooks, set before the request runs.
  void set_deadline(Clock::time_point t) { deadline_ = t; }  // finishes with Length once past it
  // Test hook: sees every logits row the request samples from, before sampling.
  void set_logits_hook(std::function<void(std::span<const float>)> hook) { logits_hook_ = std::move(hook); }

  // Thread-safe: asks the request to stop; whoever drives it finishes it (Cancelled) at its next step.
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const { return cancel_.load(std::memory_order_relaxed); }

  // The prompt starts evaluating now (admission): starts the prompt timer once.
  void begin_prompt();
  // One step: the logits row after the last fed token -> sample -> token -> text piece -> stop
  // checks (EOG, stop strings, callback, cancel flag, max tokens, deadline). Returns true while the
  // request wants another step; then last_token() must be fed to the model before the next call.
  bool advance(std::span<const float> logits);
  // Ends the request (no-op when done): flushes held text unless cancelled or failed, fixes timings.
  void finish(FinishReason reason, std::string error = {});

  bool done() const { return done_; }
  int32_t last_token() const { return res_.tokens.empty() ? -1 : res_.tokens.back(); }
  std::span<const int32_t> prompt() const { return prompt_; }
  // Tokens the model must hold before the next advance(): prompt + every generated token.
  std::vector<int32_t> context_tokens() const;
  const GenerateParams& params() const { return params_; }
  const GenerateResult& result() const { return res_; }
  GenerateResult& mutable_result() { return res_; }  // scheduler bookkeeping (cache hits, preemptions)

 private:
  const tok::Tokenizer* tok_;
  std::vector<int32_t> prompt_;
  GenerateParams params_;
  std::vector<std::string> stops_;  // the non-empty stop strings
  TokenCallback on_text_;
  std::function<void(std::span<const float>)> logits_hook_;
  Sampler sampler_;
  tok::StreamDecoder dec_;
  std::string text_;    // everything decoded so far (minus a matched stop string)
  size_t emitted_ = 0;  // bytes of text_ already passed to on_text_
  std::atomic<bool> cancel_{false};
  bool done_ = false;
  bool prompt_started_ = false, gen_started_ = false;
  Clock::time_point t_submit_, t_prompt_, t_gen_;
  Clock::time_point deadline_ = Clock::time_point::max();
  double c_prompt_ = 0, c_gen_ = 0;  // process CPU ms at the phase starts
  GenerateResult res_;
};

}  // namespace tessera::engine
