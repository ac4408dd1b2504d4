// The CPU backend's KV storage: f16, [layer][kv head][block] so one head's blocks lie back to back
// (attention streams them); inside a block K is transposed so a whole block of keys is scored with
// vector FMAs: K = [head_dim][kKvBlock], V = [kKvBlock][head_dim].
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/backend/backend.h"

namespace tessera::engine {

class CpuKv final : public KvStore {
 public:
  explicit CpuKv(const KvShape& shape);
  ~CpuKv() override;
  CpuKv(const CpuKv&) = delete;
  CpuKv& operator=(const CpuKv&) = delete;

  uint64_t bytes() const override { return 2 * elems_ * sizeof(uint16_t); }
  const KvShape& shape() const { return shape_; }
  size_t head_block_elems() const { return head_block_elems_; }  // halves of one head's block (K or V)
  size_t head_stride() const { return head_block_elems_ * static_cast<size_t>(shape_.n_blocks); }  // between heads

  // One layer's storage (head h, block b at h * head_stride() + b * head_block_elems()).
  const uint16_t* k_layer(int layer) const { return k_ + offset(layer, 0, 0); }
  const uint16_t* v_layer(int layer) const { return v_ + offset(layer, 0, 0); }

  // Writes one token's keys and values ([n_head_kv][head_dim] floats, converted to f16) at
  // position pos of the sequence whose block table is `blocks`.
  void store(int layer, const int32_t* blocks, int pos, const float* k, const float* v);
  // Block dst of every layer and head becomes a copy of block src.
  void copy_block(int dst, int src);

 private:
  size_t offset(int layer, int head, int block) const {
    return ((static_cast<size_t>(layer) * shape_.n_head_kv + head) * shape_.n_blocks + block) * head_block_elems_;
  }
  KvShape shape_;
  size_t head_block_elems_ = 0;
  size_t elems_ = 0;  // of K (and of V)
  // 2 MiB aligned and marked for huge pages (attention streams megabytes per token: fewer TLB misses)
  uint16_t* k_ = nullptr;
  uint16_t* v_ = nullptr;
};

}  // namespace tessera::engine
