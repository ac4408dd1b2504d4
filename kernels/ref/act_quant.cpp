// Activation quantizers (Q8_0 / Q8_K as llama.cpp's x86 CPU backend rounds them) and f16/bf16 conversion.
#include "kernels/ref/act_quant.h"

#include <cmath>

#include "gguf/half.h"

namespace tessera::ops {

namespace {

// Round half to even for |v| < 2^22 (the 1.5 * 2^23 trick, what _mm_round_ps(NEAREST) gives too).
inline int round_half_even(float v) {
  const float t = v + 12582912.0f;
  return static_cast<int>(f32_bits(t) & 0x7fffff) - 0x400000;
}

// Sums of qs over each 16 values.
void sums16(const int8_t* qs, int64_t n, int32_t* s) {
  for (int64_t b = 0; b < n / 16; ++b) {
    int32_t sum = 0;
    for (int j = 0; j < 16; ++j) sum += qs[b * 16 + j];
    s[b] = sum;
  }
}

}  // namespace

void quantize_row_act_q8_0(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float scale = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    d[b] = fp16_to_fp32(fp32_to_fp16(scale));  // the kernels use the stored f16 scale
    for (int j = 0; j < 32; ++j) qs[b * 32 + j] = static_cast<int8_t>(round_half_even(xb[j] * inv));
  }
  sums16(qs, n, s);
}

void quantize_row_act_q8_K(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    float amax = 0.0f, max = 0.0f;  // max keeps the sign of the largest magnitude (first one on ties)
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    float scale = 0.0f;
    if (amax == 0.0f) {
      for (int j = 0; j < 256; ++j) qs[b * 256 + j] = 0;
    } else {
      const float iscale = -127.0f / max;
      for (int j = 0; j < 256; ++j) {
        const int v = round_half_even(iscale * xb[j]);
        qs[b * 256 + j] = static_cast<int8_t>(v < 127 ? v : 127);
      }
      scale = 1.0f / iscale;
    }
    for (int j = 0; j < 8; ++j) d[b * 8 + j] = scale;
  }
  sums16(qs, n, s);
}

void quantize_activations(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                          int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16) {
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* xt = x + t * x_stride;
    switch (type) {
      case ActType::F32: break;
      case ActType::F16:
        for (int64_t i = 0; i < n_in; ++i) h16[t * n_in + i] = fp32_to_fp16(xt[i]);
        break;
      case ActType::BF16:
        for (int64_t i = 0; i < n_in; ++i) h16[t * n_in + i] = fp32_to_bf16(xt[i]);
        break;
      case ActType::Q8_0:
      case ActType::Q8_1:
        quantize_row_act_q8_0(xt, n_in, qs + t * n_in, d + t * (n_in / 32), s + t * (n_in / 16));
        break;
      case ActType::Q8_K:
        quantize_row_act_q8_K(xt, n_in, qs + t * n_in, d + t * (n_in / 32), s + t * (n_in / 16));
        break;
    }
    if (type == ActType::Q8_0 || type == ActType::Q8_1 || type == ActType::Q8_K) {
      const int32_t* st = s + t * (n_in / 16);
      for (int64_t b = 0; b < n_in / 32; ++b) s32[t * (n_in / 32) + b] = st[2 * b] + st[2 * b + 1];
    }
  }
}

}  // namespace tessera::ops
