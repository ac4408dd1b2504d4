// Registration of the SIMD and scalar CPU kernels. This file is compiled for baseline x86-64; the
// kernels it names live in *_avx512.cpp / *_avxvnni.cpp / *_avx2.cpp / *_scalar.cpp and only run after
// their supports() has checked the CPU. One line per kernel.
#include "kernels/registry.h"
#include "kernels/cpu/cpu_kernels.h"

namespace tessera::ops {

namespace {

bool any_cpu(const MatmulKernel&, const MatmulShape&, const DeviceCaps&) { return true; }
bool avx2(const MatmulKernel&, const MatmulShape&, const DeviceCaps& c) { return c.cpu.has_avx2(); }
bool avxvnni(const MatmulKernel&, const MatmulShape&, const DeviceCaps& c) { return c.cpu.has_avx2() && c.cpu.avx_vnni; }
bool avx512(const MatmulKernel&, const MatmulShape&, const DeviceCaps& c) { return c.cpu.has_avx512(); }
bool avx512_vbmi(const MatmulKernel&, const MatmulShape&, const DeviceCaps& c) {
  return c.cpu.has_avx512() && c.cpu.avx512_vbmi;
}

// A few tokens (several sequences decoding, a rarely chosen expert in prefill): the fused kernels
// decode each block once for up to 4 tokens; past that the unpacked tiles of the GEMM win.
constexpr int64_t kFewTokens = 4;

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

}  // namespace

void register_cpu_kernels(KernelRegistry& r) {
  // Priorities: avx512_fused 40 > avx512 30 > avxvnni_fused 28 > avx2_fused 26 > avxvnni 20 > avx2 15 >
  // scalar 10 > ref 0 (Q4_1 / Q5_1 f32-activation kernels: 35 / 27 fused gemv / 25 / 12; the Q8_K types' Q8_0-activation
  // kernels for ffn_down: 9 / 8 / 7 / 6).
  for (GgmlType t : matmul_weight_types()) {
    for (Op op : {Op::Gemv, Op::Gemm}) {
      if (is_float(t)) {
        r.add(op, Backend::Cpu, t, "avx512", 30, 4, avx512, gemm_float_avx512);
        r.add(op, Backend::Cpu, t, "avx2", 15, 4, avx2, gemm_float_avx2);
        r.add(op, Backend::Cpu, t, "scalar", 10, 4, any_cpu, gemm_float_scalar);
      } else {
        r.add(op, Backend::Cpu, t, "avx512", 30, 16, avx512, gemm_q8_tiles_avx512);
        r.add(op, Backend::Cpu, t, "avxvnni", 20, 8, avxvnni, gemm_q8_tiles_avxvnni);
        r.add(op, Backend::Cpu, t, "avx2", 15, 8, avx2, gemm_q8_tiles_avx2);
        r.add(op, Backend::Cpu, t, "scalar", 10, 8, any_cpu, gemm_q8_tiles_scalar);
      }
    }
  }
  // Q4_1 / Q5_1 decoded to f32 and multiplied with f32 activations, above every int8 kernel of their
  // level: on real models (SmolLM2) Q8_1 activations made the logits noisier than llama.cpp's, and these
  // types are small-model formats where the float FMAs cost little (issue 15).
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_1}) {
    for (Op op : {Op::Gemv, Op::Gemm}) {
      r.add(op, Backend::Cpu, t, "avx512", 35, 16, avx512, gemm_dequant_f32_avx512, 0, ActType::F32);
      r.add(op, Backend::Cpu, t, "avx2", 25, 16, avx2, gemm_dequant_f32_avx2, 0, ActType::F32);
      r.add(op, Backend::Cpu, t, "scalar", 12, 16, any_cpu, gemm_dequant_f32_scalar, 0, ActType::F32);
    }
  }
  // The Q8_K types with Q8_0 activations (one scale per 32 values instead of 256): the int8 tiles read a
  // scale per 32 anyway. Chosen only for matrices bound with Q8_0 preferred (ffn_down, whose input has
  // outliers: Model::bind_weights); priorities below every default kernel so nothing else picks them.
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS}) {
    for (Op op : {Op::Gemv, Op::Gemm}) {
      r.add(op, Backend::Cpu, t, "avx512", 9, 16, avx512, gemm_q8_tiles_avx512, 0, ActType::Q8_0);
      r.add(op, Backend::Cpu, t, "avxvnni", 8, 8, avxvnni, gemm_q8_tiles_avxvnni, 0, ActType::Q8_0);
      r.add(op, Backend::Cpu, t, "avx2", 7, 8, avx2, gemm_q8_tiles_avx2, 0, ActType::Q8_0);
      r.add(op, Backend::Cpu, t, "scalar", 6, 8, any_cpu, gemm_q8_tiles_scalar, 0, ActType::Q8_0);
    }
  }
  // fused single-token kernels (decode)
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_K, "avx512_fused", 40, 16, avx512, gemv_q4_K_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_K, "avx512_fused", 40, 16, avx512, gemv_q5_K_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q6_K, "avx512_fused", 40, 16, avx512, gemv_q6_K_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q8_0, "avx512_fused", 40, 16, avx512, gemv_q8_0_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_0, "avx512_fused", 40, 16, avx512, gemv_q4_0_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_0, "avx512_fused", 40, 16, avx512, gemv_q5_0_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::IQ4_NL, "avx512_fused", 40, 16, avx512, gemv_iq4_nl_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::MXFP4, "avx512_fused", 40, 16, avx512, gemv_mxfp4_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::IQ4_XS, "avx512_fused", 40, 16, avx512, gemv_iq4_xs_avx512);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::IQ4_NL, "avx512vbmi_fused", 45, 16, avx512_vbmi, gemv_iq4_nl_avx512vbmi);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_0, "avx512vbmi_fused", 45, 16, avx512_vbmi, gemv_q4_0_avx512vbmi);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::IQ4_NL, "avx512vbmi_fused", 45, 16, avx512_vbmi, gemv_iq4_nl_avx512vbmi, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q4_0, "avx512vbmi_fused", 45, 16, avx512_vbmi, gemv_q4_0_avx512vbmi, kFewTokens);
  // the same kernels for gemm with at most kFewTokens tokens
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q4_K, "avx512_fused", 40, 16, avx512, gemv_q4_K_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q5_K, "avx512_fused", 40, 16, avx512, gemv_q5_K_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q6_K, "avx512_fused", 40, 16, avx512, gemv_q6_K_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q8_0, "avx512_fused", 40, 16, avx512, gemv_q8_0_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q4_0, "avx512_fused", 40, 16, avx512, gemv_q4_0_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::Q5_0, "avx512_fused", 40, 16, avx512, gemv_q5_0_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::IQ4_NL, "avx512_fused", 40, 16, avx512, gemv_iq4_nl_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::MXFP4, "avx512_fused", 40, 16, avx512, gemv_mxfp4_avx512, kFewTokens);
  r.add(Op::Gemm, Backend::Cpu, GgmlType::IQ4_XS, "avx512_fused", 40, 16, avx512, gemv_iq4_xs_avx512, kFewTokens);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_K, "avxvnni_fused", 28, 16, avxvnni, gemv_q4_K_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_K, "avxvnni_fused", 28, 16, avxvnni, gemv_q5_K_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q6_K, "avxvnni_fused", 28, 16, avxvnni, gemv_q6_K_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q8_0, "avxvnni_fused", 28, 16, avxvnni, gemv_q8_0_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_0, "avxvnni_fused", 28, 16, avxvnni, gemv_q4_0_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_0, "avxvnni_fused", 28, 16, avxvnni, gemv_q5_0_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::IQ4_NL, "avxvnni_fused", 28, 16, avxvnni, gemv_iq4_nl_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::MXFP4, "avxvnni_fused", 28, 16, avxvnni, gemv_mxfp4_avxvnni);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_K, "avx2_fused", 26, 16, avx2, gemv_q4_K_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_K, "avx2_fused", 26, 16, avx2, gemv_q5_K_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q6_K, "avx2_fused", 26, 16, avx2, gemv_q6_K_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q8_0, "avx2_fused", 26, 16, avx2, gemv_q8_0_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_0, "avx2_fused", 26, 16, avx2, gemv_q4_0_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_0, "avx2_fused", 26, 16, avx2, gemv_q5_0_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::IQ4_NL, "avx2_fused", 26, 16, avx2, gemv_iq4_nl_avx2);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::MXFP4, "avx2_fused", 26, 16, avx2, gemv_mxfp4_avx2);
  // Q4_1 / Q5_1 decode with f32 activations, above the dequantizing avx2 kernel (25)
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q4_1, "avx2_fused", 27, 16, avx2, gemv_q4_1_f32_avx2, 0, ActType::F32);
  r.add(Op::Gemv, Backend::Cpu, GgmlType::Q5_1, "avx2_fused", 27, 16, avx2, gemv_q5_1_f32_avx2, 0, ActType::F32);
}

}  // namespace tessera::ops
