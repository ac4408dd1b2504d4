// tessera devices: the Vulkan devices `--backend vulkan --device N` can use, with what the shaders
// look at (memory, subgroup size, integer dot product, cooperative matrix shapes), then the HIP devices
// of `--backend hip --device N`. For a backend without devices it prints why; exit 1 when neither has any.
#include <cstdio>
#include <cstring>
#include <exception>

#include "engine/backend/backend.h"
#include "tools/cli/commands.h"

namespace tessera::cli {

int cmd_devices(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::puts("usage: tessera devices\n\nLists the Vulkan and HIP devices (the index is --device N of run, logits, bench).");
    return 0;
  }
  int found = 0;
  try {
    std::fputs(engine::vulkan_devices().c_str(), stdout);
    ++found;
  } catch (const std::exception& e) {
    std::printf("vulkan: none (%s)\n", e.what());
  }
  try {
    std::fputs(engine::hip_devices().c_str(), stdout);
    ++found;
  } catch (const std::exception& e) {
    std::printf("hip: none (%s)\n", e.what());
  }
  return found > 0 ? 0 : 1;
}

}  // namespace tessera::cli
