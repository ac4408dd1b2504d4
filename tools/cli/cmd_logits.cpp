// tessera logits (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_logits(int, char**) { throw_error("'logits' is not built yet"); }
}  // namespace tessera::cli
