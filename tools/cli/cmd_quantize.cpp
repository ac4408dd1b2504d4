// tessera quantize (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_quantize(int, char**) { throw_error("'quantize' is not built yet"); }
}  // namespace tessera::cli
