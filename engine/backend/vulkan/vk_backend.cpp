// The `vulkan` backend: memory, weights (the file's bytes, uploaded once; kernels are the shaders the
// stream picks by weight type) and KV on one Vulkan device (see vk_device.h). Its ops: vk_stream.cpp.
#include "engine/backend/vulkan/vk_backend.h"

#include <fmt/format.h>

#include "core/error.h"
#include "engine/backend/device_batch.h"
#include "engine/model/model.h"

namespace tessera::engine {

VkKv::VkKv(vk::Device& dev, const KvShape& s) : shape(s) {
  if (s.n_layer <= 0 || s.n_head_kv <= 0 || s.head_dim <= 0 || s.n_blocks <= 0 || s.head_dim % 2 || s.head_dim > 256)
    throw_error("KV cache: bad shape for vulkan (layers {}, kv heads {}, head dim {} (even, at most 256), blocks {})",
                s.n_layer, s.n_head_kv, s.head_dim, s.n_blocks);
  const size_t n = static_cast<size_t>(s.n_layer) * s.n_blocks * ops::kKvBlock * s.n_head_kv * s.head_dim;
  k = dev.buffer(n * 2);
  v = dev.buffer(n * 2);
}

namespace {

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(int device) : dev_(std::make_shared<vk::Device>(device)) {
    caps_ = ops::host_caps(ops::Backend::Vulkan);
  }

  std::unique_ptr<Buffer> alloc(size_t bytes) override { return std::make_unique<VkBuffer>(dev_->buffer(bytes)); }

  Matrix upload_matrix(const gguf::TensorInfo& t, const ops::KernelPolicy&) override {
    return device_matrix(t, upload(t.data, t.nbytes));
  }
  Vector upload_vector(const float* values, int64_t n) override {
    return Vector{values, n, upload(values, static_cast<size_t>(n) * sizeof(float))};
  }
  Table upload_table(const gguf::TensorInfo& t) override { return Table{&t, upload(t.data, t.nbytes)}; }
  std::unique_ptr<KvStore> create_kv(const KvShape& shape) override { return std::make_unique<VkKv>(*dev_, shape); }
  std::unique_ptr<Stream> create_stream(const ModelConfig& c, const StreamOptions& o) override {
    return make_vulkan_stream(dev_, c, o);
  }
  void write(Buffer& b, const void* src, size_t bytes, size_t offset) override { dev_->write(vbuf(b), offset, src, bytes); }
  void read(const Buffer& b, void* dst, size_t bytes, size_t offset) override { dev_->read(vbuf(b), offset, dst, bytes); }

 private:
  std::shared_ptr<vk::Buf> upload(const void* data, size_t bytes) {
    std::shared_ptr<vk::Buf> b = dev_->buffer(bytes);
    dev_->write(*b, 0, data, bytes);
    return b;
  }
  std::shared_ptr<vk::Device> dev_;
};

}  // namespace

std::shared_ptr<Backend> make_vulkan_backend(int device) { return std::make_shared<VulkanBackend>(device); }

std::string list_vulkan_devices() {
  const std::vector<vk::DeviceInfo> devs = vk::list_devices();
  if (devs.empty()) throw_error("vulkan: the Vulkan loader lists no device");
  std::string s;
  for (const vk::DeviceInfo& d : devs) s += d.describe();
  return s + fmt::format("default (--device): {}\n", vk::default_device(devs));
}

}  // namespace tessera::engine
