// What the host backends (cpu, ref) share: host memory as a Buffer (64-byte aligned, zeroed) and
// weights as zero-copy views of the mapped file.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "engine/backend/backend.h"

namespace tessera::engine {

class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t bytes) : Buffer(bytes) {
    const size_t n = (bytes + 63) / 64 * 64;
    ptr_ = static_cast<uint8_t*>(std::aligned_alloc(64, n == 0 ? 64 : n));
    if (!ptr_) throw_error("cannot allocate {} MiB of host memory", bytes >> 20);
    std::memset(ptr_, 0, n == 0 ? 64 : n);
  }
  ~HostBuffer() override { std::free(ptr_); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  uint8_t* data() const { return ptr_; }

 private:
  uint8_t* ptr_ = nullptr;
};

// The host memory behind a buffer of a host backend.
inline float* f32(const Buffer& b) { return reinterpret_cast<float*>(static_cast<const HostBuffer&>(b).data()); }
inline int32_t* i32(const Buffer& b) { return reinterpret_cast<int32_t*>(static_cast<const HostBuffer&>(b).data()); }

// A weight of the mapped file as a host matrix (zero-copy) with its kernels bound for this device.
Matrix host_matrix(const gguf::TensorInfo& t, const ops::KernelPolicy& policy, const ops::DeviceCaps& caps);

// Memory and weights of a backend that computes on the host: buffers are host memory, weights stay
// in the mapped file; the backends differ in their KV layout and their ops (create_kv, create_stream).
class HostBackend : public Backend {
 public:
  explicit HostBackend(ops::Backend kind) { caps_ = ops::host_caps(kind); }
  std::unique_ptr<Buffer> alloc(size_t bytes) override { return std::make_unique<HostBuffer>(bytes); }
  Matrix upload_matrix(const gguf::TensorInfo& t, const ops::KernelPolicy& policy) override {
    return host_matrix(t, policy, caps_);
  }
  Vector upload_vector(const float* values, int64_t n) override { return Vector{values, n, nullptr}; }
  Table upload_table(const gguf::TensorInfo& t) override { return Table{&t, nullptr}; }
  void write(Buffer& b, const void* src, size_t bytes, size_t offset = 0) override {
    std::memcpy(static_cast<HostBuffer&>(b).data() + offset, src, bytes);
  }
  void read(const Buffer& b, void* dst, size_t bytes, size_t offset = 0) override {
    std::memcpy(dst, static_cast<const HostBuffer&>(b).data() + offset, bytes);
  }
};

std::shared_ptr<Backend> make_cpu_backend();  // cpu_backend.cpp
std::shared_ptr<Backend> make_ref_backend();  // ref_backend.cpp

}  // namespace tessera::engine
