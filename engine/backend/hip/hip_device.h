// The HIP backend's one device interface, with two implementations: `hip` (hip_runtime.cpp: the ROCm
// runtime loaded with dlopen, the embedded code objects loaded with hipModuleLoadData) and `hip-emu`
// (hip_emu_device.cpp: host memory, the same kernels compiled for the host and run by the HIP-on-CPU
// emulator of kernels/hip/emu). The stream (hip_stream.cpp) is written once against this interface.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tessera::engine::hipdev {

// One kernel launch: its name (the code object symbol), grid and block, its argument struct
// (kernels/hip/hip_args.h), and the global-memory bytes it reads and writes (for the emulator's counts).
struct Launch {
  const char* kernel = nullptr;
  uint32_t grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
  const void* args = nullptr;
  size_t args_bytes = 0;
  uint32_t shared_bytes = 0;  // dynamic shared memory per block
  uint64_t bytes_read = 0, bytes_written = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual void* alloc(size_t bytes) = 0;  // zeroed device memory
  virtual void free(void* p) = 0;
  // Host <-> device copies wait for the work issued before them; device copies and launches are queued.
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void launch(const Launch& l) = 0;
  virtual void sync() = 0;
  // Whether the loaded code object has the gfx12 WMMA kernels (gfx1200 / gfx1201; the emulator runs them).
  virtual bool has_wmma_gfx12() const { return false; }
};

// Device memory owned by a shared pointer (buffers, weights).
struct Mem {
  std::shared_ptr<Device> dev;
  void* ptr = nullptr;
  size_t bytes = 0;
  Mem(std::shared_ptr<Device> d, size_t n) : dev(std::move(d)), ptr(dev->alloc(n)), bytes(n) {}
  ~Mem() { dev->free(ptr); }
  Mem(const Mem&) = delete;
  Mem& operator=(const Mem&) = delete;
};

// The ROCm runtime's device `index` (-1: the first); throws tessera::Error saying why there is none
// (no libamdhip64.so, no device, no code object for its architecture).
std::shared_ptr<Device> open_runtime_device(int index);
// The devices `tessera devices` lists, or why there are none (throws).
std::string list_runtime_devices();
// The emulator (always available where the build has Boost.Context).
std::shared_ptr<Device> open_emu_device();

}  // namespace tessera::engine::hipdev
