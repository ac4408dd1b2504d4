// tessera mkmodel (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_mkmodel(int, char**) { throw_error("'mkmodel' is not built yet"); }
}  // namespace tessera::cli
