// Attention over the block KV cache: task split and the portable kernel (attention_f16_ref). The
// AVX-512 kernel (attention_avx512.cpp, attention_f16_avx512) is chosen by the caller through the
// registry.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernel_args.h"
#include "gguf/half.h"

namespace tessera::ops {
namespace detail {

// Straightforward version of the same algorithm, one row at a time (the reference for the SIMD one).
void attend_rows_generic(const AttentionArgs& a, const AttnRows& rows) {
  const int hd = a.head_dim;
  constexpr int B = kKvBlock;
  std::vector<float> q(hd), o(hd);
  float s[B];
  for (int r = 0; r < rows.n_rows; ++r) {
    for (int d = 0; d < hd; ++d) q[d] = fp16_to_fp32(fp32_to_fp16(rows.q[r][d])) * a.scale;
    std::fill(o.begin(), o.end(), 0.0f);
    float m = -INFINITY, l = 0.0f;
    const int n_keys = std::min(rows.last[r] + 1, rows.key_end);
    for (int j0 = rows.key_begin; j0 < n_keys; j0 += B) {
      const int blk = rows.blocks[j0 / B];
      const size_t off = static_cast<size_t>(rows.kv_head) * a.head_stride + blk * a.block_elems;
      const uint16_t* kb = a.k_cache + off;  // [hd][B]
      const uint16_t* vb = a.v_cache + off;  // [B][hd]
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
    if (rows.part_ml) {
      rows.part_ml[2 * r] = m;
      rows.part_ml[2 * r + 1] = l;
      for (int d = 0; d < hd; ++d) rows.out[r][d] = o[d];
      continue;
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int d = 0; d < hd; ++d) rows.out[r][d] = o[d] * inv;
  }
}

}  // namespace detail

namespace {
// Below this many (query row, key) pairs a call runs on the calling thread (~20 us of work, about
// what waking the pool costs).
constexpr int64_t kSerialRowKeys = 4096;
}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool,
               void (*rows_kernel)(const AttentionArgs&, const detail::AttnRows&)) {
  using detail::AttnRows;
  using detail::kMaxRows;
  if (a.n_tokens <= 0) return;
  const int group = a.n_head / a.n_head_kv;                 // query heads per KV head
  const int heads_per_task = std::min(group, kMaxRows);
  const int head_tasks = (group + heads_per_task - 1) / heads_per_task;  // per KV head
  const int64_t tokens_per_task = std::max(1, kMaxRows / heads_per_task);
  const int64_t n_chunks = (a.n_tokens + tokens_per_task - 1) / tokens_per_task;
  const int64_t per_chunk = static_cast<int64_t>(a.n_head_kv) * head_tasks;
  const int64_t n_row_tasks = n_chunks * per_chunk;

  // One decoding token has only n_head_kv row tasks: with more threads, split its keys into ranges
  // of whole blocks (at least 8 blocks each) and merge the partial softmaxes.
  constexpr int B = kKvBlock;
  int n_split = 1;
  if (a.n_tokens == 1 && n_row_tasks < 2 * pool.size()) {
    const int n_blocks = (a.pos[0] + B) / B;
    n_split = static_cast<int>(std::clamp<int64_t>((2 * pool.size() + n_row_tasks - 1) / n_row_tasks, 1, n_blocks / 8));
    n_split = std::max(n_split, 1);
  }
  const int split_blocks = n_split > 1 ? ((a.pos[0] + B) / B + n_split - 1) / n_split : 0;
  // per (row task, split): [rows][head_dim] partial outputs and [rows][2] (max, sum)
  thread_local std::vector<float> part;
  const size_t part_rows = static_cast<size_t>(heads_per_task);
  const size_t part_stride = part_rows * (static_cast<size_t>(a.head_dim) + 2);
  if (n_split > 1) part.resize(static_cast<size_t>(n_row_tasks * n_split) * part_stride);
  float* const part_base = part.data();

  auto run_task = [&](int64_t task, int) {
    const int split = static_cast<int>(task % n_split);
    const int64_t row_task = task / n_split;
    const int64_t chunk = row_task / per_chunk;
    const int kv_head = static_cast<int>((row_task % per_chunk) / head_tasks);
    const int h0 = kv_head * group + static_cast<int>(row_task % head_tasks) * heads_per_task;
    const int h1 = std::min(h0 + heads_per_task, (kv_head + 1) * group);
    const int64_t t_end = std::min(a.n_tokens, (chunk + 1) * tokens_per_task);
    AttnRows rows;
    rows.kv_head = kv_head;
    float* part_out = nullptr;
    if (n_split > 1) {
      part_out = part_base + static_cast<size_t>(task) * part_stride;
      rows.key_begin = split * split_blocks * B;
      rows.key_end = (split + 1) * split_blocks * B;
      rows.part_ml = part_out + part_rows * a.head_dim;
    }
    auto flush = [&] {
      if (rows.n_rows == 0) return;
      rows_kernel(a, rows);
      rows.n_rows = 0;
    };
    for (int64_t t = chunk * tokens_per_task; t < t_end; ++t) {
      if (rows.n_rows > 0 && a.block_table[t] != rows.blocks) flush();  // another sequence
      rows.blocks = a.block_table[t];
      for (int h = h0; h < h1; ++h) {
        rows.q[rows.n_rows] = a.q + t * a.q_stride + static_cast<int64_t>(h) * a.head_dim;
        rows.out[rows.n_rows] = part_out ? part_out + static_cast<size_t>(h - h0) * a.head_dim
                                         : a.out + t * a.out_stride + static_cast<int64_t>(h) * a.head_dim;
        rows.last[rows.n_rows] = a.pos[t];
        ++rows.n_rows;
      }
    }
    flush();
  };
  // Little work (short context): run on the calling thread, saving a wake-up of the pool.
  int64_t row_keys = 0;
  for (int64_t t = 0; t < a.n_tokens && row_keys < kSerialRowKeys; ++t) row_keys += (a.pos[t] + 1) * int64_t{a.n_head};
  if (row_keys < kSerialRowKeys && n_split == 1) {
    for (int64_t task = 0; task < n_row_tasks; ++task) run_task(task, 0);
    return;
  }
  pool.parallel_for(n_row_tasks * n_split, run_task);
  if (n_split == 1) return;

  // Merge: o = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s, M = max_s m_s.
  for (int64_t row_task = 0; row_task < n_row_tasks; ++row_task) {
    const int kv_head = static_cast<int>((row_task % per_chunk) / head_tasks);
    const int h0 = kv_head * group + static_cast<int>(row_task % head_tasks) * heads_per_task;
    const int h1 = std::min(h0 + heads_per_task, (kv_head + 1) * group);
    for (int h = h0; h < h1; ++h) {
      const size_t r = static_cast<size_t>(h - h0);
      float mx = -INFINITY;
      for (int s = 0; s < n_split; ++s)
        mx = std::max(mx, part_base[static_cast<size_t>(row_task * n_split + s) * part_stride + part_rows * a.head_dim + 2 * r]);
      float* out = a.out + static_cast<int64_t>(h) * a.head_dim;
      std::fill(out, out + a.head_dim, 0.0f);
      float l = 0.0f;
      for (int s = 0; s < n_split; ++s) {
        const float* p = part_base + static_cast<size_t>(row_task * n_split + s) * part_stride;
        const float* ml = p + part_rows * a.head_dim + 2 * r;
        if (ml[1] == 0.0f) continue;  // this range held no visible key
        const float w = std::exp(ml[0] - mx);
        l += w * ml[1];
        for (int d = 0; d < a.head_dim; ++d) out[d] += w * p[r * a.head_dim + d];
      }
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      for (int d = 0; d < a.head_dim; ++d) out[d] *= inv;
    }
  }
}

}  // namespace tessera::ops
