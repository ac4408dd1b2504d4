// Paged KV: kv_store writes a batch's K and V rows as f16 into their blocks' slots; attention is one
// wave per (head, token) over the token's keys 0..pos with an online softmax, 32 keys at a time (lane l
// scores key base + l; lane l holds output dimensions l, l + 32, ...). Decode and prefill use the same
// kernel for now.
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
  __shared__ float ps[kWave];     // the chunk's probabilities, for every lane's share of the output
  const int h = (int)blockIdx.x, lane = (int)threadIdx.x;
  const uint32_t t = blockIdx.y, pos = a.b.words[a.b.off_pos + t];
  const uint32_t* tbl = a.b.words + a.b.words[a.b.off_tbl + t];
  const int kvh = h / (a.n_head / a.n_head_kv);
  const float* q = a.q + ((int64_t)t * a.n_head + h) * a.head_dim;
  float o[kMaxPerLane] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  float mx = -__builtin_inff(), sum = 0.0f;
  // keys in chunks of 32: lane l scores key base + l, then every lane adds the chunk's values to its dimensions
  for (uint32_t base = 0; base <= pos; base += kWave) {
    const uint32_t j = base + (uint32_t)lane;
    float s = -__builtin_inff();
    if (j <= pos) {
      const int64_t off = kv_at(a.layer, a.n_blocks, tbl[j / (uint32_t)a.block_tokens], (int32_t)(j % (uint32_t)a.block_tokens),
                                a.block_tokens, a.n_head_kv, kvh, a.head_dim);
      float dot = 0.0f;
      for (int d = 0; d < a.head_dim; ++d) dot += q[d] * fp16_to_fp32(a.kc[off + d]);
      s = dot * a.scale;
    }
    const float m_new = __builtin_fmaxf(mx, wave_max(s)), corr = __builtin_expf(mx - m_new);
    const float p = j <= pos ? __builtin_expf(s - m_new) : 0.0f;
    sum = sum * corr + wave_sum(p);
    ps[lane] = p;
    __syncthreads();
    const uint32_t n = pos + 1 - base < (uint32_t)kWave ? pos + 1 - base : (uint32_t)kWave;
    for (int i = 0; i < kMaxPerLane; ++i) o[i] *= corr;
    for (uint32_t l = 0; l < n; ++l) {
      const uint32_t jl = base + l;
      const int64_t off = kv_at(a.layer, a.n_blocks, tbl[jl / (uint32_t)a.block_tokens], (int32_t)(jl % (uint32_t)a.block_tokens),
                                a.block_tokens, a.n_head_kv, kvh, a.head_dim);
      for (int i = 0; i < kMaxPerLane; ++i) {
        const int d = lane + kWave * i;
        if (d < a.head_dim) o[i] += ps[l] * fp16_to_fp32(a.vc[off + d]);
      }
    }
    __syncthreads();  // ps is rewritten by the next chunk
    mx = m_new;
  }
  float* out = a.out + ((int64_t)t * a.n_head + h) * a.head_dim;
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + kWave * i;
    if (d < a.head_dim) out[d] = o[i] / sum;
  }
}

}  // namespace tessera::hip
