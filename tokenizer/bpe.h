// Byte-level BPE core: the GPT-2 byte <-> unicode table, the merge table keyed by token-id pairs,
// and the merge loop (lowest rank first, leftmost on ties).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::tok {

// GPT-2's reversible byte -> code point map: printable Latin-1 bytes map to themselves, the
// others to U+0100 and up, in byte order.
const std::array<uint32_t, 256>& byte_to_code_point();
// Inverse: code point -> byte, or -1 when the code point is not in the map.
int code_point_to_byte(uint32_t cp);

// Open-addressing hash map (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
  struct Merge {
    int32_t rank = -1;
    int32_t result = -1;
  };
  void reserve(size_t n);
  void insert(int32_t left, int32_t right, Merge m);  // keeps the first (lowest) rank seen
  Merge find(int32_t left, int32_t right) const {
    if (slots_.empty()) return {};
    const uint64_t key = pack(left, right);
    for (size_t h = hash(key) & mask_;; h = (h + 1) & mask_) {
      const Slot& s = slots_[h];
      if (s.key == key) return s.merge;
      if (s.key == kEmpty) return {};
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge;
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(k ^ (k >> 29));
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// Merges `ids` (the byte tokens of one piece) in place until no adjacent pair has a merge.
// `scratch` is reused between calls to avoid allocation.
struct BpeScratch {
  std::vector<int32_t> prev, next, rank;
  std::vector<uint64_t> heap;
};
void bpe_merge(const MergeTable& merges, std::vector<int32_t>& ids, BpeScratch& scratch);

}  // namespace tessera::tok
