// Kernel registry and ops::matmul API tests: naming, selection, overrides, errors, and matmul results
// against a float64 product of the decoded weights with the unquantized activations.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "engine/backend/cpu_matmul.h"
#include "kernels/registry.h"
#include "gguf/codecs.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ref/act_quant.h"
#include "tools/testdata/random_weights.h"

namespace tessera::ops {
namespace {

TEST(KernelRegistry, NamesFollowTheConvention) {
  std::set<std::string> names;
  for (const MatmulKernel& k : matmul_kernels()) {
    const std::string expect = std::string(op_name(k.op)) + "_" + std::string(type_name(k.wtype)) + "_" +
                               std::string(act_type_name(k.act)) + "_" + k.variant;
    EXPECT_EQ(k.name, expect);
    EXPECT_TRUE(names.insert(k.name).second) << "duplicate " << k.name;
    EXPECT_NE(k.run, nullptr) << k.name;
    EXPECT_EQ(find_kernel(k.name), &k);
  }
  EXPECT_NE(find_kernel("gemv_q4_K_q8_K_ref"), nullptr);
  EXPECT_NE(find_kernel("gemm_iq4_nl_q8_0_ref"), nullptr);
  EXPECT_NE(find_kernel("gemv_f32_f32_ref"), nullptr);
  EXPECT_EQ(find_kernel("gemv_q4_K_q8_K_nonsense"), nullptr);
}

TEST(KernelRegistry, EveryTypeHasAReferenceForBothOps) {
  for (GgmlType t : matmul_weight_types()) {
    for (Op op : {Op::Gemv, Op::Gemm}) {
      const std::string name = op_key(op, t) + "_" + std::string(act_type_name(activation_type_for(t))) + "_ref";
      const MatmulKernel* k = find_kernel(name);
      ASSERT_NE(k, nullptr) << name;
      EXPECT_EQ(k->backend, Backend::Ref);
    }
  }
}

TEST(KernelRegistry, ActivationTypes) {
  EXPECT_EQ(activation_type_for(GgmlType::Q4_K), ActType::Q8_K);
  EXPECT_EQ(activation_type_for(GgmlType::Q6_K), ActType::Q8_K);
  EXPECT_EQ(activation_type_for(GgmlType::IQ4_XS), ActType::Q8_K);
  EXPECT_EQ(activation_type_for(GgmlType::IQ4_NL), ActType::Q8_0);
  EXPECT_EQ(activation_type_for(GgmlType::Q8_0), ActType::Q8_0);
  EXPECT_EQ(activation_type_for(GgmlType::Q4_1), ActType::Q8_1);
  EXPECT_EQ(activation_type_for(GgmlType::BF16), ActType::BF16);
  EXPECT_EQ(activation_type_for(GgmlType::F32), ActType::F32);
}

TEST(KernelRegistry, SelectionPrefersTheHighestPrioritySupported) {
  const DeviceCaps caps = host_caps();
  const KernelPolicy none;
  for (GgmlType t : matmul_weight_types()) {
    const MatmulShape s{t, 512, 64, 1};
    const MatmulKernel& k = none.choose(s, caps);
    EXPECT_EQ(k.op, Op::Gemv);
    EXPECT_TRUE(kernel_supports(k, s, caps));
    for (const MatmulKernel& other : matmul_kernels())
      if (other.op == Op::Gemv && kernel_supports(other, s, caps)) EXPECT_GE(k.priority, other.priority) << other.name;
    EXPECT_EQ(none.choose(MatmulShape{t, 512, 64, 7}, caps).op, Op::Gemm);
  }
}

TEST(KernelRegistry, OverridesAreHonouredAndCheckedByName) {
  const DeviceCaps caps = host_caps();
  const MatmulShape s{GgmlType::Q4_K, 256, 8, 1};
  KernelPolicy p;
  p.set("gemv_q4_K", "gemv_q4_K_q8_K_ref");
  EXPECT_EQ(p.choose(s, caps).name, "gemv_q4_K_q8_K_ref");
  p.set("gemv_q4_K", "ref");  // a bare variant
  EXPECT_EQ(p.choose(s, caps).name, "gemv_q4_K_q8_K_ref");
  p.set("gemv_q4_K", "");
  p.parse("*=ref,gemm_q6_K=gemm_q6_K_q8_K_ref");
  EXPECT_EQ(p.choose(MatmulShape{GgmlType::IQ4_NL, 64, 8, 1}, caps).name, "gemv_iq4_nl_q8_0_ref");
  EXPECT_EQ(p.choose(MatmulShape{GgmlType::Q6_K, 256, 8, 4}, caps).name, "gemm_q6_K_q8_K_ref");
  KernelPolicy bad;
  bad.set("gemv_q4_K", "gemv_q4_K_q8_K_nonsense");
  EXPECT_THROW(bad.choose(s, caps), Error);
  bad.set("gemv_q4_K", "gemv_q6_K_q8_K_ref");  // wrong op key
  EXPECT_THROW(bad.choose(s, caps), Error);
  KernelPolicy malformed;
  EXPECT_THROW(malformed.parse("gemv_q4_K"), Error);
  EXPECT_TRUE(malformed.empty());
  // the reference backend runs only reference kernels, whatever the policy says
  EXPECT_EQ(KernelPolicy().choose(s, host_caps(Backend::Ref)).name, "gemv_q4_K_q8_K_ref");
  KernelPolicy simd;
  simd.set("gemv_q4_K", "scalar");
  EXPECT_THROW(simd.choose(s, host_caps(Backend::Ref)), Error);
}

TEST(KernelRegistry, BindingChoosesPerTokenCountOnce) {
  const DeviceCaps caps = host_caps();
  const BoundMatmul b = BoundMatmul::bind(KernelPolicy(), GgmlType::Q4_K, 2048, 768, caps);
  EXPECT_EQ(b.for_tokens(1).op, Op::Gemv);
  for (int64_t n : {2, 3, 4, 5, 8, 9, 64, 512}) {
    const MatmulKernel& k = b.for_tokens(n);
    EXPECT_EQ(k.op, Op::Gemm) << n;
    EXPECT_TRUE(kernel_supports(k, MatmulShape{GgmlType::Q4_K, 2048, 768, n}, caps)) << k.name << " " << n;
    EXPECT_EQ(&k, &KernelPolicy().choose(MatmulShape{GgmlType::Q4_K, 2048, 768, n}, caps)) << n;
  }
  // a forced few-token kernel binds for the counts it runs and says why not for the rest
  for (const MatmulKernel& k : matmul_kernels()) {
    if (k.op != Op::Gemm || k.max_tokens != 4 || !kernel_supports(k, MatmulShape{k.wtype, 2048, 768, 4}, caps)) continue;
    KernelPolicy p;
    p.set(op_key(Op::Gemm, k.wtype), k.name);
    const BoundMatmul f = BoundMatmul::bind(p, k.wtype, 2048, 768, caps);
    EXPECT_EQ(&f.for_tokens(4), &k);
    EXPECT_THROW(f.for_tokens(5), Error) << k.name;
    break;
  }
  // nothing runs Q2_K: a load error, not a failure at the first token
  EXPECT_THROW(BoundMatmul::bind(KernelPolicy(), GgmlType::Q2_K, 256, 8, caps), Error);
}

// ffn_down binds with a preferred activation type (Q8_0: one scale per 32 values): the Q8_K types take
// it at every token count on cpu and ref; types without such a kernel keep their usual choice; an
// explicit override still wins.
TEST(KernelRegistry, APreferredActivationTypeWinsWhereAKernelHasIt) {
  KernelPolicy pref;
  pref.prefer_act(ActType::Q8_0);
  const KernelPolicy none;
  for (Backend be : {Backend::Cpu, Backend::Ref}) {
    const DeviceCaps caps = host_caps(be);
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS}) {
      for (int64_t n : {1, 3, 7, 512}) {
        const MatmulShape s{t, 2048, 768, n};
        EXPECT_EQ(none.choose(s, caps).act, ActType::Q8_K) << type_name(t) << " " << n;
        const MatmulKernel& k = pref.choose(s, caps);
        EXPECT_EQ(k.act, ActType::Q8_0) << k.name << " " << n;
        EXPECT_TRUE(kernel_supports(k, s, caps)) << k.name;
        for (const MatmulKernel& o : matmul_kernels())  // the best of the preferred kernels
          if (o.op == k.op && o.wtype == t && o.act == ActType::Q8_0 && kernel_supports(o, s, caps))
            EXPECT_GE(k.priority, o.priority) << o.name;
      }
      const BoundMatmul b = BoundMatmul::bind(pref, t, 2048, 768, caps);
      EXPECT_NE(b.quantize, nullptr);
      for (int64_t n : {1, 2, 8, 64}) EXPECT_EQ(b.for_tokens(n).act, ActType::Q8_0) << n;
    }
    for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::F16})
      EXPECT_EQ(&pref.choose(MatmulShape{t, 2048, 768, 1}, caps), &none.choose(MatmulShape{t, 2048, 768, 1}, caps));
  }
  // from 5 tokens on only (what ffn_down binds): decode keeps its kernels, and each bound kernel has
  // the quantizer of its own activation type
  KernelPolicy many;
  many.prefer_act(ActType::Q8_0, 5);
  const DeviceCaps caps = host_caps();
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    for (int64_t n : {1, 2, 4})
      EXPECT_EQ(&many.choose(MatmulShape{t, 2048, 768, n}, caps), &none.choose(MatmulShape{t, 2048, 768, n}, caps));
    EXPECT_EQ(many.choose(MatmulShape{t, 2048, 768, 5}, caps).act, ActType::Q8_0);
    const BoundMatmul b = BoundMatmul::bind(many, t, 2048, 768, caps);
    EXPECT_EQ(b.for_tokens(1).act, ActType::Q8_K);
    EXPECT_EQ(b.for_tokens(64).act, ActType::Q8_0);
    EXPECT_NE(b.quantizer(ActType::Q8_K), nullptr);
    EXPECT_NE(b.quantizer(ActType::Q8_0), nullptr);
  }
  pref.set("gemv_q4_K", "gemv_q4_K_q8_K_ref");
  EXPECT_EQ(pref.choose(MatmulShape{GgmlType::Q4_K, 256, 8, 1}, host_caps()).name, "gemv_q4_K_q8_K_ref");
}

TEST(KernelRegistry, UnsupportedShapesAreAnErrorNotAFallback) {
  const KernelPolicy none;
  // n_in not a multiple of the block size: nothing supports it
  EXPECT_THROW(none.choose(MatmulShape{GgmlType::Q4_K, 100, 8, 1}, host_caps()), Error);
  // a type without kernels
  EXPECT_THROW(none.choose(MatmulShape{GgmlType::Q2_K, 256, 8, 1}, host_caps()), Error);
  // a forced SIMD kernel on a CPU without the features
  DeviceCaps plain;
  plain.backend = Backend::Cpu;
  for (const MatmulKernel& k : matmul_kernels()) {
    if (k.variant != "avx512") continue;
    KernelPolicy p;
    p.set(op_key(k.op, k.wtype), k.name);
    EXPECT_THROW(p.choose(MatmulShape{k.wtype, 256, 8, k.op == Op::Gemv ? 1 : 4}, plain), Error) << k.name;
  }
}

TEST(KernelRegistry, OpKernelsAreNamedChosenAndOverridden) {
  std::set<std::string> ops;
  for (const OpKernel& k : op_kernels()) {
    EXPECT_EQ(k.name, k.op + "_" + k.variant);
    EXPECT_EQ(find_op_kernel(k.name), &k);
    ops.insert(k.op);
  }
  for (const std::string& op : ops) EXPECT_NE(find_op_kernel(op + "_ref"), nullptr) << op << " has no ref twin";
  DeviceCaps avx512 = host_caps();
  avx512.cpu = limit_cpu_caps(detect_cpu_caps(), "avx512");
  DeviceCaps scalar = avx512;
  scalar.cpu = CpuCaps{};
  const KernelPolicy none;
  if (avx512.cpu.has_avx512()) {  // the defaults are what ran before the registry had these ops
    EXPECT_EQ(none.choose_op("attention_f16", avx512, 128).name, "attention_f16_avx512");
    EXPECT_EQ(none.choose_op("attention_f16", avx512, 72).name, "attention_f16_avx2");  // not a multiple of 16
    EXPECT_EQ(none.choose_op("attention_f16", avx512, 20).name, "attention_f16_ref");   // nor of 8
    EXPECT_EQ(none.choose_op("swiglu_f32", avx512).name, "swiglu_f32_avx512");
    EXPECT_EQ(none.choose_op("quantize_q8_K", avx512).name, "quantize_q8_K_avx512");
    EXPECT_EQ(BoundMatmul::bind(none, GgmlType::Q4_K, 2048, 768, avx512).quantize,
              find_op_kernel("quantize_q8_K_avx512")->fn<QuantizeFn>());
  }
  EXPECT_EQ(none.choose_op("attention_f16", scalar, 128).name, "attention_f16_ref");
  EXPECT_EQ(none.choose_op("quantize_bf16", avx512).name, "quantize_bf16_ref");
  KernelPolicy all_ref;
  all_ref.parse("*=ref");
  for (const std::string& op : ops) EXPECT_EQ(all_ref.choose_op(op, avx512, 128).variant, "ref") << op;
  KernelPolicy avx2;  // '*' reaches an op only where it has that variant
  avx2.parse("*=avx2");
  EXPECT_EQ(avx2.choose_op("rmsnorm_f32", scalar).name, "rmsnorm_f32_ref");
  KernelPolicy bad;
  bad.parse("attention_f16=avxvnni");  // no such variant of this op
  EXPECT_THROW(bad.choose_op("attention_f16", avx512, 128), Error);
  KernelPolicy wrong_op;
  wrong_op.parse("swiglu_f32=attention_f16_ref");
  EXPECT_THROW(wrong_op.choose_op("swiglu_f32", avx512), Error);
  KernelPolicy cannot;
  cannot.parse("attention_f16=avx512");
  EXPECT_THROW(cannot.choose_op("attention_f16", scalar, 128), Error);
  EXPECT_THROW(BoundOps::bind(cannot, scalar, 128), Error);
  const BoundOps ref_ops = BoundOps::bind(all_ref, avx512, 128);
  EXPECT_EQ(ref_ops.swiglu, find_op_kernel("swiglu_f32_ref")->fn<SwigluFn>());
  EXPECT_EQ(ref_ops.attention, find_op_kernel("attention_f16_ref")->fn<AttendRowsFn>());
}

TEST(KernelRegistry, CpuLevelsLimitCaps) {
  CpuCaps all;
  all.avx2 = all.fma = all.f16c = all.avx512f = all.avx512bw = all.avx512vl = all.avx512_vnni = true;
  EXPECT_TRUE(limit_cpu_caps(all, "avx512").has_avx512());
  EXPECT_FALSE(limit_cpu_caps(all, "avx2").has_avx512());
  EXPECT_TRUE(limit_cpu_caps(all, "avx2").has_avx2());
  EXPECT_FALSE(limit_cpu_caps(all, "scalar").has_avx2());
  EXPECT_THROW(limit_cpu_caps(all, "sse9"), Error);
}

// y = W x in float64 with unquantized activations.
std::vector<double> exact_product(GgmlType t, const std::vector<uint8_t>& w, int64_t n_in, int64_t n_out,
                                  const std::vector<float>& x, int64_t n_tokens) {
  std::vector<double> y(static_cast<size_t>(n_out * n_tokens));
  std::vector<float> row(static_cast<size_t>(n_in));
  const size_t rb = row_bytes(t, n_in);
  for (int64_t o = 0; o < n_out; ++o) {
    dequantize_row(t, w.data() + o * rb, row.data(), n_in);
    for (int64_t tk = 0; tk < n_tokens; ++tk) {
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) s += static_cast<double>(row[i]) * x[tk * n_in + i];
      y[tk * n_out + o] = s;
    }
  }
  return y;
}

double nmse(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0 ? num / den : num;
}

TEST(Matmul, AllTypesMatchAFloat64ProductWithinQuantizationError) {
  ThreadPool pool(2);
  const int64_t n_in = 512, n_out = 37;
  for (GgmlType t : matmul_weight_types()) {
    for (int64_t n_tokens : {1, 3}) {
      const auto w = random_weight_rows(t, n_out, n_in, 7);
      const auto x = random_activations(n_in * n_tokens, 11);
      std::vector<float> y(static_cast<size_t>(n_out * n_tokens), NAN);
      MatmulJob job;
      job.w = WeightView{t, w.data(), n_in, n_out, row_bytes(t, n_in)};
      job.x = x.data();
      job.x_stride = n_in;
      job.n_tokens = n_tokens;
      job.y = y.data();
      job.y_stride = n_out;
      matmul(job, pool);
      const double e = nmse(y, exact_product(t, w, n_in, n_out, x, n_tokens));
      // 8-bit activations with outliers give NMSE up to ~6e-4 (Q8_K, one scale per 256); f16 less
      const double budget = t == GgmlType::F32 ? 1e-12 : t == GgmlType::F16 ? 1e-6 : 2e-3;
      EXPECT_LT(e, budget) << type_name(t) << " n_tokens=" << n_tokens;
    }
  }
}

TEST(Matmul, SeveralJobsSharingAnInputAndEmptyJobs) {
  ThreadPool pool(2);
  const int64_t n_in = 256;
  const auto x = random_activations(n_in * 2, 3);
  const auto w1 = random_weight_rows(GgmlType::Q4_K, 17, n_in, 1);
  const auto w2 = random_weight_rows(GgmlType::Q6_K, 5, n_in, 2);
  std::vector<float> y1(17 * 2), y2(5 * 2), y3(4, 42.0f);
  std::vector<MatmulJob> jobs(3);
  jobs[0] = {WeightView{GgmlType::Q4_K, w1.data(), n_in, 17, row_bytes(GgmlType::Q4_K, n_in)}, x.data(), n_in, 2, y1.data(), 17};
  jobs[1] = {WeightView{GgmlType::Q6_K, w2.data(), n_in, 5, row_bytes(GgmlType::Q6_K, n_in)}, x.data(), n_in, 2, y2.data(), 5};
  jobs[2] = {WeightView{GgmlType::Q6_K, w2.data(), n_in, 5, row_bytes(GgmlType::Q6_K, n_in)}, x.data(), n_in, 0, y3.data(), 5};
  matmul(jobs, pool);
  EXPECT_LT(nmse(y1, exact_product(GgmlType::Q4_K, w1, n_in, 17, x, 2)), 2e-3);
  EXPECT_LT(nmse(y2, exact_product(GgmlType::Q6_K, w2, n_in, 5, x, 2)), 2e-3);
  for (float v : y3) EXPECT_EQ(v, 42.0f);  // no tokens: nothing written
}

TEST(ActivationQuant, SimdIsBitIdenticalToTheReference) {
  if (!cpu_caps().has_avx512()) GTEST_SKIP() << "no AVX-512 here";
  const int64_t n = 1024, n_tok = 3;
  auto x = random_activations(n * n_tok, 9);
  for (int i = 256; i < 512; ++i) x[i] = 0.0f;           // an all-zero Q8_K block
  x[600] = 3.0f;  // equal magnitudes: the first one's sign wins
  x[601] = -3.0f;
  for (int i = 700; i < 732; ++i) x[i] = (i % 2) ? 0.5f : -0.5f;  // ties at amax in a Q8_0 block
  for (ActType a : {ActType::Q8_0, ActType::Q8_1, ActType::Q8_K, ActType::F16}) {
    std::vector<int8_t> q1(n * n_tok), q2(n * n_tok);
    std::vector<float> d1(n * n_tok / 32), d2(d1.size());
    std::vector<int32_t> s1(n * n_tok / 16), s2(s1.size()), t1(n * n_tok / 32), t2(t1.size());
    std::vector<uint16_t> h1(n * n_tok), h2(n * n_tok);
    quantize_activations(a, x.data(), n, n, 0, n_tok, q1.data(), d1.data(), s1.data(), t1.data(), h1.data());
    quantize_activations_avx512(a, x.data(), n, n, 0, n_tok, q2.data(), d2.data(), s2.data(), t2.data(), h2.data());
    EXPECT_EQ(q1, q2) << act_type_name(a);
    EXPECT_EQ(s1, s2) << act_type_name(a);
    EXPECT_EQ(t1, t2) << act_type_name(a);
    EXPECT_EQ(h1, h2) << act_type_name(a);
    for (size_t i = 0; i < d1.size(); ++i) ASSERT_EQ(d1[i], d2[i]) << act_type_name(a) << " block " << i;
  }
}

TEST(Matmul, BadJobsThrow) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(1000);
  std::vector<float> x(256), y(8);
  MatmulJob j{WeightView{GgmlType::Q4_K, w.data(), 256, 2, 100}, x.data(), 256, 1, y.data(), 2};
  EXPECT_THROW(matmul(j, pool), Error);  // wrong row_bytes
  j.w.row_bytes = 144;
  j.w.n_in = 200;
  EXPECT_THROW(matmul(j, pool), Error);  // not a multiple of 256
  j.w.n_in = 256;
  j.x_stride = 10;
  EXPECT_THROW(matmul(j, pool), Error);  // stride too small
  j.x_stride = 256;
  j.w.type = GgmlType::Q2_K;
  j.w.row_bytes = 84;
  EXPECT_THROW(matmul(j, pool), Error);  // no kernel for Q2_K
}

}  // namespace
}  // namespace tessera::ops
