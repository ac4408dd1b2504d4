// Byte-level BPE core (see bpe.h).
#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstddef>
#include <functional>

namespace tessera::tok {

const std::array<uint32_t, 256>& byte_to_code_point() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next_extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      t[b] = printable ? b : next_extra++;
    }
    return t;
  }();
  return table;
}

int code_point_to_byte(uint32_t cp) {
  static const std::array<int16_t, 324> inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    const auto& fwd = byte_to_code_point();
    for (int b = 0; b < 256; ++b) inv[fwd[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  count_ = 0;
}

void MergeTable::insert(int32_t left, int32_t right, Merge m) {
  if ((count_ + 1) * 2 > slots_.size()) {  // grow: rehash into a table twice the size
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<size_t>(16, old.size()));
    for (const Slot& s : old)
      if (s.key != kEmpty) insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFF), s.merge);
  }
  const uint64_t key = pack(left, right);
  for (size_t h = hash(key) & mask_;; h = (h + 1) & mask_) {
    Slot& s = slots_[h];
    if (s.key == key) return;  // a repeated merge line: the first rank stands
    if (s.key == kEmpty) {
      s.key = key;
      s.merge = m;
      ++count_;
      return;
    }
  }
}

namespace {

constexpr int32_t kNoMerge = INT32_MAX;

// Short pieces: scan for the best pair each round (n is small, so this beats a heap).
void merge_by_scan(const MergeTable& merges, std::vector<int32_t>& ids) {
  size_t n = ids.size();
  while (n > 1) {
    int32_t best_rank = kNoMerge, best_result = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      const auto m = merges.find(ids[i], ids[i + 1]);
      if (m.rank >= 0 && m.rank < best_rank) {
        best_rank = m.rank;
        best_result = m.result;
        best = i;
      }
    }
    if (best_rank == kNoMerge) break;
    ids[best] = best_result;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    --n;
  }
}

// Long pieces: linked list of symbols and a min-heap of (rank, left position); stale entries
// are skipped when popped.
void merge_by_heap(const MergeTable& merges, std::vector<int32_t>& ids, BpeScratch& s) {
  const size_t n = ids.size();
  s.prev.resize(n);
  s.next.resize(n);
  s.rank.assign(n, kNoMerge);  // rank of the pair (i, next[i])
  s.heap.clear();
  for (size_t i = 0; i < n; ++i) {
    s.prev[i] = static_cast<int32_t>(i) - 1;
    s.next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  std::vector<int32_t> result(n, -1);  // merged id of the pair (i, next[i])
  const auto entry = [](int32_t rank, int32_t pos) {
    return (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(pos);
  };
  const auto consider = [&](int32_t i) {
    if (i < 0 || s.next[i] < 0) return;
    const auto m = merges.find(ids[i], ids[s.next[i]]);
    s.rank[i] = m.rank >= 0 ? m.rank : kNoMerge;
    result[i] = m.result;
    if (m.rank >= 0) {
      s.heap.push_back(entry(m.rank, i));
      std::push_heap(s.heap.begin(), s.heap.end(), std::greater<>());
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i));
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<>());
    const uint64_t top = s.heap.back();
    s.heap.pop_back();
    const auto rank = static_cast<int32_t>(top >> 32);
    const auto i = static_cast<int32_t>(top & 0xFFFFFFFF);
    if (ids[i] < 0 || s.rank[i] != rank || s.next[i] < 0) continue;  // stale
    const int32_t j = s.next[i];
    ids[i] = result[i];
    ids[j] = -1;
    s.next[i] = s.next[j];
    if (s.next[j] >= 0) s.prev[s.next[j]] = i;
    s.rank[i] = kNoMerge;
    consider(i);
    consider(s.prev[i]);
  }
  size_t out = 0;
  for (size_t i = 0; i < n; ++i)
    if (ids[i] >= 0) ids[out++] = ids[i];
  ids.resize(out);
}

}  // namespace

void bpe_merge(const MergeTable& merges, std::vector<int32_t>& ids, BpeScratch& scratch) {
  if (ids.size() <= 24) {
    merge_by_scan(merges, ids);
  } else {
    merge_by_heap(merges, ids, scratch);
  }
}

}  // namespace tessera::tok
