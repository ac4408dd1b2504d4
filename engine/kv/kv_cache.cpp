// Block pool of the f16 KV cache (see kv_cache.h).
#include "engine/kv/kv_cache.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "gguf/half.h"

namespace tessera::engine {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;

size_t checked_elems(int n_layer, int n_head_kv, int head_dim, int n_blocks) {
  if (n_layer <= 0 || n_head_kv <= 0 || head_dim <= 0 || n_blocks <= 0)
    throw_error("KV cache: bad shape (layers {}, kv heads {}, head dim {}, blocks {})", n_layer, n_head_kv,
                head_dim, n_blocks);
  return static_cast<size_t>(n_layer) * n_head_kv * n_blocks * head_dim * kKvBlock;
}
}  // namespace

KvCache::Storage::Storage(size_t n_elems) : n(n_elems) {
  const size_t bytes = (n_elems * sizeof(uint16_t) + kHugePage - 1) / kHugePage * kHugePage;
  ptr = static_cast<uint16_t*>(std::aligned_alloc(kHugePage, bytes));
  if (!ptr) throw_error("KV cache: cannot allocate {} MiB", bytes >> 20);
  madvise(ptr, bytes, MADV_HUGEPAGE);  // a hint; fine if refused
  std::memset(ptr, 0, bytes);
}

KvCache::Storage::~Storage() { std::free(ptr); }

KvCache::KvCache(int n_layer, int n_head_kv, int head_dim, int n_blocks)
    : n_layer_(n_layer), n_head_kv_(n_head_kv), head_dim_(head_dim), n_blocks_(n_blocks),
      head_block_elems_(static_cast<size_t>(head_dim) * kKvBlock),
      k_(checked_elems(n_layer, n_head_kv, head_dim, n_blocks)),
      v_(checked_elems(n_layer, n_head_kv, head_dim, n_blocks)) {
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
  for (int h = 0; h < n_head_kv_; ++h) {
    uint16_t* kh = k_.data() + offset(layer, h, blk);                                      // [head_dim][kKvBlock]
    uint16_t* vh = v_.data() + offset(layer, h, blk) + static_cast<size_t>(slot) * head_dim_;  // row of [kKvBlock][head_dim]
    const float* kr = k + static_cast<size_t>(h) * head_dim_;
    const float* vr = v + static_cast<size_t>(h) * head_dim_;
    for (int d = 0; d < head_dim_; ++d) {
      kh[static_cast<size_t>(d) * kKvBlock + slot] = fp32_to_fp16(kr[d]);
      vh[d] = fp32_to_fp16(vr[d]);
    }
  }
}

}  // namespace tessera::engine
