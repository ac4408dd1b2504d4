// The generation loop (see generate.h): one Request driven over one sequence of a Context.
#include "engine/generate.h"

#include <vector>

#include "core/error.h"

namespace tessera::engine {

GenerateResult generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                        const TokenCallback& on_token, int seq) {
  if (prompt.empty()) throw_error("generate: empty prompt");
  Request req(ctx.model().tokenizer(), std::vector<int32_t>(prompt.begin(), prompt.end()), params, on_token);
  req.begin_prompt();
  std::span<const float> logits = ctx.eval(prompt, false, seq);
  const int n_ctx = ctx.options().n_ctx;
  while (req.advance(logits)) {
    if (ctx.n_past(seq) >= n_ctx) {  // context full: length
      req.finish(FinishReason::Length);
      break;
    }
    const int32_t next[1] = {req.last_token()};
    logits = ctx.eval(next, false, seq);
  }
  return req.result();
}

}  // namespace tessera::engine
