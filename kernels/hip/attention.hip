// Paged KV: kv_store writes a batch's K and V rows as f16 into their blocks' slots; attention is one
// wave per (head, token) over the token's keys 0..pos with an online softmax (lane l holds dimensions
// l, l + 32, ... of q and of the output). Decode and prefill use the same kernel for now.
#include "kernels/hip/common.h"

namespace tessera::hip {

__device__ inline int64_t kv_at(int32_t layer, int32_t n_blocks, uint32_t blk, int32_t slot, int32_t block_tokens,
                                int32_t n_head_kv, int32_t head, int32_t head_dim) {
  return ((((int64_t)layer * n_blocks + blk) * block_tokens + slot) * n_head_kv + head) * head_dim;
}

TESSERA_KERNEL(kv_store_f16, KvStoreArgs) {
  const uint32_t t = blockIdx.x, pos = a.b.words[a.b.off_pos + t];
  const uint32_t blk = a.b.words[a.b.words[a.b.off_tbl + t] + pos / (uint32_t)a.block_tokens];
  const int n = a.n_head_kv * a.head_dim;
  const int64_t dst = kv_at(a.layer, a.n_blocks, blk, (int32_t)(pos % (uint32_t)a.block_tokens), a.block_tokens, a.n_head_kv, 0, a.head_dim);
  for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x) {
    a.kc[dst + i] = fp32_to_fp16(a.k[(int64_t)t * n + i]);
    a.vc[dst + i] = fp32_to_fp16(a.v[(int64_t)t * n + i]);
  }
}

TESSERA_KERNEL(attention_f16, AttentionArgs) {
  constexpr int kMaxPerLane = 8;  // head_dim <= 256
  const int h = (int)blockIdx.x, lane = (int)threadIdx.x;
  const uint32_t t = blockIdx.y, pos = a.b.words[a.b.off_pos + t];
  const uint32_t* tbl = a.b.words + a.b.words[a.b.off_tbl + t];
  const int kvh = h / (a.n_head / a.n_head_kv);
  const float* q = a.q + ((int64_t)t * a.n_head + h) * a.head_dim;
  float qv[kMaxPerLane], o[kMaxPerLane];
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + kWave * i;
    qv[i] = d < a.head_dim ? q[d] : 0.0f;
    o[i] = 0.0f;
  }
  float mx = -__builtin_inff(), sum = 0.0f;
  for (uint32_t j = 0; j <= pos; ++j) {
    const int64_t off = kv_at(a.layer, a.n_blocks, tbl[j / (uint32_t)a.block_tokens], (int32_t)(j % (uint32_t)a.block_tokens),
                              a.block_tokens, a.n_head_kv, kvh, a.head_dim);
    float s = 0.0f;
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int d = lane + kWave * i;
      if (d < a.head_dim) s += qv[i] * fp16_to_fp32(a.kc[off + d]);
    }
    s = wave_sum(s) * a.scale;
    const float m_new = __builtin_fmaxf(mx, s), corr = __builtin_expf(mx - m_new), p = __builtin_expf(s - m_new);
    sum = sum * corr + p;
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int d = lane + kWave * i;
      if (d < a.head_dim) o[i] = o[i] * corr + p * fp16_to_fp32(a.vc[off + d]);
    }
    mx = m_new;
  }
  float* out = a.out + ((int64_t)t * a.n_head + h) * a.head_dim;
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + kWave * i;
    if (d < a.head_dim) out[d] = o[i] / sum;
  }
}

}  // namespace tessera::hip
