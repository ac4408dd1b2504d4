// Reference encoders of the K-quants (Q2_K .. Q6_K): per sub-block, a least-squares search for the
// scale (and min) over a few candidate inverse scales; then the sub-block scales are themselves
// quantized against one fp16 super-block scale, and every value is re-rounded with the scales the
// decoder will actually see.
#include <cmath>
#include <cstring>

#include "gguf/codecs_internal.h"

#pragma clang fp contract(off)  // deterministic results whatever the target flags

namespace tessera::codec {
namespace {

constexpr float kTinyGroup = 1e-15f;  // a group whose largest |x| is below this encodes as zeros
constexpr int kPolishSteps = 3;        // alternating re-round / refit steps after a grid search

// Affine fit x ~ scale*L + min with integer levels L in [0, nmax] and min <= 0, minimizing
// sum w*(scale*L + min - x)^2 (n a multiple of 8, at most 32). Candidates: the plain range mapping,
// and inverse scales (nmax + rmin + rdelta*k) / (max - min) for k = 0..nstep, each rounded then refit
// in closed form; the best is polished by a few alternating steps (re-round with the fitted scale and
// min, refit). Writes the chosen levels to L, -min to *neg_min, returns scale.
float fit_affine(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float rmin,
                 float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  Lanes sw_, swx_, swxx_;
  for (int i0 = 0; i0 < n; i0 += 8) {
    for (int j = 0; j < 8; ++j) {
      const int i = i0 + j;
      lo = x[i] < lo ? x[i] : lo;
      hi = x[i] > hi ? x[i] : hi;
      sw_.v[j] += w[i];
      swx_.v[j] += w[i] * x[i];
      swxx_.v[j] += w[i] * x[i] * x[i];
    }
  }
  const float sw = sw_.sum(), swx = swx_.sum(), swxx = swxx_.sum();
  if (lo > 0) lo = 0;
  if (!(hi - lo > kTinyGroup)) {  // flat (or non-finite) group
    std::memset(L, 0, static_cast<size_t>(n));
    *neg_min = -lo;
    return 0;
  }
  const float fmax_level = static_cast<float>(nmax);
  float levels[32];  // [n] current candidate's levels
  float best_err = INFINITY, best_scale = 0, best_min = lo;
  // Rounds (x - offset)*iscale to levels, fits scale and min (or keeps 1/iscale and offset when refit
  // is false), and keeps the result if it beats the best so far.
  auto try_candidate = [&](float iscale, float offset, bool refit) {
    Lanes sl_, sll_, slx_;
    for (int i0 = 0; i0 < n; i0 += 8) {
      for (int j = 0; j < 8; ++j) {
        const int i = i0 + j;
        const float l = round_even(clampf(iscale * (x[i] - offset), 0.0f, fmax_level));
        levels[i] = l;
        sl_.v[j] += w[i] * l;
        sll_.v[j] += w[i] * l * l;
        slx_.v[j] += w[i] * l * x[i];
      }
    }
    const float sl = sl_.sum(), sll = sll_.sum(), slx = slx_.sum();
    float scale = 1 / iscale, min = offset;
    if (refit) {
      const float det = sw * sll - sl * sl;
      if (!(det > 0)) return false;
      scale = (sw * slx - swx * sl) / det;
      min = (sll * swx - sl * slx) / det;
      if (min > 0) {  // a positive offset cannot be stored: refit the scale alone
        min = 0;
        scale = slx / sll;
      }
    }
    // sum w*(scale*l + min - x)^2 expanded over the accumulated moments
    const float err = swxx + scale * scale * sll + min * min * sw - 2 * scale * slx - 2 * min * swx + 2 * scale * min * sl;
    if (!(err < best_err)) return false;
    best_err = err;
    best_scale = scale;
    best_min = min;
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(levels[i]);
    return true;
  };
  try_candidate(fmax_level / (hi - lo), lo, false);
  for (int k = 0; k <= nstep; ++k)
    try_candidate((fmax_level + rmin + rdelta * static_cast<float>(k)) / (hi - lo), lo, true);
  for (int it = 0; it < kPolishSteps && best_scale > 0; ++it)
    if (!try_candidate(1 / best_scale, best_min, true)) break;
  *neg_min = -best_min;
  return best_scale;
}

// Symmetric fit x ~ scale*L with L in [-nneg, nneg-1], minimizing sum w*(scale*L - x)^2 (n a multiple
// of 8) over inverse scales -(nneg + step*k)/max, k = -nsteps..nsteps (max = signed value of largest
// |x|), each rounded and refit in closed form, then polished by re-rounding with the fitted scale.
// Returns scale (0 for a tiny group).
float fit_symmetric(int n, int nneg, const float* x, const float* w, float step, int nsteps) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (!(amax >= kTinyGroup)) return 0;
  const float lo = -static_cast<float>(nneg), hi = static_cast<float>(nneg - 1);
  float best_scale = 0, best_gain = 0;  // gain = slx^2/sll: the error reduction of the LS scale
  auto try_candidate = [&](float iscale) {
    Lanes sll_, slx_;
    for (int i0 = 0; i0 < n; i0 += 8) {
      for (int j = 0; j < 8; ++j) {
        const int i = i0 + j;
        const float l = round_even(clampf(iscale * x[i], lo, hi));
        sll_.v[j] += w[i] * l * l;
        slx_.v[j] += w[i] * l * x[i];
      }
    }
    const float sll = sll_.sum(), slx = slx_.sum();
    if (!(sll > 0 && slx * slx > best_gain * sll)) return false;
    best_gain = slx * slx / sll;
    best_scale = slx / sll;
    return true;
  };
  for (int k = -nsteps; k <= nsteps; ++k) try_candidate(-(static_cast<float>(nneg) + step * static_cast<float>(k)) / max);
  for (int it = 0; it < kPolishSteps && best_scale != 0; ++it)
    if (!try_candidate(1 / best_scale)) break;
  return best_scale;
}

// Largest value of v[0..n) (0 if all are <= 0).
float max_of(const float* v, int n) {
  float m = 0;
  for (int i = 0; i < n; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// Index of the signed value of largest magnitude.
int argmax_abs(const float* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (std::fabs(v[i]) > std::fabs(v[best])) best = i;
  return best;
}

// Re-rounds x to levels 0..nmax for the stored scale d and offset dm (y = d*L - dm).
void requantize_affine(const float* x, int n, float d, float dm, int nmax, uint8_t* L) {
  if (d == 0) {
    std::memset(L, 0, static_cast<size_t>(n));
    return;
  }
  const float id = 1 / d;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(round_even(clampf((x[i] + dm) * id, 0.0f, static_cast<float>(nmax))));
}

// Squared error of one group decoded as d*L - dm with L re-rounded for those scales (n % 8 == 0).
float affine_error(const float* x, int n, float d, float dm, int nmax) {
  const float id = d != 0 ? 1 / d : 0;
  Lanes err;
  for (int i0 = 0; i0 < n; i0 += 8) {
    for (int j = 0; j < 8; ++j) {
      const float xi = x[i0 + j];
      const float l = round_even(clampf((xi + dm) * id, 0.0f, static_cast<float>(nmax)));
      const float e = d * l - dm - xi;
      err.v[j] += e * e;
    }
  }
  return err.sum();
}

// Rounding each sub-block's scale and min to the super-block grid independently is not optimal: try
// the neighbours (+-1) of the rounded pair and keep the one with the least true error.
void refine_scale_min(const float* x, int n, float d, float dmin, int nmax, int max_code, int* ls, int* lm) {
  int best_ls = *ls, best_lm = *lm;
  float best = affine_error(x, n, d * best_ls, dmin * best_lm, nmax);
  for (int a = *ls - 1; a <= *ls + 1; ++a) {
    for (int b = *lm - 1; b <= *lm + 1; ++b) {
      if (a < 0 || b < 0 || a > max_code || b > max_code || (a == *ls && b == *lm)) continue;
      const float err = affine_error(x, n, d * a, dmin * b, nmax);
      if (err < best) {
        best = err;
        best_ls = a;
        best_lm = b;
      }
    }
  }
  *ls = best_ls;
  *lm = best_lm;
}

// Squared error of one group decoded as d*L with L in [lo, hi] re-rounded for that scale (n % 8 == 0).
float symmetric_error(const float* x, int n, float d, float lo, float hi) {
  const float id = d != 0 ? 1 / d : 0;
  Lanes err;
  for (int i0 = 0; i0 < n; i0 += 8) {
    for (int j = 0; j < 8; ++j) {
      const float xi = x[i0 + j];
      const float e = d * round_even(clampf(xi * id, lo, hi)) - xi;
      err.v[j] += e * e;
    }
  }
  return err.sum();
}

// As refine_scale_min for a signed sub-block scale code in [min_code, max_code].
int refine_scale(const float* x, int n, float d, float lo, float hi, int min_code, int max_code, int code) {
  int best_code = code;
  float best = symmetric_error(x, n, d * code, lo, hi);
  for (int c = code - 1; c <= code + 1; c += 2) {
    if (c < min_code || c > max_code) continue;
    const float err = symmetric_error(x, n, d * c, lo, hi);
    if (err < best) {
      best = err;
      best_code = c;
    }
  }
  return best_code;
}

// Packs eight 6-bit scales and mins into the 12-byte Q4_K / Q5_K layout.
void pack_k4_scales(const int* ls, const int* lm, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(ls[j] | (ls[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<uint8_t>(lm[j] | (lm[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<uint8_t>((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
  }
}

// Shared body of Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins. Fills d, dmin, the
// 12 scale bytes and 256 levels in 0..nmax.
void encode_k4_like(const float* x, int nmax, float rmin, float rdelta, int nstep, uint16_t* d_out,
                    uint16_t* dmin_out, uint8_t* scale_bytes, uint8_t* L) {
  float scales[8], mins[8];
  for (int j = 0; j < 8; ++j) scales[j] = fit_affine(32, nmax, x + 32 * j, kUnitWeights, L + 32 * j, &mins[j], rmin, rdelta, nstep);
  const float max_scale = max_of(scales, 8), max_min = max_of(mins, 8);
  const float inv_scale = max_scale > 0 ? 63 / max_scale : 0, inv_min = max_min > 0 ? 63 / max_min : 0;
  int ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = clamp_int(nearest_int(inv_scale * scales[j]), 0, 63);
    lm[j] = clamp_int(nearest_int(inv_min * mins[j]), 0, 63);
  }
  *d_out = fp16_saturating(max_scale / 63);
  *dmin_out = fp16_saturating(max_min / 63);
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < 8; ++j) refine_scale_min(x + 32 * j, 32, d, dmin, nmax, 63, &ls[j], &lm[j]);
  pack_k4_scales(ls, lm, scale_bytes);
  for (int j = 0; j < 8; ++j) requantize_affine(x + 32 * j, 32, d * ls[j], dmin * lm[j], nmax, L + 32 * j);
}

}  // namespace

void encode_q4_K(const float* x, block_q4_K* y, int64_t nb) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    encode_k4_like(x, 15, -1.0f, 0.2f, 10, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int c = 0; c < 4; ++c)  // chunk c: values 64c..64c+31 low nibbles, 64c+32.. high nibbles
      for (int l = 0; l < 32; ++l) y[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | L[64 * c + 32 + l] << 4);
  }
}

void encode_q5_K(const float* x, block_q5_K* y, int64_t nb) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    encode_k4_like(x, 31, -0.5f, 0.2f, 8, &y[i].d, &y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        y[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
        y[i].qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
    }
  }
}

// Q6_K: 16 sub-blocks of 16, symmetric 6-bit levels (-32..31), int8 sub-block scales.
void encode_q6_K(const float* x, block_q6_K* y, int64_t nb) {
  int L[QK_K];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    for (int k = 0; k < 16; ++k) {
      scales[k] = fit_symmetric(16, 32, x + 16 * k, kUnitWeights, 0.1f, 9);
    }
    const float max_scale = scales[argmax_abs(scales, 16)];
    std::memset(&y[i], 0, sizeof(block_q6_K));
    if (!(std::fabs(max_scale) >= kTinyGroup)) {
      for (int j = 0; j < 64; ++j) y[i].ql[j] = 0x88;  // level 32 = value 0 everywhere
      for (int j = 0; j < 32; ++j) y[i].qh[j] = 0xaa;
      continue;
    }
    const float iscale = -128 / max_scale;  // the largest |scale| becomes -128
    y[i].d = fp16_saturating(1 / iscale);
    const float d = fp16_to_fp32(y[i].d);
    for (int k = 0; k < 16; ++k) {
      const int code = clamp_int(nearest_int(iscale * scales[k]), -128, 127);
      y[i].scales[k] = static_cast<int8_t>(refine_scale(x + 16 * k, 16, d, -32, 31, -128, 127, code));
      const float dl = d * y[i].scales[k], idl = dl != 0 ? 1 / dl : 0;
      for (int j = 0; j < 16; ++j) L[16 * k + j] = static_cast<int>(round_even(clampf(x[16 * k + j] * idl, -32, 31))) + 32;
    }
    for (int h = 0; h < 2; ++h) {
      const int* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[i].ql[64 * h + l] = static_cast<uint8_t>((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
        y[i].ql[64 * h + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
        y[i].qh[32 * h + l] = static_cast<uint8_t>((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
      }
    }
  }
}

// Q3_K: 16 sub-blocks of 16, symmetric 3-bit levels (-4..3), 6-bit signed sub-block scales.
void encode_q3_K(const float* x, block_q3_K* y, int64_t nb) {
  int L[QK_K];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    for (int k = 0; k < 16; ++k) {
      scales[k] = fit_symmetric(16, 4, x + 16 * k, kUnitWeights, 0.1f, 9);
    }
    const float max_scale = scales[argmax_abs(scales, 16)];
    std::memset(&y[i], 0, sizeof(block_q3_K));
    int sc[16];
    float d = 0;
    if (std::fabs(max_scale) >= kTinyGroup) {
      const float iscale = -32 / max_scale;
      y[i].d = fp16_saturating(1 / iscale);
      d = fp16_to_fp32(y[i].d);
      for (int k = 0; k < 16; ++k)
        sc[k] = refine_scale(x + 16 * k, 16, d, -4, 3, -32, 31, clamp_int(nearest_int(iscale * scales[k]), -32, 31));
    } else {
      for (int k = 0; k < 16; ++k) sc[k] = 0;
    }
    for (int k = 0; k < 16; ++k) {
      const int v = sc[k] + 32;  // stored 0..63: low 4 bits in nibble k/8 of byte k%8, high 2 bits in byte 8+k%4
      y[i].scales[k % 8] |= static_cast<uint8_t>((v & 15) << (4 * (k / 8)));
      y[i].scales[8 + k % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (k / 4)));
      const float dl = d * sc[k], idl = dl != 0 ? 1 / dl : 0;
      for (int j = 0; j < 16; ++j) L[16 * k + j] = static_cast<int>(round_even(clampf(x[16 * k + j] * idl, -4, 3))) + 4;
    }
    // value v: low 2 bits at shift 2*((v%128)/32) of qs[32*(v/128) + v%32]; bit 2 in hmask[v%32] bit v/32
    for (int v = 0; v < QK_K; ++v) {
      y[i].qs[32 * (v / 128) + v % 32] |= static_cast<uint8_t>((L[v] & 3) << (2 * ((v % 128) / 32)));
      y[i].hmask[v % 32] |= static_cast<uint8_t>((L[v] >> 2) << (v / 32));
    }
  }
}

// Q2_K: 16 sub-blocks of 16, 2-bit levels with a 4-bit scale and 4-bit min per sub-block.
void encode_q2_K(const float* x, block_q2_K* y, int64_t nb) {
  uint8_t L[QK_K];
  float scales[16], mins[16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    for (int k = 0; k < 16; ++k) {
      scales[k] = fit_affine(16, 3, x + 16 * k, kUnitWeights, L + 16 * k, &mins[k], -0.5f, 0.2f, 8);
    }
    const float max_scale = max_of(scales, 16), max_min = max_of(mins, 16);
    const float inv_scale = max_scale > 0 ? 15 / max_scale : 0, inv_min = max_min > 0 ? 15 / max_min : 0;
    y[i].d = fp16_saturating(max_scale / 15);
    y[i].dmin = fp16_saturating(max_min / 15);
    const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
    for (int k = 0; k < 16; ++k) {
      int ls = clamp_int(nearest_int(inv_scale * scales[k]), 0, 15);
      int lm = clamp_int(nearest_int(inv_min * mins[k]), 0, 15);
      refine_scale_min(x + 16 * k, 16, d, dmin, 3, 15, &ls, &lm);
      y[i].scales[k] = static_cast<uint8_t>(ls | lm << 4);
      requantize_affine(x + 16 * k, 16, d * ls, dmin * lm, 3, L + 16 * k);
    }
    std::memset(y[i].qs, 0, sizeof(y[i].qs));
    for (int v = 0; v < QK_K; ++v) y[i].qs[32 * (v / 128) + v % 32] |= static_cast<uint8_t>(L[v] << (2 * ((v % 128) / 32)));
  }
}

}  // namespace tessera::codec
