// Small f32 ops of the forward pass: RMSNorm, RoPE (NEOX and NORM pairings), SwiGLU, softmax, top-k.
// Row-wise and cheap next to the matmuls; shapes are given per call. rmsnorm, rope_neox, rope_norm and
// swiglu are registered kernels (rmsnorm_f32_ref, rope_neox_f32_ref, rope_norm_f32_ref, swiglu_f32_ref /
// swiglu_f32_avx512: kernels/cpu/register_ops.cpp).
#pragma once
#include <cstdint>

namespace tessera::ops {

// y = x / sqrt(mean(x^2) + eps) * w for each of n_rows rows of n values (sum of squares in double,
// as llama.cpp). x and y may alias. w may be nullptr (no weight).
void rmsnorm(const float* x, int64_t x_stride, float* y, int64_t y_stride, const float* w, int64_t n_rows,
             int64_t n, double eps);

// RoPE angle table for a batch: cos/sin [n_tokens][head_dim/2] with
// theta_i = freq_scale * pos * base^(-2i/head_dim) / freq_factors[i] (freq_factors: [head_dim/2], from
// a llama model's rope_freqs tensor, or nullptr for all 1; freq_scale: 1 / linear scaling factor), as
// ggml's rope computes it without YaRN.
void rope_table(const int32_t* pos, int64_t n_tokens, int64_t head_dim, double base, float* cos_out,
                float* sin_out, double freq_scale = 1.0, const float* freq_factors = nullptr);

// NEOX RoPE in place on n_heads heads of one token (x: [n_heads][head_dim]), rotating pairs (i, i + d/2):
// y[i] = x[i] cos - x[i+d/2] sin, y[i+d/2] = x[i] sin + x[i+d/2] cos.
void rope_neox(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

// NORM RoPE (llama's rope type) in place, same arguments, rotating adjacent pairs (2i, 2i + 1):
// y[2i] = x[2i] cos_i - x[2i+1] sin_i, y[2i+1] = x[2i] sin_i + x[2i+1] cos_i.
void rope_norm(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

// g[i] = silu(g[i]) * u[i], silu(a) = a / (1 + e^-a). The plain loop (swiglu_f32_ref); the AVX-512
// twin is detail::swiglu_avx512 (swiglu_f32_avx512), chosen through the registry.
void swiglu(float* g, const float* u, int64_t n);

// In-place softmax of n values (max subtracted, sum in double).
void softmax(float* x, int64_t n);

// Indices of the k largest of n values, largest first (lower index first on ties).
void top_k(const float* x, int64_t n, int k, int32_t* idx);

// y[i] += x[i]
void add(float* y, const float* x, int64_t n);
// y[i] += a * x[i]
void axpy(float* y, float a, const float* x, int64_t n);

namespace detail {
void swiglu_avx512(float* g, const float* u, int64_t n);
void swiglu_avx2(float* g, const float* u, int64_t n);
}  // namespace detail

}  // namespace tessera::ops
