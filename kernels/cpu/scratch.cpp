// Per-thread kernel scratch (see scratch.h).
#include "kernels/cpu/scratch.h"

#include <cstdlib>
#include <memory>

namespace tessera::ops {

namespace {
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
}  // namespace

uint8_t* cpu_kernel_scratch(int slot, size_t bytes) {
  thread_local std::unique_ptr<uint8_t, FreeDeleter> bufs[4];
  thread_local size_t caps[4] = {0, 0, 0, 0};
  if (caps[slot] < bytes) {
    const size_t n = (bytes + 63) / 64 * 64;
    bufs[slot].reset(static_cast<uint8_t*>(std::aligned_alloc(64, n)));
    caps[slot] = n;
  }
  return bufs[slot].get();
}

}  // namespace tessera::ops
