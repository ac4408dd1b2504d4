// Attention over the block KV cache: task split and the portable kernel. The AVX-512 kernel
// (attention_avx512.cpp) is chosen at run time when the CPU has it.
#include "engine/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/kv/kv_cache.h"
#include "engine/ops/cpu_caps.h"
#include "gguf/half.h"

namespace tessera::ops {
namespace detail {

// Straightforward version of the same algorithm, one row at a time (the reference for the SIMD one).
void attend_rows_generic(const AttentionArgs& a, const AttnRows& rows) {
  const int hd = a.head_dim;
  constexpr int B = engine::kKvBlock;
  std::vector<float> q(hd), o(hd);
  float s[B];
  for (int r = 0; r < rows.n_rows; ++r) {
    for (int d = 0; d < hd; ++d) q[d] = fp16_to_fp32(fp32_to_fp16(rows.q[r][d])) * a.scale;
    std::fill(o.begin(), o.end(), 0.0f);
    float m = -INFINITY, l = 0.0f;
    const int n_keys = rows.last[r] + 1;
    for (int j0 = 0; j0 < n_keys; j0 += B) {
      const int blk = rows.blocks[j0 / B];
      const uint16_t* kb = a.k_cache + blk * a.block_elems + static_cast<size_t>(rows.kv_head) * hd * B;
      const uint16_t* vb = a.v_cache + blk * a.block_elems + static_cast<size_t>(rows.kv_head) * B * hd;
      const int nb = std::min(B, n_keys - j0);
      float bm = -INFINITY;
      for (int j = 0; j < nb; ++j) {
        float acc = 0.0f;
        for (int d = 0; d < hd; ++d) acc += q[d] * fp16_to_fp32(kb[d * B + j]);
        s[j] = acc;
        bm = std::max(bm, acc);
      }
      const float mnew = std::max(m, bm);
      const float corr = std::exp(m - mnew);
      l *= corr;
      for (int d = 0; d < hd; ++d) o[d] *= corr;
      for (int j = 0; j < nb; ++j) {
        const float p = std::exp(s[j] - mnew);
        l += p;
        for (int d = 0; d < hd; ++d) o[d] += p * fp16_to_fp32(vb[j * hd + d]);
      }
      m = mnew;
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int d = 0; d < hd; ++d) rows.out[r][d] = o[d] * inv;
  }
}

}  // namespace detail

namespace {
// TESSERA_CPU_LEVEL=scalar / avx2 selects the portable kernel (cpu_caps.h).
bool use_avx512(int head_dim) { return cpu_caps().has_avx512() && head_dim % 16 == 0 && head_dim <= 256; }
}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  using detail::AttnRows;
  using detail::kMaxRows;
  if (a.n_tokens <= 0) return;
  const int group = a.n_head / a.n_head_kv;                 // query heads per KV head
  const int heads_per_task = std::min(group, kMaxRows);
  const int head_tasks = (group + heads_per_task - 1) / heads_per_task;  // per KV head
  const int64_t tokens_per_task = std::max(1, kMaxRows / heads_per_task);
  const int64_t n_chunks = (a.n_tokens + tokens_per_task - 1) / tokens_per_task;
  const int64_t per_chunk = static_cast<int64_t>(a.n_head_kv) * head_tasks;
  const bool simd = use_avx512(a.head_dim);

  pool.parallel_for(n_chunks * per_chunk, [&](int64_t task, int) {
    const int64_t chunk = task / per_chunk;
    const int kv_head = static_cast<int>((task % per_chunk) / head_tasks);
    const int h0 = kv_head * group + static_cast<int>(task % head_tasks) * heads_per_task;
    const int h1 = std::min(h0 + heads_per_task, (kv_head + 1) * group);
    const int64_t t_end = std::min(a.n_tokens, (chunk + 1) * tokens_per_task);
    AttnRows rows;
    rows.kv_head = kv_head;
    auto flush = [&] {
      if (rows.n_rows == 0) return;
      if (simd) detail::attend_rows_avx512(a, rows);
      else detail::attend_rows_generic(a, rows);
      rows.n_rows = 0;
    };
    for (int64_t t = chunk * tokens_per_task; t < t_end; ++t) {
      if (rows.n_rows > 0 && a.block_table[t] != rows.blocks) flush();  // another sequence
      rows.blocks = a.block_table[t];
      for (int h = h0; h < h1; ++h) {
        rows.q[rows.n_rows] = a.q + t * a.q_stride + static_cast<int64_t>(h) * a.head_dim;
        rows.out[rows.n_rows] = a.out + t * a.out_stride + static_cast<int64_t>(h) * a.head_dim;
        rows.last[rows.n_rows] = a.pos[t];
        ++rows.n_rows;
      }
    }
    flush();
  });
}

}  // namespace tessera::ops
