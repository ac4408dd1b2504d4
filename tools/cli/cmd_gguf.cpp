// tessera gguf (placeholder until its issue lands).
#include "engine/core/error.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
int cmd_gguf(int, char**) { throw_error("'gguf' is not built yet"); }
}  // namespace tessera::cli
