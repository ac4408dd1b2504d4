// tessera tokenize (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_tokenize(int, char**) { throw_error("'tokenize' is not built yet"); }
}  // namespace tessera::cli
