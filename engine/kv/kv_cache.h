// KV cache bookkeeping on the host: which blocks are free, and each sequence's block table. The
// storage itself is the backend's (engine/backend/backend.h, KvStore), in the backend's layout.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernel_args.h"

namespace tessera::engine {

// Tokens per KV block.
constexpr int kKvBlock = ops::kKvBlock;

class KvBlocks {  // a free list of block ids
 public:
  explicit KvBlocks(int n_blocks);
  int n_blocks() const { return n_blocks_; }
  int n_free() const { return static_cast<int>(free_.size()); }
  int alloc();  // throws tessera::Error when every block is in use
  void free(int block);

 private:
  int n_blocks_;
  std::vector<int32_t> free_;  // free block ids (stack)
};

// A sequence's view of the cache: its blocks in position order and how many positions it holds.
struct SequenceKv {
  std::vector<int32_t> blocks;
  std::vector<int32_t> tokens;  // the ids at positions 0..n_past-1 (for prefix reuse)
  int n_past = 0;
};

}  // namespace tessera::engine
