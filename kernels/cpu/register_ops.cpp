// Registration of the smaller ops' kernels: attention over the f16 paged KV, activation quantization
// for matmul, and the element-wise ops of the forward pass, each with its reference twin (`ref`, the
// plain loop the others are compared with). One line per kernel; names are <op key>_<variant>.
#include "kernels/registry.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/ref/act_quant.h"

namespace tessera::ops {

namespace {

bool avx512(const DeviceCaps& c, int64_t) { return c.cpu.has_avx512(); }
bool avx2(const DeviceCaps& c, int64_t) { return c.cpu.has_avx2(); }
// The AVX-512 attention keeps a row's query and output in registers: head_dim a multiple of 16, <= 256.
bool avx512_attention(const DeviceCaps& c, int64_t head_dim) {
  return c.cpu.has_avx512() && head_dim % 16 == 0 && head_dim <= 256;
}

// The AVX2 twin: head_dim a multiple of 8, <= 256.
bool avx2_attention(const DeviceCaps& c, int64_t head_dim) {
  return c.cpu.has_avx2() && head_dim % 8 == 0 && head_dim <= 256;
}

}  // namespace

void register_op_kernels(KernelRegistry& r) {
  // Priorities as for matmul: avx512 30 > avx2 15 > ref 0.
  r.add_op("attention_f16", Backend::Ref, "ref", 0, nullptr, detail::attend_rows_generic);
  r.add_op("attention_f16", Backend::Cpu, "avx512", 30, avx512_attention, detail::attend_rows_avx512);
  r.add_op("attention_f16", Backend::Cpu, "avx2", 15, avx2_attention, detail::attend_rows_avx2);

  // quantize_bf16 has no SIMD kernel (quantize_activations_avx512 would hand it to the reference).
  for (ActType a : {ActType::F16, ActType::BF16, ActType::Q8_0, ActType::Q8_1, ActType::Q8_K})
    r.add_op(quantize_op_key(a), Backend::Ref, "ref", 0, nullptr, quantize_activations);
  r.add_op("quantize_f16", Backend::Cpu, "avx512", 30, avx512, quantize_activations_avx512);
  r.add_op("quantize_q8_0", Backend::Cpu, "avx512", 30, avx512, quantize_activations_avx512);
  r.add_op("quantize_q8_1", Backend::Cpu, "avx512", 30, avx512, quantize_activations_avx512);
  r.add_op("quantize_q8_K", Backend::Cpu, "avx512", 30, avx512, quantize_activations_avx512);
  r.add_op("quantize_f16", Backend::Cpu, "avx2", 15, avx2, quantize_activations_avx2);
  r.add_op("quantize_q8_0", Backend::Cpu, "avx2", 15, avx2, quantize_activations_avx2);
  r.add_op("quantize_q8_1", Backend::Cpu, "avx2", 15, avx2, quantize_activations_avx2);
  r.add_op("quantize_q8_K", Backend::Cpu, "avx2", 15, avx2, quantize_activations_avx2);

  r.add_op("rmsnorm_f32", Backend::Ref, "ref", 0, nullptr, rmsnorm);
  r.add_op("rope_neox_f32", Backend::Ref, "ref", 0, nullptr, rope_neox);
  r.add_op("rope_norm_f32", Backend::Ref, "ref", 0, nullptr, rope_norm);
  r.add_op("swiglu_f32", Backend::Ref, "ref", 0, nullptr, swiglu);
  r.add_op("swiglu_f32", Backend::Cpu, "avx512", 30, avx512, detail::swiglu_avx512);
  r.add_op("swiglu_f32", Backend::Cpu, "avx2", 15, avx2, detail::swiglu_avx2);
}

}  // namespace tessera::ops
