// tessera devices: the Vulkan devices `--backend vulkan --device N` can use, with what the shaders
// look at (memory, subgroup size, integer dot product, cooperative matrix shapes). Exit 1 with the
// reason when there are none.
#include <cstdio>
#include <cstring>

#include "engine/backend/backend.h"
#include "tools/cli/commands.h"

namespace tessera::cli {

int cmd_devices(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::puts("usage: tessera devices\n\nLists the Vulkan devices (the index is --device N of run, logits, bench).");
    return 0;
  }
  std::fputs(engine::vulkan_devices().c_str(), stdout);
  return 0;
}

}  // namespace tessera::cli
