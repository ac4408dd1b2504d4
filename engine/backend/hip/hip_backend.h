// The HIP backends' shared pieces: buffers and KV in device memory (hip_device.h), the stream's
// constructor (hip_stream.cpp), the backend (hip_backend.cpp).
#pragma once
#include <memory>

#include "engine/backend/backend.h"
#include "engine/backend/hip/hip_device.h"

namespace tessera::engine {

class HipBuffer final : public Buffer {
 public:
  explicit HipBuffer(std::shared_ptr<hipdev::Mem> m) : Buffer(m->bytes), mem(std::move(m)) {}
  std::shared_ptr<hipdev::Mem> mem;
};

inline void* hptr(const Buffer& b) { return static_cast<const HipBuffer&>(b).mem->ptr; }
inline float* hf32(const Buffer& b) { return static_cast<float*>(hptr(b)); }

// f16 K and V, [layer][block][slot][kv head][head_dim] (RefKv's layout).
class HipKv final : public KvStore {
 public:
  HipKv(const std::shared_ptr<hipdev::Device>& dev, const KvShape& s);
  uint64_t bytes() const override { return 2 * k->bytes; }
  KvShape shape;
  std::shared_ptr<hipdev::Mem> k, v;
};

std::unique_ptr<Stream> make_hip_stream(std::shared_ptr<hipdev::Device> dev, const ModelConfig& c, const StreamOptions& o);

}  // namespace tessera::engine
