// Fused kernels of the decode step (one token): fewer launches, the same values as the unfused kernels.
// Each GEMV block prepares the activation row it reads in dynamic shared memory (rmsnorm'ed first
// where asked, then rounded as quantize_act rounds), so no quantize launch and no normed row round
// trip; the dot products run in matmul_q8 / matmul_f's lane order, the sums in their wave order.
// gemv_fused: rmsnorm + q, k, v (+ biases) or gate + up (+ SwiGLU) in one launch; o / down + residual
// add; norm + router + top-k; gather + output norm + head.
// heads_fused: QK-norm + RoPE of q and k + the KV store. moe_gate_up_fused, moe_down_fused: the
// selected experts with ids (and routing weights) read on the device.
#include "kernels/hip/common.h"

namespace tessera::hip {

struct ActRef {
  const int8_t* q;  // Q8: codes, f32 scale per 32
  const float* d;
  const float* f;   // float activations
};

// Where a shared region of n values of activation type act keeps them (hip_args.h: act_region_bytes).
__device__ inline ActRef act_ref(const uint8_t* sh, int32_t act, int32_t n) {
  if (act >= 2) return {nullptr, nullptr, (const float*)sh};
  return {(const int8_t*)sh, (const float*)(sh + act_align((uint32_t)n)), nullptr};
}

// The activations (act as in QuantizeArgs, 4: f32) of n values v(i) into a shared region, by the whole
// block; the caller syncs before reading. Rounding as quantize_act.
template <class V>
__device__ inline ActRef prepare_act(uint8_t* sh, int32_t act, int32_t n, V v) {
  const int tid = (int)threadIdx.x, nt = (int)blockDim.x;
  if (act >= 2) {
    float* f = (float*)sh;
    for (int i = tid; i < n; i += nt) {
      const float x = v(i);
      f[i] = act == 2 ? fp16_to_fp32(fp32_to_fp16(x)) : act == 3 ? bf16_to_fp32(fp32_to_bf16(x)) : x;
    }
    return {nullptr, nullptr, f};
  }
  int8_t* q = (int8_t*)sh;
  float* ds = (float*)(sh + act_align((uint32_t)n));
  const int bs = act == 1 ? 256 : 32;
  for (int blk = tid; blk < n / bs; blk += nt) {
    const int o = blk * bs;
    float amax = 0.0f, mxv = 0.0f;  // Q8_K keeps the sign of the first largest magnitude
    for (int j = 0; j < bs; ++j) {
      const float x = v(o + j), ax = __builtin_fabsf(x);
      if (ax > amax) {
        amax = ax;
        mxv = x;
      }
    }
    float d = 0.0f;
    if (act == 0) {
      d = fp16_to_fp32(fp32_to_fp16(amax / 127.0f));
      const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
      for (int j = 0; j < bs; ++j) q[o + j] = (int8_t)__builtin_rintf(v(o + j) * inv);
    } else if (amax != 0.0f) {
      const float iscale = -127.0f / mxv;
      for (int j = 0; j < bs; ++j) q[o + j] = (int8_t)__builtin_fminf(__builtin_rintf(iscale * v(o + j)), 127.0f);
      d = 1.0f / iscale;
    } else {
      for (int j = 0; j < bs; ++j) q[o + j] = 0;
    }
    for (int j = 0; j < bs / 32; ++j) ds[o / 32 + j] = d;
  }
  return {q, ds, nullptr};
}

// acc[r] += this lane's share of row r (of nr) dotted with x (n_in values), as matmul_q8 / matmul_f.
__device__ inline void dot_rows(int32_t wtype, const uint8_t* const* rows, int nr, ActRef x, int32_t n_in, int lane, float* acc) {
  if (is_float_type(wtype)) {
    for (int64_t i = lane; i < n_in; i += kWave)
      for (int r = 0; r < nr; ++r) acc[r] += float_at(wtype, rows[r], i) * x.f[i];
    return;
  }
  for (int64_t c = lane; c < n_in / 16; c += kWave) {
    int x4[4], xs = 0;
    for (int g = 0; g < 4; ++g) {
      x4[g] = pack4(x.q + c * 16 + g * 4);
      xs = hip_dot4_i8(0x01010101, x4[g], xs);
    }
    for (int r = 0; r < nr; ++r) {
      int8_t q[16];
      float d, m;
      unpack16(wtype, rows[r], c, q, &d, &m);
      int dot = 0;
      for (int g = 0; g < 4; ++g) dot = hip_dot4_i8(pack4(q + g * 4), x4[g], dot);
      acc[r] += x.d[c / 2] * (d * (float)dot + m * (float)xs);
    }
  }
}

__device__ inline ActRef offset(ActRef a, int64_t o) {
  return {a.q ? a.q + o : nullptr, a.d ? a.d + o / 32 : nullptr, a.f ? a.f + o : nullptr};
}

// rmsnorm's scale of x's n values as rmsnorm_f32 computes it (one wave, lanes strided), for the block.
__device__ inline float block_norm_scale(const float* x, int32_t n, float eps) {
  __shared__ float scale;
  if (threadIdx.x < kWave) {
    float ss = 0.0f;
    for (int i = (int)threadIdx.x; i < n; i += kWave) ss += x[i] * x[i];
    ss = wave_sum(ss);
    if (threadIdx.x == 0) scale = 1.0f / __builtin_sqrtf(ss / (float)n + eps);
  }
  __syncthreads();
  return scale;
}

// y[r] (+ bias) for rows row0 .. row0 + nr of matrix m, this wave's (every lane gets the sums).
__device__ inline void fused_rows(const GemvFusedArgs& a, const FusedMat& m, const uint8_t* sh, int64_t row0, int nr, int lane,
                                  float* y) {
  uint32_t moff = 0;  // the matrix's activation region
  for (int s = 0; s < m.slot; ++s) moff += act_region_bytes(a.slot_act[s], (uint32_t)a.n_in);
  const uint8_t* rows[4];
  for (int r = 0; r < 4; ++r) rows[r] = m.w + (row0 + (r < nr ? r : 0)) * m.row_bytes;
  for (int r = 0; r < 4; ++r) y[r] = 0.0f;
  dot_rows(m.wtype, rows, nr, act_ref(sh + moff, a.slot_act[m.slot], a.n_in), a.n_in, lane, y);
  wave_sums(y, nr);
  if (m.bias)
    for (int r = 0; r < nr; ++r) y[r] += m.bias[row0 + r];  // add_f32's bias
}

TESSERA_KERNEL(gemv_fused, GemvFusedArgs) {
  HIP_DYNAMIC_SHARED(uint32_t, sh_words)  // 4-byte aligned (f32 scales and values)
  uint8_t* sh = (uint8_t*)sh_words;
  const float* x = a.x + (a.x_row ? (int64_t)*a.x_row * a.n_in : 0);
  const float scale = a.norm ? block_norm_scale(x, a.n_in, a.eps) : 1.0f;
  const float* nw = a.norm;
  uint32_t off = 0;
  for (int s = 0; s < a.n_slots; ++s) {
    if (nw) prepare_act(sh + off, a.slot_act[s], a.n_in, [&](int i) { return x[i] * scale * nw[i]; });
    else prepare_act(sh + off, a.slot_act[s], a.n_in, [&](int i) { return x[i]; });
    off += act_region_bytes(a.slot_act[s], (uint32_t)a.n_in);
  }
  if (nw && a.norm_y && blockIdx.x == 0)
    for (int i = (int)threadIdx.x; i < a.n_in; i += (int)blockDim.x) a.norm_y[i] = x[i] * scale * nw[i];
  __syncthreads();

  int mi = 0;  // glu: the blocks cover matrix 0's rows, each wave does matrix 1's same rows too
  while (!a.glu && mi + 1 < a.n_mat && (int)blockIdx.x >= a.m[mi + 1].block0) ++mi;
  const FusedMat& m = a.m[mi];
  const int64_t row0 = ((int64_t)(blockIdx.x - m.block0) * (blockDim.x / kWave) + threadIdx.x / kWave) * 4;
  const int lane = (int)(threadIdx.x % kWave);
  if (row0 < m.n_out) {  // whole waves
    const int nr = (int)(m.n_out - row0 < 4 ? m.n_out - row0 : 4);
    float y[4];
    fused_rows(a, m, sh, row0, nr, lane, y);
    if (a.glu) {
      float u[4];
      fused_rows(a, a.m[1], sh, row0, nr, lane, u);
      if (lane == 0)
        for (int r = 0; r < nr; ++r) {
          a.m[1].y[row0 + r] = u[r];
          m.y[row0 + r] = y[r] / (1.0f + __builtin_expf(-y[r])) * u[r];  // swiglu_f32
        }
    } else if (lane == 0) {
      for (int r = 0; r < nr; ++r) {
        m.y[row0 + r] = y[r];
        if (a.res && mi == 0) a.res[row0 + r] += y[r];
      }
    }
  }
  if (!a.ids) return;
  // the router: the last block to finish sees every logit
  __threadfence();
  __syncthreads();
  __shared__ uint32_t last;
  if (threadIdx.x == 0) last = atomicAdd(a.counter, 1u) == gridDim.x - 1 ? 1u : 0u;
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (threadIdx.x < kWave) route_row(a.m[0].y, a.m[0].n_out, a.k, a.ids, a.rw, (int)threadIdx.x);
  if (threadIdx.x == 0) *a.counter = 0;
}

TESSERA_KERNEL(heads_fused, HeadsArgs) {
  constexpr int kMaxHeadDim = 256;
  __shared__ float hv[kMaxHeadDim];
  const bool on_a = (int)blockIdx.x < a.n_head_a;
  const int head = on_a ? (int)blockIdx.x : (int)blockIdx.x - a.n_head_a, n_head = on_a ? a.n_head_a : a.n_head_b;
  const int lane = (int)threadIdx.x, hd = a.head_dim, half = hd / 2;
  const int64_t t = blockIdx.y;
  float* x = (on_a ? a.xa : a.xb) + (t * n_head + head) * hd;
  const float* nw = on_a ? a.norm_a : a.norm_b;
  float scale = 1.0f;
  if (nw) {  // rmsnorm_f32 of the head's row
    float ss = 0.0f;
    for (int i = lane; i < hd; i += kWave) ss += x[i] * x[i];
    ss = wave_sum(ss);
    scale = 1.0f / __builtin_sqrtf(ss / (float)hd + a.eps);
  }
  for (int i = lane; i < hd; i += kWave) hv[i] = nw ? x[i] * scale * nw[i] : x[i];
  __syncthreads();
  if (on_a ? a.rope_a : a.rope_b)  // rope_f32's pairs
    for (int i = lane; i < half; i += kWave) {
      const float c = a.cs[(t * half + i) * 2], s = a.cs[(t * half + i) * 2 + 1];
      const int i0 = a.neox ? i : 2 * i, i1 = a.neox ? i + half : 2 * i + 1;
      const float x0 = hv[i0], x1 = hv[i1];
      hv[i0] = x0 * c - x1 * s;
      hv[i1] = x0 * s + x1 * c;
    }
  __syncthreads();
  for (int i = lane; i < hd; i += kWave) x[i] = hv[i];
  if (on_a || !a.kc) return;
  const uint32_t pos = a.b.words[a.b.off_pos + t];
  const uint32_t blk = a.b.words[a.b.words[a.b.off_tbl + t] + pos / (uint32_t)a.block_tokens];
  const int64_t dst = kv_at(a.layer, a.n_blocks, blk, (int32_t)(pos % (uint32_t)a.block_tokens), a.block_tokens, n_head, head, hd);
  const float* v = a.v + (t * n_head + head) * hd;
  for (int i = lane; i < hd; i += kWave) {
    a.kc[dst + i] = fp32_to_fp16(hv[i]);
    a.vc[dst + i] = fp32_to_fp16(v[i]);
  }
}

TESSERA_KERNEL(moe_gate_up_fused, MoeGateUpArgs) {
  HIP_DYNAMIC_SHARED(uint32_t, sh_words)  // 4-byte aligned (f32 scales and values)
  uint8_t* sh = (uint8_t*)sh_words;
  const int64_t z = blockIdx.y;
  const float* h = a.h + (z / a.k) * a.n_in;
  const auto hx = [&](int i) { return h[i]; };
  const ActRef xg = prepare_act(sh, a.g_act, a.n_in, hx);
  const ActRef xu = a.up_slot ? prepare_act(sh + act_region_bytes(a.g_act, (uint32_t)a.n_in), a.u_act, a.n_in, hx) : xg;
  __syncthreads();
  const int64_t row0 = ((int64_t)blockIdx.x * (blockDim.x / kWave) + threadIdx.x / kWave) * 4;
  const int lane = (int)(threadIdx.x % kWave);
  if (row0 >= a.n_ff) return;  // whole waves leave together
  const int nr = (int)(a.n_ff - row0 < 4 ? a.n_ff - row0 : 4);
  const int64_t e = a.ids[z];
  const uint8_t* rows[4];
  float gs[4] = {0.0f, 0.0f, 0.0f, 0.0f}, us[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int r = 0; r < 4; ++r) rows[r] = a.wg + e * a.g_stride + (row0 + (r < nr ? r : 0)) * a.g_row_bytes;
  dot_rows(a.g_type, rows, nr, xg, a.n_in, lane, gs);
  for (int r = 0; r < 4; ++r) rows[r] = a.wu + e * a.u_stride + (row0 + (r < nr ? r : 0)) * a.u_row_bytes;
  dot_rows(a.u_type, rows, nr, xu, a.n_in, lane, us);
  wave_sums(gs, nr);
  wave_sums(us, nr);
  if (lane == 0)
    for (int r = 0; r < nr; ++r) a.g[z * a.n_ff + row0 + r] = gs[r] / (1.0f + __builtin_expf(-gs[r])) * us[r];  // swiglu_f32
}

TESSERA_KERNEL(moe_down_fused, MoeDownArgs) {
  HIP_DYNAMIC_SHARED(uint32_t, sh_words)  // 4-byte aligned (f32 scales and values)
  uint8_t* sh = (uint8_t*)sh_words;
  const int64_t t = blockIdx.y;
  const float* g = a.g + t * a.k * a.n_ff;
  const ActRef xg = prepare_act(sh, a.act, a.k * a.n_ff, [&](int i) { return g[i]; });
  __syncthreads();
  const int64_t row0 = ((int64_t)blockIdx.x * (blockDim.x / kWave) + threadIdx.x / kWave) * 4;
  const int lane = (int)(threadIdx.x % kWave);
  if (row0 >= a.n_embd) return;
  const int nr = (int)(a.n_embd - row0 < 4 ? a.n_embd - row0 : 4);
  float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // moe_sum_f32's order: expert j = 0, 1, ...
  for (int j = 0; j < a.k; ++j) {
    const int64_t e = a.ids[t * a.k + j];
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = a.w + e * a.stride + (row0 + (r < nr ? r : 0)) * a.row_bytes;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    dot_rows(a.wtype, rows, nr, offset(xg, (int64_t)j * a.n_ff), a.n_ff, lane, acc);
    wave_sums(acc, nr);
    const float w = a.rw[t * a.k + j];
    for (int r = 0; r < nr; ++r) sum[r] += w * acc[r];
  }
  if (lane == 0)
    for (int r = 0; r < nr; ++r) a.x[t * a.n_embd + row0 + r] += sum[r];
}

}  // namespace tessera::hip
