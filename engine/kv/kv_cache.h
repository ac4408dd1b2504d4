// The f16 KV cache: a pool of fixed-size blocks per layer, handed out by a simple free-list
// allocator, and per-sequence block tables (the paged scheduler builds on the same shapes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tessera::engine {

// Tokens per KV block. K is stored transposed inside a block so attention can score a whole block
// of keys with vector FMAs: K block = [n_head_kv][head_dim][kKvBlock], V block =
// [n_head_kv][kKvBlock][head_dim], both IEEE half.
constexpr int kKvBlock = 32;

class KvCache {
 public:
  KvCache(int n_layer, int n_head_kv, int head_dim, int n_blocks);

  int n_blocks() const { return n_blocks_; }
  int n_free() const { return static_cast<int>(free_.size()); }
  uint64_t bytes() const { return static_cast<uint64_t>(k_.size() + v_.size()) * sizeof(uint16_t); }
  size_t block_elems() const { return block_elems_; }  // halves per block per layer (K or V)

  int alloc_block();          // throws tessera::Error when the pool is exhausted
  void free_block(int block);

  // Block storage of one layer (see the layout above).
  uint16_t* k_block(int layer, int block) { return k_.data() + offset(layer, block); }
  uint16_t* v_block(int layer, int block) { return v_.data() + offset(layer, block); }
  const uint16_t* k_block(int layer, int block) const { return k_.data() + offset(layer, block); }
  const uint16_t* v_block(int layer, int block) const { return v_.data() + offset(layer, block); }

  // Writes one token's keys and values ([n_head_kv][head_dim] floats, converted to f16) at
  // position pos of the sequence whose block table is `blocks`.
  void store(int layer, const int32_t* blocks, int pos, const float* k, const float* v);

  int n_head_kv() const { return n_head_kv_; }
  int head_dim() const { return head_dim_; }

 private:
  size_t offset(int layer, int block) const {
    return (static_cast<size_t>(layer) * n_blocks_ + block) * block_elems_;
  }
  int n_layer_, n_head_kv_, head_dim_, n_blocks_;
  size_t block_elems_;
  std::vector<uint16_t> k_, v_;  // [n_layer][n_blocks][block_elems]
  std::vector<int32_t> free_;    // free block ids (stack)
};

// A sequence's view of the cache: its blocks in position order and how many positions it holds.
struct SequenceKv {
  std::vector<int32_t> blocks;
  int n_past = 0;
};

}  // namespace tessera::engine
