// The `hip-emu` device: host memory, and launches run synchronously by the HIP-on-CPU emulator with
// the kernels of kernels/hip compiled for the host (found by name, as hipModuleGetFunction would).
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "engine/backend/hip/hip_device.h"
#include "kernels/hip/emu/hip_emu.h"

namespace tessera::hip {
int emu_kernels_linked();  // kernels/hip/kernels.hip
}

namespace tessera::engine::hipdev {

namespace {

class EmuDevice final : public Device {
 public:
  EmuDevice() { (void)hip::emu_kernels_linked(); }
  void* alloc(size_t bytes) override {
    const size_t n = (bytes + 63) / 64 * 64 + 64;
    void* p = std::aligned_alloc(64, n);
    if (!p) throw_error("hip-emu: cannot allocate {} MiB", bytes >> 20);
    std::memset(p, 0, n);
    return p;
  }
  void free(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void launch(const Launch& l) override {
    const hip_emu::KernelFn fn = hip_emu::find_kernel(l.kernel);
    if (!fn) throw_error("hip-emu: no kernel '{}'", l.kernel);
    hip_emu::Launch e;
    e.name = l.kernel;
    e.grid = {l.grid[0], l.grid[1], l.grid[2]};
    e.block = {l.block[0], l.block[1], l.block[2]};
    e.dynamic_shared = l.shared_bytes;
    e.bytes_read = l.bytes_read;
    e.bytes_written = l.bytes_written;
    const void* args = l.args;
    hip_emu::launch(e, [fn, args] { fn(args); });
  }
  void sync() override {}
  bool has_wmma_gfx12() const override { return true; }  // the emulator runs the gfx12 paths
};

}  // namespace

std::shared_ptr<Device> open_emu_device() { return std::make_shared<EmuDevice>(); }

}  // namespace tessera::engine::hipdev
