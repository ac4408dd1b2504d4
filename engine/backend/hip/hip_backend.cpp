// The `hip` and `hip-emu` backends: memory, weights (the file's bytes uploaded once; the stream picks
// kernels by weight type) and KV on a HIP device (hip_device.h). Their ops: hip_stream.cpp.
#include "engine/backend/hip/hip_backend.h"

#include "core/error.h"
#include "engine/backend/device_batch.h"
#include "engine/model/model.h"

namespace tessera::engine {

HipKv::HipKv(const std::shared_ptr<hipdev::Device>& dev, const KvShape& s) : shape(s) {
  if (s.n_layer <= 0 || s.n_head_kv <= 0 || s.head_dim <= 0 || s.n_blocks <= 0 || s.head_dim > 256)
    throw_error("KV cache: bad shape for hip (layers {}, kv heads {}, head dim {} (at most 256), blocks {})", s.n_layer,
                s.n_head_kv, s.head_dim, s.n_blocks);
  const size_t n = static_cast<size_t>(s.n_layer) * s.n_blocks * ops::kKvBlock * s.n_head_kv * s.head_dim;
  k = std::make_shared<hipdev::Mem>(dev, n * 2);
  v = std::make_shared<hipdev::Mem>(dev, n * 2);
}

namespace {

class HipBackend final : public Backend {
 public:
  explicit HipBackend(std::shared_ptr<hipdev::Device> dev) : dev_(std::move(dev)) { caps_ = ops::host_caps(ops::Backend::Hip); }

  std::unique_ptr<Buffer> alloc(size_t bytes) override {
    return std::make_unique<HipBuffer>(std::make_shared<hipdev::Mem>(dev_, bytes));
  }
  Matrix upload_matrix(const gguf::TensorInfo& t, const ops::KernelPolicy&) override {
    return device_matrix(t, upload(t.data, t.nbytes));
  }
  Vector upload_vector(const float* values, int64_t n) override {
    return Vector{values, n, upload(values, static_cast<size_t>(n) * sizeof(float))};
  }
  Table upload_table(const gguf::TensorInfo& t) override { return Table{&t, upload(t.data, t.nbytes)}; }
  std::unique_ptr<KvStore> create_kv(const KvShape& shape) override { return std::make_unique<HipKv>(dev_, shape); }
  std::unique_ptr<Stream> create_stream(const ModelConfig& c, const StreamOptions& o) override {
    return make_hip_stream(dev_, c, o);
  }
  void write(Buffer& b, const void* src, size_t bytes, size_t offset) override {
    dev_->upload(static_cast<uint8_t*>(hptr(b)) + offset, src, bytes);
  }
  void read(const Buffer& b, void* dst, size_t bytes, size_t offset) override {
    dev_->download(dst, static_cast<const uint8_t*>(hptr(b)) + offset, bytes);
  }

 private:
  std::shared_ptr<hipdev::Mem> upload(const void* data, size_t bytes) {
    auto m = std::make_shared<hipdev::Mem>(dev_, bytes);
    dev_->upload(m->ptr, data, bytes);
    return m;
  }
  std::shared_ptr<hipdev::Device> dev_;
};

}  // namespace

std::shared_ptr<Backend> make_hip_backend(int device) {
  return std::make_shared<HipBackend>(hipdev::open_runtime_device(device));
}
std::shared_ptr<Backend> make_hip_emu_backend() { return std::make_shared<HipBackend>(hipdev::open_emu_device()); }

}  // namespace tessera::engine
