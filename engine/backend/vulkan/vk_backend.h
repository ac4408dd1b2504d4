// The `vulkan` backend's pieces shared by its two files: buffers, the KV store, the backend (memory
// and weights: vk_backend.cpp) and its stream (the ops: vk_stream.cpp).
#pragma once
#include <memory>

#include "engine/backend/backend.h"
#include "engine/backend/vulkan/vk_device.h"

namespace tessera::engine {

class VkBuffer final : public Buffer {
 public:
  explicit VkBuffer(std::shared_ptr<vk::Buf> b) : Buffer(b->bytes), buf(std::move(b)) {}
  std::shared_ptr<vk::Buf> buf;
};

inline vk::Buf& vbuf(const Buffer& b) { return *static_cast<const VkBuffer&>(b).buf; }

// f16 K and V, [layer][block][slot][kv head][head_dim] (RefKv's layout).
class VkKv final : public KvStore {
 public:
  VkKv(vk::Device& dev, const KvShape& s);
  uint64_t bytes() const override { return 2 * k->bytes; }
  KvShape shape;
  std::shared_ptr<vk::Buf> k, v;
};

std::unique_ptr<Stream> make_vulkan_stream(std::shared_ptr<vk::Device> dev, const ModelConfig& c, const StreamOptions& o);

}  // namespace tessera::engine
