// tessera bench (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_bench(int, char**) { throw_error("'bench' is not built yet"); }
}  // namespace tessera::cli
