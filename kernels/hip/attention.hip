// Paged KV: kv_store writes a batch's K and V rows as f16 into their blocks' slots; attention is one
// wave per (head, token) over the token's keys 0..pos with an online softmax, 32 keys at a time (lane l
// scores key base + l; lane l holds output dimensions l, l + 32, ...). A few tokens over a long context
// (decode) split each head's keys over several blocks instead (attention_split_f16), in one launch.
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

constexpr int kMaxPerLane = 8;  // head_dim <= 256: lane l holds output dimensions l, l + 32, ...

// Keys lo..last of one (head, token) into a running softmax (mx, sum) and unnormalized output o, 32
// keys at a time: lane l scores key base + l, then every lane adds the chunk's values to its dimensions.
// ps: the chunk's probabilities in shared memory. An empty range (last < lo) leaves mx = -inf, sum = 0, o = 0.
__device__ inline void attend_keys(const AttentionArgs& a, const float* q, const uint32_t* tbl, int kvh, uint32_t lo,
                                   uint32_t last, int lane, float* ps, float* o, float& mx, float& sum) {
  for (uint32_t base = lo; base <= last; base += kWave) {
    const uint32_t j = base + (uint32_t)lane;
    float s = -__builtin_inff();
    if (j <= last) {
      const int64_t off = kv_at(a.layer, a.n_blocks, tbl[j / (uint32_t)a.block_tokens], (int32_t)(j % (uint32_t)a.block_tokens),
                                a.block_tokens, a.n_head_kv, kvh, a.head_dim);
      float dot = 0.0f;
      for (int d = 0; d < a.head_dim; ++d) dot += q[d] * fp16_to_fp32(a.kc[off + d]);
      s = dot * a.scale;
    }
    const float m_new = __builtin_fmaxf(mx, wave_max(s)), corr = __builtin_expf(mx - m_new);
    const float p = j <= last ? __builtin_expf(s - m_new) : 0.0f;
    sum = sum * corr + wave_sum(p);
    ps[lane] = p;
    __syncthreads();
    const uint32_t n = last + 1 - base < (uint32_t)kWave ? last + 1 - base : (uint32_t)kWave;
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
}

TESSERA_KERNEL(attention_f16, AttentionArgs) {
  __shared__ float ps[kWave];
  const int h = (int)blockIdx.x, lane = (int)threadIdx.x;
  const uint32_t t = blockIdx.y, pos = a.b.words[a.b.off_pos + t];
  const int kvh = h / (a.n_head / a.n_head_kv);
  float o[kMaxPerLane] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  float mx = -__builtin_inff(), sum = 0.0f;
  attend_keys(a, a.q + ((int64_t)t * a.n_head + h) * a.head_dim, a.b.words + a.b.words[a.b.off_tbl + t], kvh, 0, pos,
              lane, ps, o, mx, sum);
  float* out = a.out + ((int64_t)t * a.n_head + h) * a.head_dim;
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + kWave * i;
    if (d < a.head_dim) out[d] = o[i] / sum;
  }
}

// Decode over a long context (flash-decoding): block (s, h) takes keys s * range .. of head h and writes
// its partial (max, sum, unnormalized output) to a.part; the last of a head's n_split blocks to finish
// (a.counter, reset by that block) rescales the partials to their common max and writes the output.
TESSERA_KERNEL(attention_split_f16, AttentionArgs) {
  __shared__ float ps[kWave];
  __shared__ uint32_t last;
  const int s = (int)blockIdx.x % a.n_split, h = (int)blockIdx.x / a.n_split, lane = (int)threadIdx.x;
  const uint32_t t = blockIdx.y, pos = a.b.words[a.b.off_pos + t];
  const uint32_t lo = (uint32_t)s * (uint32_t)a.range, hi = lo + (uint32_t)a.range - 1 < pos ? lo + (uint32_t)a.range - 1 : pos;
  float o[kMaxPerLane] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  float mx = -__builtin_inff(), sum = 0.0f;
  attend_keys(a, a.q + ((int64_t)t * a.n_head + h) * a.head_dim, a.b.words + a.b.words[a.b.off_tbl + t],
              h / (a.n_head / a.n_head_kv), lo, hi, lane, ps, o, mx, sum);
  const int stride = a.head_dim + 2;  // a partial: max, sum, output[head_dim]
  const int64_t head = (int64_t)t * a.n_head + h;
  float* part = a.part + head * a.n_split * stride;
  if (lane == 0) {
    part[s * stride] = mx;
    part[s * stride + 1] = sum;
  }
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + kWave * i;
    if (d < a.head_dim) part[s * stride + 2 + d] = o[i];
  }
  __threadfence();
  __syncthreads();
  if (lane == 0) last = atomicAdd(a.counter + head, 1u) == (uint32_t)a.n_split - 1 ? 1u : 0u;
  __syncthreads();
  if (!last) return;
  __threadfence();
  float m = -__builtin_inff();
  for (int i = 0; i < a.n_split; ++i) m = __builtin_fmaxf(m, part[i * stride]);  // range 0 is never empty
  float acc[kMaxPerLane] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, den = 0.0f;
  for (int i = 0; i < a.n_split; ++i) {
    const float* p = part + i * stride;
    const float w = __builtin_expf(p[0] - m);  // an empty range: exp(-inf) = 0, and its sum and output are 0
    den += p[1] * w;
    for (int k = 0; k < kMaxPerLane; ++k) {
      const int d = lane + kWave * k;
      if (d < a.head_dim) acc[k] += p[2 + d] * w;
    }
  }
  float* out = a.out + head * a.head_dim;
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + kWave * k;
    if (d < a.head_dim) out[d] = acc[k] / den;
  }
  if (lane == 0) a.counter[head] = 0;
}

}  // namespace tessera::hip
