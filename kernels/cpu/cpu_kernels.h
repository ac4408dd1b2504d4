// Entry points of the SIMD / scalar CPU matmul kernels (one function per kernel family and ISA).
// Only register_cpu.cpp calls these, and only through the registry after supports() has checked the CPU.
#pragma once
#include "kernels/kernel_args.h"

namespace tessera::ops {

// Quantized weights, int8 dot products on unpacked row tiles (every quantized type).
void gemm_q8_tiles_avx512(const MatmulArgs& a);
void gemm_q8_tiles_avxvnni(const MatmulArgs& a);
void gemm_q8_tiles_avx2(const MatmulArgs& a);
void gemm_q8_tiles_scalar(const MatmulArgs& a);

// F32 / F16 / BF16 weights with f32 / f16 / bf16 activations, f32 accumulation.
void gemm_float_avx512(const MatmulArgs& a);
void gemm_float_avx2(const MatmulArgs& a);
void gemm_float_scalar(const MatmulArgs& a);

// Quantized weights decoded to f32 tiles with f32 activations (Q4_1 / Q5_1: see gemm_dequant.h).
void gemm_dequant_f32_avx512(const MatmulArgs& a);
void gemm_dequant_f32_avx2(const MatmulArgs& a);
void gemm_dequant_f32_scalar(const MatmulArgs& a);

// Fused single-token kernels that decode and dot in registers (memory-bound decode).
void gemv_q4_K_avx512(const MatmulArgs& a);
void gemv_q6_K_avx512(const MatmulArgs& a);
void gemv_q5_K_avx512(const MatmulArgs& a);
void gemv_q8_0_avx512(const MatmulArgs& a);
void gemv_iq4_nl_avx512(const MatmulArgs& a);
void gemv_q5_0_avx512(const MatmulArgs& a);
void gemv_q4_0_avx512(const MatmulArgs& a);
void gemv_mxfp4_avx512(const MatmulArgs& a);
void gemv_iq4_xs_avx512(const MatmulArgs& a);
void gemv_iq4_nl_avx512vbmi(const MatmulArgs& a);
void gemv_q4_0_avx512vbmi(const MatmulArgs& a);
void gemv_q4_K_avx2(const MatmulArgs& a);
void gemv_q5_K_avx2(const MatmulArgs& a);
void gemv_q6_K_avx2(const MatmulArgs& a);
void gemv_q8_0_avx2(const MatmulArgs& a);
void gemv_q4_0_avx2(const MatmulArgs& a);
void gemv_q4_1_f32_avx2(const MatmulArgs& a);  // f32 activations
void gemv_q5_1_f32_avx2(const MatmulArgs& a);
void gemv_q5_0_avx2(const MatmulArgs& a);
void gemv_iq4_nl_avx2(const MatmulArgs& a);
void gemv_mxfp4_avx2(const MatmulArgs& a);
void gemv_q4_K_avxvnni(const MatmulArgs& a);
void gemv_q5_K_avxvnni(const MatmulArgs& a);
void gemv_q6_K_avxvnni(const MatmulArgs& a);
void gemv_q8_0_avxvnni(const MatmulArgs& a);
void gemv_q4_0_avxvnni(const MatmulArgs& a);
void gemv_q5_0_avxvnni(const MatmulArgs& a);
void gemv_iq4_nl_avxvnni(const MatmulArgs& a);
void gemv_mxfp4_avxvnni(const MatmulArgs& a);

// Activation preparation with AVX-512 / AVX2, bit-identical to quantize_activations (kernels/ref/act_quant.h).
void quantize_activations_avx512(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                                 int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16);
void quantize_activations_avx2(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                               int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16);

}  // namespace tessera::ops
