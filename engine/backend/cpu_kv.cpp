// The CPU backend's f16 KV storage (see cpu_kv.h).
#include "engine/backend/cpu_kv.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "gguf/half.h"

namespace tessera::engine {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;

uint16_t* alloc_halves(size_t n_elems) {
  const size_t bytes = (n_elems * sizeof(uint16_t) + kHugePage - 1) / kHugePage * kHugePage;
  auto* p = static_cast<uint16_t*>(std::aligned_alloc(kHugePage, bytes));
  if (!p) throw_error("KV cache: cannot allocate {} MiB", bytes >> 20);
  madvise(p, bytes, MADV_HUGEPAGE);  // a hint; fine if refused
  std::memset(p, 0, bytes);
  return p;
}
}  // namespace

CpuKv::CpuKv(const KvShape& s) : shape_(s) {
  if (s.n_layer <= 0 || s.n_head_kv <= 0 || s.head_dim <= 0 || s.n_blocks <= 0)
    throw_error("KV cache: bad shape (layers {}, kv heads {}, head dim {}, blocks {})", s.n_layer, s.n_head_kv,
                s.head_dim, s.n_blocks);
  head_block_elems_ = static_cast<size_t>(s.head_dim) * ops::kKvBlock;
  elems_ = static_cast<size_t>(s.n_layer) * s.n_head_kv * s.n_blocks * head_block_elems_;
  k_ = alloc_halves(elems_);
  try {
    v_ = alloc_halves(elems_);
  } catch (...) {
    std::free(k_);
    throw;
  }
}

CpuKv::~CpuKv() {
  std::free(k_);
  std::free(v_);
}

void CpuKv::store(int layer, const int32_t* blocks, int pos, const float* k, const float* v) {
  constexpr int B = ops::kKvBlock;
  const int blk = blocks[pos / B];
  const int slot = pos % B;
  const int hd = shape_.head_dim;
  for (int h = 0; h < shape_.n_head_kv; ++h) {
    uint16_t* kh = k_ + offset(layer, h, blk);                                          // [head_dim][kKvBlock]
    uint16_t* vh = v_ + offset(layer, h, blk) + static_cast<size_t>(slot) * hd;        // row of [kKvBlock][head_dim]
    const float* kr = k + static_cast<size_t>(h) * hd;
    const float* vr = v + static_cast<size_t>(h) * hd;
    for (int d = 0; d < hd; ++d) {
      kh[static_cast<size_t>(d) * B + slot] = fp32_to_fp16(kr[d]);
      vh[d] = fp32_to_fp16(vr[d]);
    }
  }
}

void CpuKv::copy_block(int dst, int src) {
  for (int layer = 0; layer < shape_.n_layer; ++layer)
    for (int h = 0; h < shape_.n_head_kv; ++h) {
      std::memcpy(k_ + offset(layer, h, dst), k_ + offset(layer, h, src), head_block_elems_ * sizeof(uint16_t));
      std::memcpy(v_ + offset(layer, h, dst), v_ + offset(layer, h, src), head_block_elems_ * sizeof(uint16_t));
    }
}

}  // namespace tessera::engine
