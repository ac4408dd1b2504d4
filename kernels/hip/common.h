// Device helpers of the HIP kernels: wave reductions, and the one weight decoder every quantized kernel
// uses: 16 consecutive values of a row as int8 codes q with v = d * q + m (m: the block's offset, 0
// for symmetric types), written from gguf/codecs_decode.cpp's formulas so that d * q + m rounds as
// the reference's dequantization does.
#pragma once
#include "kernels/hip/hip_compat.h"  // first: __host__ / __device__ for the shared headers
#include "gguf/half.h"
#include "gguf/quant_blocks.h"
#include "kernels/hip/hip_args.h"

namespace tessera::hip {

// ggml type ids (gguf/ggml_types.h) the kernels decode.
enum : int32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kIQ4_NL = 20, kIQ4_XS = 23, kBF16 = 30, kMXFP4 = 39,
};

#if defined(TESSERA_HIP_DEVICE)
__device__ inline float wave_sum(float v) {
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor(v, m);
  return v;
}
__device__ inline float wave_max(float v) {
  for (int m = 16; m > 0; m >>= 1) v = __builtin_fmaxf(v, __shfl_xor(v, m));
  return v;
}
// n (<= 4) sums at once.
__device__ inline void wave_sums(float* v, int n) {
  for (int i = 0; i < n; ++i) v[i] = wave_sum(v[i]);
}
#else
// The emulator sums in the same butterfly order with one exchange instead of five (fewer fiber
// switches). Every lane ends with the same value (each step adds the same two partial sums, a + b =
// b + a), lane 0's: at step m it adds partial i + m to partial i.
inline float butterfly(const float* x) {
  float y[32];
  for (int l = 0; l < 32; ++l) y[l] = x[l];
  for (int m = 16; m > 0; m >>= 1)
    for (int i = 0; i < m; ++i) y[i] = y[i] + y[i + m];
  return y[0];
}
inline float wave_sum(float v) {
  uint32_t live = 0;
  const uint8_t* s = hip_emu::exchange_begin(&v, sizeof v, &live);
  float x[32];
  for (int l = 0; l < 32; ++l) x[l] = live >> l & 1u ? hip_emu::slot_value<float>(s, l) : 0.0f;
  hip_emu::exchange_done();
  return butterfly(x);
}
// n (<= 4) sums at once, in one exchange.
inline void wave_sums(float* v, int n) {
  struct F4 {
    float f[4];
  } mine{};
  for (int i = 0; i < n; ++i) mine.f[i] = v[i];
  uint32_t live = 0;
  const uint8_t* s = hip_emu::exchange_begin(&mine, sizeof mine, &live);
  float x[4][32];
  for (int l = 0; l < 32; ++l) {
    const F4 o = live >> l & 1u ? hip_emu::slot_value<F4>(s, l) : F4{};
    for (int i = 0; i < 4; ++i) x[i][l] = o.f[i];
  }
  hip_emu::exchange_done();
  for (int i = 0; i < n; ++i) v[i] = butterfly(x[i]);
}
inline float wave_max(float v) {
  uint32_t live = 0;
  const uint8_t* s = hip_emu::exchange_begin(&v, sizeof v, &live);
  float r = v;
  for (int l = 0; l < 32; ++l)
    if (live >> l & 1u) r = __builtin_fmaxf(r, hip_emu::slot_value<float>(s, l));
  hip_emu::exchange_done();
  return r;
}
#endif

__device__ inline uint32_t load_u32(const uint8_t* p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
__device__ inline float half_at(const uint8_t* p) { return fp16_to_fp32((uint16_t)(p[0] | p[1] << 8)); }

// Q4_K / Q5_K 6-bit scale and min of sub-block j (0..7).
__device__ inline void k4_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Values 16c .. 16c+15 of a quantized row: q[i] codes, value = d * q[i] + m.
__device__ inline void unpack16(int32_t type, const uint8_t* row, int64_t c, int8_t* q, float* d, float* m) {
  *m = 0.0f;
  if (type == kIQ4_XS) {  // 256-value super-blocks: 8 sub-blocks of 32, d * (6-bit scale - 32) each
    const block_iq4_xs* b = (const block_iq4_xs*)(row + c / 16 * sizeof(block_iq4_xs));
    const int v0 = (int)(c % 16) * 16, ib = v0 / 32;
    const int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b->scales_h >> (2 * ib)) & 3) << 4);
    *d = half_at((const uint8_t*)&b->d) * (float)(ls - 32);
    const uint8_t* qs = b->qs + ib * 16;
    for (int i = 0; i < 16; ++i) q[i] = kIQ4NLValues[v0 % 32 ? qs[i] >> 4 : qs[i] & 15];
    return;
  }
  if (type == kQ4_K || type == kQ5_K || type == kQ6_K) {
    const int64_t blk = c / 16;  // 256-value super-block
    const int v0 = (int)(c % 16) * 16;
    if (type == kQ6_K) {
      const block_q6_K* b = (const block_q6_K*)(row + blk * sizeof(block_q6_K));
      const int half = v0 / 128, r = v0 % 128, g = r / 32, l0 = r % 32;
      const uint8_t* ql = b->ql + half * 64 + (g & 1) * 32;
      const uint8_t* qh = b->qh + half * 32;
      *d = half_at((const uint8_t*)&b->d) * b->scales[half * 8 + l0 / 16 + 2 * g];
      for (int i = 0; i < 16; ++i) {
        const int l = l0 + i;
        const int lo = g < 2 ? ql[l] & 15 : ql[l] >> 4;
        q[i] = (int8_t)((lo | ((qh[l] >> (2 * g)) & 3) << 4) - 32);
      }
      return;
    }
    const int j = v0 / 32, l0 = v0 % 32, chunk = v0 / 64;  // sub-block, offset in it, 64-value chunk
    const bool high = (v0 % 64) >= 32;
    const uint8_t* hdr = row + blk * (type == kQ4_K ? sizeof(block_q4_K) : sizeof(block_q5_K));
    int sc, mn;
    k4_scale_min(hdr + 4, j, &sc, &mn);
    *d = half_at(hdr) * sc;
    *m = -(half_at(hdr + 2) * mn);
    if (type == kQ4_K) {
      const uint8_t* qs = ((const block_q4_K*)hdr)->qs + chunk * 32;
      for (int i = 0; i < 16; ++i) q[i] = (int8_t)(high ? qs[l0 + i] >> 4 : qs[l0 + i] & 15);
    } else {
      const block_q5_K* b = (const block_q5_K*)hdr;
      const uint8_t* qs = b->qs + chunk * 32;
      const uint8_t bit = (uint8_t)((high ? 2 : 1) << (2 * chunk));
      for (int i = 0; i < 16; ++i)
        q[i] = (int8_t)((high ? qs[l0 + i] >> 4 : qs[l0 + i] & 15) + ((b->qh[l0 + i] & bit) ? 16 : 0));
    }
    return;
  }
  // 32-value blocks: values j < 16 are low nibbles of qs[j], j >= 16 high nibbles of qs[j - 16]
  const int64_t blk = c / 2;
  const int j0 = (int)(c % 2) * 16;
  switch (type) {
    case kQ8_0: {
      const block_q8_0* b = (const block_q8_0*)(row + blk * sizeof(block_q8_0));
      *d = half_at((const uint8_t*)&b->d);
      for (int i = 0; i < 16; ++i) q[i] = b->qs[j0 + i];
      return;
    }
    case kQ4_0: case kIQ4_NL: {
      const block_q4_0* b = (const block_q4_0*)(row + blk * sizeof(block_q4_0));  // same layout as iq4_nl
      *d = half_at((const uint8_t*)&b->d);
      for (int i = 0; i < 16; ++i) {
        const int nib = j0 ? b->qs[i] >> 4 : b->qs[i] & 15;
        q[i] = (int8_t)(type == kQ4_0 ? nib - 8 : kIQ4NLValues[nib]);
      }
      return;
    }
    case kMXFP4: {  // E2M1 codes doubled (kMXFP4Values), so d is half the E8M0 scale (gguf e8m0_half)
      const block_mxfp4* b = (const block_mxfp4*)(row + blk * sizeof(block_mxfp4));
      *d = f32_from_bits(b->e < 2 ? 0x00200000u << b->e : (uint32_t)(b->e - 1) << 23);
      for (int i = 0; i < 16; ++i) q[i] = kMXFP4Values[j0 ? b->qs[i] >> 4 : b->qs[i] & 15];
      return;
    }
    case kQ4_1: {
      const block_q4_1* b = (const block_q4_1*)(row + blk * sizeof(block_q4_1));
      *d = half_at((const uint8_t*)&b->d);
      *m = half_at((const uint8_t*)&b->m);
      for (int i = 0; i < 16; ++i) q[i] = (int8_t)(j0 ? b->qs[i] >> 4 : b->qs[i] & 15);
      return;
    }
    case kQ5_0: case kQ5_1: {
      const bool one = type == kQ5_1;
      const uint8_t* p = row + blk * (one ? sizeof(block_q5_1) : sizeof(block_q5_0));
      *d = half_at(p);
      if (one) *m = half_at(p + 2);
      const uint32_t qh = load_u32(p + (one ? 4 : 2));
      const uint8_t* qs = p + (one ? 8 : 6);
      for (int i = 0; i < 16; ++i) {
        const int j = j0 + i;
        const int v = (j0 ? qs[i] >> 4 : qs[i] & 15) | (int)((qh >> j) & 1) << 4;
        q[i] = (int8_t)(one ? v : v - 16);
      }
      return;
    }
    default: *d = 0.0f;  // the host never launches other types
  }
}

// Element i of a float-typed row (f32, f16, bf16).
__device__ inline float float_at(int32_t type, const uint8_t* row, int64_t i) {
  if (type == kF32) return ((const float*)row)[i];
  const uint16_t h = (uint16_t)(row[2 * i] | row[2 * i + 1] << 8);
  return type == kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

__device__ inline bool is_float_type(int32_t t) { return t == kF32 || t == kF16 || t == kBF16; }

}  // namespace tessera::hip
