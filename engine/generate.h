// The one-request generation loop: evaluate a prompt, then sample and feed tokens until an
// end-of-generation token, a stop string, the token budget or the caller's cancellation. The
// per-token step is Request::advance (engine/sched/request.h), shared with the Scheduler.
#pragma once
#include <cstdint>
#include <span>

#include "engine/context.h"
#include "engine/sched/request.h"

namespace tessera::engine {

// Appends prompt to sequence seq (after whatever it already holds) and generates.
GenerateResult generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                        const TokenCallback& on_token = {}, int seq = 0);

}  // namespace tessera::engine
