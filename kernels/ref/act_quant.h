// Activation preparation for matmul: per-row conversion / quantization of the inputs into the format a
// weight type's kernels consume (see ActType). Scalar and exact; shared by every kernel, so a SIMD
// kernel and its reference always see the same activations.
#pragma once
#include <cstdint>

#include "kernels/kernel_args.h"

namespace tessera::ops {

// Writes tokens [t_begin, t_end) of x ([n_tokens][x_stride], first n_in used) into the buffers of a
// PreparedActs of this type: qs [n_tokens][n_in], d [n_tokens][n_in/32], s [n_tokens][n_in/16] and
// s32 [n_tokens][n_in/32] for the Q8 types (n_in a multiple of 32, of 256 for Q8_K); h16 [n_tokens][n_in] for F16 / BF16.
// F32 needs no buffer (the kernels read x directly).
void quantize_activations(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                          int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16);

// One row of each format (the functions above call these per token).
void quantize_row_act_q8_0(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s);
void quantize_row_act_q8_K(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s);

}  // namespace tessera::ops
