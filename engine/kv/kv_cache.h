// KV cache bookkeeping on the host: reference-counted blocks, an index of full blocks by the tokens
// they hold and every token before them (so a request that repeats a prompt prefix adopts its blocks
// instead of recomputing them), and least-recently-used eviction of indexed blocks nobody holds. The
// storage itself is the backend's (engine/backend/backend.h, KvStore), in the backend's layout.
#pragma once
#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "kernels/kernel_args.h"

namespace tessera::engine {

// Tokens per KV block.
constexpr int kKvBlock = ops::kKvBlock;

// A block is in exactly one of three states: held (refcount > 0; indexed or not), cached (refcount 0,
// indexed: reusable until evicted) or free (refcount 0, not indexed).
class KvCache {
 public:
  explicit KvCache(int n_blocks);

  int n_blocks() const { return static_cast<int>(blocks_.size()); }
  int n_free() const { return static_cast<int>(free_.size() + lru_.size()); }  // alloc() can hand out this many
  int n_cached() const { return static_cast<int>(lru_.size()); }               // indexed and held by nobody
  int n_indexed() const { return static_cast<int>(index_.size()); }
  int refcount(int b) const { return blocks_[static_cast<size_t>(b)].refs; }
  bool indexed(int b) const { return blocks_[static_cast<size_t>(b)].indexed; }

  // A block to write into (refcount 1, not indexed): a free one, else the least recently used cached
  // block (dropped from the index: an eviction). -1 when every block is held.
  int alloc();
  void retain(int b);
  void release(int b);  // at refcount 0 an indexed block stays cached, any other becomes free

  // The key of a full block: a hash of its parent's key (0 for a sequence's first block) and its tokens.
  static uint64_t chain(uint64_t parent, std::span<const int32_t> tokens);
  // The indexed block with this key and exactly these tokens, retained (a hit), or -1 (a miss).
  int lookup(uint64_t key, std::span<const int32_t> tokens);
  // Indexes a full block the caller holds; false (and nothing changes) when the key is taken already.
  bool publish(int b, uint64_t key, std::span<const int32_t> tokens);
  // Drops a block from the index (its only holder is about to overwrite it).
  void unpublish(int b);

  struct Stats {
    uint64_t hits = 0, misses = 0, evictions = 0;  // lookups that found / did not find a block; evictions
  };
  const Stats& stats() const { return stats_; }

  // Verifies every invariant (states, lists, index, counts); throws tessera::Error naming the first
  // violation. For tests.
  void check() const;

 private:
  struct Block {
    int32_t refs = 0;
    bool indexed = false;
    uint64_t key = 0;
    std::vector<int32_t> tokens;                  // [kKvBlock] while indexed
    std::list<int32_t>::iterator lru_pos;         // valid while cached (indexed, refs == 0)
  };
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;                     // free block ids (a stack: low ids first)
  std::list<int32_t> lru_;                        // cached blocks, least recently used first
  std::unordered_map<uint64_t, int32_t> index_;   // key -> block
  Stats stats_;
};

// A sequence's view of the cache: its blocks in position order, the key of each full block, and the
// token ids it holds.
struct SequenceKv {
  std::vector<int32_t> blocks;
  std::vector<uint64_t> keys;   // [full blocks] chain keys (kept whether or not the block got indexed)
  std::vector<int32_t> tokens;  // the ids at positions 0..n_past-1
  int n_past = 0;
};

}  // namespace tessera::engine
