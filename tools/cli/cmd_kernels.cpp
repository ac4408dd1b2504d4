// tessera kernels (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_kernels(int, char**) { throw_error("'kernels' is not built yet"); }
}  // namespace tessera::cli
