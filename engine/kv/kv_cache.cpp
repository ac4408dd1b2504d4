// KV block free list (see kv_cache.h).
#include "engine/kv/kv_cache.h"

#include "core/error.h"

namespace tessera::engine {

KvBlocks::KvBlocks(int n_blocks) : n_blocks_(n_blocks) {
  if (n_blocks <= 0) throw_error("KV cache: {} blocks", n_blocks);
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out low ids first
}

int KvBlocks::alloc() {
  if (free_.empty())
    throw_error("KV cache is full ({} blocks of {} tokens); use a larger context (-c)", n_blocks_, kKvBlock);
  const int b = free_.back();
  free_.pop_back();
  return b;
}

void KvBlocks::free(int block) { free_.push_back(block); }

}  // namespace tessera::engine
