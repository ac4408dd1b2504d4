// Reference matmul kernels: decode each weight row with the reference codec (dequantize_row), decode
// the prepared activations exactly, and sum the products in double. Obviously correct, slow; the truth
// every other kernel is compared against, registered as <op>_<weight>_<act>_ref for every type.
#include <vector>

#include "kernels/registry.h"
#include "gguf/codecs.h"
#include "gguf/half.h"

namespace tessera::ops {

namespace {

// Activations of all tokens as doubles: [n_tokens][n_in].
std::vector<double> decode_activations(const PreparedActs& x) {
  const int64_t n = x.n_in;
  std::vector<double> out(static_cast<size_t>(x.n_tokens * n));
  for (int64_t t = 0; t < x.n_tokens; ++t) {
    double* o = out.data() + t * n;
    switch (x.type) {
      case ActType::F32:
        for (int64_t i = 0; i < n; ++i) o[i] = x.f32[t * x.f32_stride + i];
        break;
      case ActType::F16:
        for (int64_t i = 0; i < n; ++i) o[i] = fp16_to_fp32(x.h16[t * n + i]);
        break;
      case ActType::BF16:
        for (int64_t i = 0; i < n; ++i) o[i] = bf16_to_fp32(x.h16[t * n + i]);
        break;
      case ActType::Q8_0: case ActType::Q8_1: case ActType::Q8_K:
        for (int64_t i = 0; i < n; ++i)
          o[i] = static_cast<double>(x.qs[t * n + i]) * static_cast<double>(x.d[t * (n / 32) + i / 32]);
        break;
    }
  }
  return out;
}

void decode_weight_row(const WeightView& w, int64_t r, float* dst) {
  const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
  dequantize_row(w.type, row, dst, w.n_in);
}

void matmul_ref(const MatmulArgs& a) {
  const WeightView& w = *a.w;
  const PreparedActs& x = *a.x;
  const int64_t n = w.n_in;
  const std::vector<double> xd = decode_activations(x);
  std::vector<float> wrow(static_cast<size_t>(n));
  for (int64_t r = a.row_begin; r < a.row_end; ++r) {
    decode_weight_row(w, r, wrow.data());
    for (int64_t t = 0; t < x.n_tokens; ++t) {
      const double* xt = xd.data() + t * n;
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(wrow[i]) * xt[i];
      a.y[t * a.y_stride + r] = static_cast<float>(sum);
    }
  }
}

bool ref_supports(const MatmulKernel& k, const MatmulShape&, const DeviceCaps&) { return has_decoder(k.wtype); }

}  // namespace

void register_ref_kernels(KernelRegistry& r) {
  for (GgmlType t : matmul_weight_types()) {
    r.add(Op::Gemv, Backend::Ref, t, "ref", 0, 1, ref_supports, matmul_ref);
    r.add(Op::Gemm, Backend::Ref, t, "ref", 0, 1, ref_supports, matmul_ref);
  }
  // Q4_1 / Q5_1 with f32 activations: the truth of the CPU's gemm_dequant_f32 kernels.
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_1})
    for (Op op : {Op::Gemv, Op::Gemm}) r.add(op, Backend::Ref, t, "ref", 0, 1, ref_supports, matmul_ref, 0, ActType::F32);
  // The Q8_K types with Q8_0 activations, as ffn_down binds them (Model::bind_weights).
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS})
    for (Op op : {Op::Gemv, Op::Gemm}) r.add(op, Backend::Ref, t, "ref", 0, 1, ref_supports, matmul_ref, 0, ActType::Q8_0);
}

}  // namespace tessera::ops
