// Small f32 ops of the forward pass (see elementwise.h). Plain loops: the compiler vectorises them
// and they are a tiny share of the time next to matmul and attention.
#include "kernels/cpu/elementwise.h"

#include <cmath>

namespace tessera::ops {

void rmsnorm(const float* x, int64_t x_stride, float* y, int64_t y_stride, const float* w, int64_t n_rows,
             int64_t n, double eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * x_stride;
    float* yr = y + r * y_stride;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + static_cast<float>(eps));
    if (w) {
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] * scale) * w[i];
    } else {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale;
    }
  }
}

void rope_table(const int32_t* pos, int64_t n_tokens, int64_t head_dim, double base, float* cos_out,
                float* sin_out, double freq_scale, const float* freq_factors) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      double theta = freq_scale * pos[t] * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      if (freq_factors) theta /= freq_factors[i];
      cos_out[t * half + i] = static_cast<float>(std::cos(theta));
      sin_out[t * half + i] = static_cast<float>(std::sin(theta));
    }
  }
}

void rope_neox(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* a = x + h * head_dim;
    float* b = a + half;
    for (int64_t i = 0; i < half; ++i) {
      const float x0 = a[i], x1 = b[i];
      a[i] = x0 * cos[i] - x1 * sin[i];
      b[i] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void rope_norm(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* a = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float x0 = a[2 * i], x1 = a[2 * i + 1];
      a[2 * i] = x0 * cos[i] - x1 * sin[i];
      a[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void top_k(const float* x, int64_t n, int k, int32_t* idx) {
  // k is small (8 of 128): keep a sorted list of the best k so far (insertion).
  int filled = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (filled == k && !(x[i] > x[idx[k - 1]])) continue;
    int j = filled < k ? filled++ : k - 1;
    while (j > 0 && x[i] > x[idx[j - 1]]) {
      idx[j] = idx[j - 1];
      --j;
    }
    idx[j] = static_cast<int32_t>(i);
  }
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace tessera::ops
