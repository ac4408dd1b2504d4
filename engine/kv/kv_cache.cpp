// KV block bookkeeping with prefix sharing (see kv_cache.h).
#include "engine/kv/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace tessera::engine {

KvCache::KvCache(int n_blocks) {
  if (n_blocks <= 0) throw_error("KV cache: {} blocks", n_blocks);
  blocks_.resize(static_cast<size_t>(n_blocks));
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out low ids first
}

int KvCache::alloc() {
  int b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {  // evict the least recently used cached block
    b = lru_.front();
    lru_.pop_front();
    Block& blk = blocks_[static_cast<size_t>(b)];
    index_.erase(blk.key);
    blk.indexed = false;
    blk.tokens.clear();
    ++stats_.evictions;
  } else {
    return -1;
  }
  blocks_[static_cast<size_t>(b)].refs = 1;
  return b;
}

void KvCache::retain(int b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.refs == 0) {
    if (!blk.indexed) throw_error("KV cache: retain of free block {}", b);
    lru_.erase(blk.lru_pos);  // cached -> held
  }
  ++blk.refs;
}

void KvCache::release(int b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.refs <= 0) throw_error("KV cache: release of unheld block {}", b);
  if (--blk.refs > 0) return;
  if (blk.indexed) {
    blk.lru_pos = lru_.insert(lru_.end(), b);  // most recently used last
  } else {
    free_.push_back(b);
  }
}

uint64_t KvCache::chain(uint64_t parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent key and the token ids, then a final mix; 0 is kept for "no parent".
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  for (int32_t t : tokens) mix(static_cast<uint32_t>(t));
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

int KvCache::lookup(uint64_t key, std::span<const int32_t> tokens) {
  const auto it = index_.find(key);
  if (it == index_.end() || !std::equal(tokens.begin(), tokens.end(), blocks_[static_cast<size_t>(it->second)].tokens.begin(),
                                        blocks_[static_cast<size_t>(it->second)].tokens.end())) {
    ++stats_.misses;
    return -1;
  }
  ++stats_.hits;
  retain(it->second);
  return it->second;
}

bool KvCache::publish(int b, uint64_t key, std::span<const int32_t> tokens) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.refs <= 0) throw_error("KV cache: publish of unheld block {}", b);
  if (blk.indexed || index_.count(key)) return false;
  blk.indexed = true;
  blk.key = key;
  blk.tokens.assign(tokens.begin(), tokens.end());
  index_.emplace(key, b);
  return true;
}

void KvCache::unpublish(int b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (!blk.indexed) return;
  if (blk.refs != 1) throw_error("KV cache: unpublish of block {} held {} times", b, blk.refs);
  index_.erase(blk.key);
  blk.indexed = false;
  blk.tokens.clear();
}

void KvCache::check() const {
  std::vector<int> seen(blocks_.size(), 0);  // 1 free, 2 cached
  for (int32_t b : free_) {
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (seen[static_cast<size_t>(b)]++) throw_error("KV check: block {} listed twice", b);
    if (blk.refs != 0 || blk.indexed) throw_error("KV check: free block {} has refs {} indexed {}", b, blk.refs, blk.indexed);
  }
  for (int32_t b : lru_) {
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (seen[static_cast<size_t>(b)]++) throw_error("KV check: block {} listed twice", b);
    if (blk.refs != 0 || !blk.indexed) throw_error("KV check: cached block {} has refs {} indexed {}", b, blk.refs, blk.indexed);
  }
  size_t n_indexed = 0;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const Block& blk = blocks_[b];
    if (blk.refs < 0) throw_error("KV check: block {} has refs {}", b, blk.refs);
    if (blk.refs > 0 && seen[b]) throw_error("KV check: held block {} is on a free/cached list", b);
    if (blk.refs == 0 && !seen[b]) throw_error("KV check: block {} is lost (no holder, on no list)", b);
    if (blk.indexed) {
      ++n_indexed;
      const auto it = index_.find(blk.key);
      if (it == index_.end() || it->second != static_cast<int32_t>(b)) throw_error("KV check: block {} not under its key", b);
      if (blk.tokens.size() != static_cast<size_t>(kKvBlock)) throw_error("KV check: indexed block {} without tokens", b);
    }
  }
  if (n_indexed != index_.size()) throw_error("KV check: index has {} keys for {} indexed blocks", index_.size(), n_indexed);
}

}  // namespace tessera::engine
