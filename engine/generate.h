// The generation loop: evaluate a prompt, then sample and feed tokens until an end-of-generation
// token, a stop string, the token budget or the caller's cancellation.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/context.h"
#include "engine/sample/sampler.h"

namespace tessera::engine {

struct GenerateParams {
  int max_tokens = 128;            // generated tokens at most (< 0: until the context is full)
  std::vector<std::string> stop;   // stop strings (not included in the text); like the text, they
                                   // are read as UTF-8 with invalid bytes as U+FFFD
  SamplerParams sampler;
  bool stop_at_eog = true;         // end on the tokenizer's end-of-generation tokens
};

enum class FinishReason { Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct GenerateResult {
  FinishReason finish = FinishReason::Length;
  std::string text;                 // generated text (stop string and EOG token excluded)
  std::vector<int32_t> tokens;      // generated ids (the EOG token included when it ended)
  std::string stop_matched;         // the stop string that ended it (as read), if any
  int n_prompt = 0;
  int n_generated = 0;
  double prompt_ms = 0;             // prompt evaluation
  double gen_ms = 0;                // everything after the prompt
  double prompt_cpu_ms = 0;         // process CPU time (all threads) of the same phases: shows how
  double gen_cpu_ms = 0;            // much of the wall time was this process's when cores are shared
};

// Called with each piece of text that is safe to show (held back while it could still be the start
// of a stop string or an incomplete UTF-8 sequence) and the token that completed it (-1 for the
// final flush of held text). Return false to cancel.
using TokenCallback = std::function<bool(std::string_view text, int32_t token)>;

// Appends prompt to sequence seq (after whatever it already holds) and generates.
GenerateResult generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                        const TokenCallback& on_token = {}, int seq = 0);

}  // namespace tessera::engine
