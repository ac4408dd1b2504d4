// tessera run (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_run(int, char**) { throw_error("'run' is not built yet"); }
}  // namespace tessera::cli
