// Block pool of the f16 KV cache (see kv_cache.h).
#include "engine/kv/kv_cache.h"

#include "engine/core/error.h"
#include "gguf/half.h"

namespace tessera::engine {

KvCache::KvCache(int n_layer, int n_head_kv, int head_dim, int n_blocks)
    : n_layer_(n_layer), n_head_kv_(n_head_kv), head_dim_(head_dim), n_blocks_(n_blocks),
      block_elems_(static_cast<size_t>(n_head_kv) * head_dim * kKvBlock) {
  if (n_layer <= 0 || n_head_kv <= 0 || head_dim <= 0 || n_blocks <= 0)
    throw_error("KV cache: bad shape (layers {}, kv heads {}, head dim {}, blocks {})", n_layer, n_head_kv,
                head_dim, n_blocks);
  const size_t n = static_cast<size_t>(n_layer) * n_blocks * block_elems_;
  k_.assign(n, 0);
  v_.assign(n, 0);
  free_.reserve(n_blocks);
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out low ids first
}

int KvCache::alloc_block() {
  if (free_.empty())
    throw_error("KV cache is full ({} blocks of {} tokens); use a larger context (-c)", n_blocks_, kKvBlock);
  const int b = free_.back();
  free_.pop_back();
  return b;
}

void KvCache::free_block(int block) { free_.push_back(block); }

void KvCache::store(int layer, const int32_t* blocks, int pos, const float* k, const float* v) {
  const int blk = blocks[pos / kKvBlock];
  const int slot = pos % kKvBlock;
  uint16_t* kb = k_block(layer, blk);
  uint16_t* vb = v_block(layer, blk);
  for (int h = 0; h < n_head_kv_; ++h) {
    uint16_t* kh = kb + static_cast<size_t>(h) * head_dim_ * kKvBlock;  // [head_dim][kKvBlock]
    uint16_t* vh = vb + (static_cast<size_t>(h) * kKvBlock + slot) * head_dim_;  // row of [kKvBlock][head_dim]
    const float* kr = k + static_cast<size_t>(h) * head_dim_;
    const float* vr = v + static_cast<size_t>(h) * head_dim_;
    for (int d = 0; d < head_dim_; ++d) {
      kh[static_cast<size_t>(d) * kKvBlock + slot] = fp32_to_fp16(kr[d]);
      vh[d] = fp32_to_fp16(vr[d]);
    }
  }
}

}  // namespace tessera::engine
