// Plain data handed to kernels: weight views, prepared activations and one matmul work item. Kept free of library
// types and inline code so SIMD translation units (compiled with -mavx512*) can include it safely.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/ggml_types.h"

namespace tessera::ops {

// A weight matrix: n_out rows of n_in values (ggml ne[0] = n_in, ne[1] = n_out), rows contiguous.
// An expert of a 3-D tensor is a WeightView whose data starts at e * n_out * row_bytes.
struct WeightView {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;  // [n_out][row_bytes]
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_bytes = 0;
};

// Tokens per KV cache block (the CPU attention kernels and the KV cache share this layout constant).
inline constexpr int kKvBlock = 32;

// How a job's activations are presented to a kernel (chosen by the weight type).
enum class ActType : uint8_t {
  F32,   // the caller's rows, untouched (F32 weights: the router)
  F16,   // rows converted to IEEE half (F16 weights)
  BF16,  // rows converted to bfloat16 (BF16 weights)
  Q8_0,  // per 32 values: d = amax/127 rounded to f16, q = round_half_even(x * 127/amax)
  Q8_1,  // Q8_0 quantization, used where the weights have a min term (Q4_1, Q5_1): needs the sums
  Q8_K,  // per 256 values: d = max/-127 (f32, signed max), q = min(127, round_half_even(x/d))
};

// Activations after conversion, shared by every row of a job. Row t of every array belongs to token t.
struct PreparedActs {
  ActType type = ActType::F32;
  int64_t n_tokens = 0;
  int64_t n_in = 0;
  const float* f32 = nullptr;   // F32: [n_tokens][f32_stride]
  int64_t f32_stride = 0;
  const uint16_t* h16 = nullptr;  // F16 / BF16: [n_tokens][n_in]
  const int8_t* qs = nullptr;     // Q8_*: [n_tokens][n_in] quantized values
  const float* d = nullptr;       // Q8_*: [n_tokens][n_in / 32] scale of each 32 values (Q8_K repeats it)
  const int32_t* s = nullptr;     // Q8_*: [n_tokens][n_in / 16] sum of qs over each 16 values
  const int32_t* s32 = nullptr;   // Q8_*: [n_tokens][n_in / 32] sum of qs over each 32 values
};

// One work item: rows [row_begin, row_end) of one job's weights, for all of its tokens:
// y[t * y_stride + r] = sum_i W[r][i] * x[t][i].
struct MatmulArgs {
  const WeightView* w = nullptr;
  const PreparedActs* x = nullptr;
  float* y = nullptr;  // [n_tokens][y_stride]
  int64_t y_stride = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
};

using MatmulFn = void (*)(const MatmulArgs&);

}  // namespace tessera::ops
