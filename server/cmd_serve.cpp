// tessera serve (placeholder until its issue lands).
#include "core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_serve(int, char**) { throw_error("'serve' is not built yet"); }
}  // namespace tessera::cli
