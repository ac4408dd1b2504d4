// The f16 KV cache: a pool of fixed-size blocks per layer, handed out by a simple free-list
// allocator, and per-sequence block tables (the paged scheduler builds on the same shapes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/kernel_args.h"

namespace tessera::engine {

// Tokens per KV block. Storage is [layer][kv head][block] so one head's blocks lie back to back
// (attention streams them); inside a block K is transposed so a whole block of keys is scored with
// vector FMAs: K = [head_dim][kKvBlock], V = [kKvBlock][head_dim], IEEE half.
constexpr int kKvBlock = ops::kKvBlock;

class KvCache {
 public:
  KvCache(int n_layer, int n_head_kv, int head_dim, int n_blocks);

  int n_blocks() const { return n_blocks_; }
  int n_free() const { return static_cast<int>(free_.size()); }
  uint64_t bytes() const { return static_cast<uint64_t>(k_.size() + v_.size()) * sizeof(uint16_t); }
  size_t head_block_elems() const { return head_block_elems_; }  // halves of one head's block (K or V)
  size_t head_stride() const { return head_block_elems_ * static_cast<size_t>(n_blocks_); }  // between heads

  int alloc_block();          // throws tessera::Error when the pool is exhausted
  void free_block(int block);

  // One layer's storage (head h, block b at h * head_stride() + b * head_block_elems()).
  const uint16_t* k_layer(int layer) const { return k_.data() + offset(layer, 0, 0); }
  const uint16_t* v_layer(int layer) const { return v_.data() + offset(layer, 0, 0); }

  // Writes one token's keys and values ([n_head_kv][head_dim] floats, converted to f16) at
  // position pos of the sequence whose block table is `blocks`.
  void store(int layer, const int32_t* blocks, int pos, const float* k, const float* v);

  int n_layer() const { return n_layer_; }
  int n_head_kv() const { return n_head_kv_; }
  int head_dim() const { return head_dim_; }

 private:
  size_t offset(int layer, int head, int block) const {
    return ((static_cast<size_t>(layer) * n_head_kv_ + head) * n_blocks_ + block) * head_block_elems_;
  }
  int n_layer_, n_head_kv_, head_dim_, n_blocks_;
  size_t head_block_elems_;
  // [n_layer][n_head_kv][n_blocks][head_block_elems], 2 MiB aligned and marked for huge pages
  // (attention streams megabytes of it per token: fewer TLB misses)
  struct Storage {
    uint16_t* ptr = nullptr;
    size_t n = 0;
    explicit Storage(size_t n_elems);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    uint16_t* data() { return ptr; }
    const uint16_t* data() const { return ptr; }
    size_t size() const { return n; }
  };
  Storage k_, v_;
  std::vector<int32_t> free_;    // free block ids (stack)
};

// A sequence's view of the cache: its blocks in position order and how many positions it holds.
struct SequenceKv {
  std::vector<int32_t> blocks;
  std::vector<int32_t> tokens;  // the ids at positions 0..n_past-1 (for prefix reuse)
  int n_past = 0;
};

}  // namespace tessera::engine
