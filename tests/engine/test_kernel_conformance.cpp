// Conformance sweep of the matmul kernels: one test case per registered kernel, named after it
// (Kernel/MatmulConformance.MatchesReference/gemv_q4_K_q8_K_avx512). A kernel this CPU cannot run is
// skipped by name (GTEST_SKIP: "needs <features> (this cpu: ...)"), so ctest lists it under "not run"
// instead of leaving it out. A kernel that runs is compared with its type's reference kernel (same
// prepared activations, so the budget is tight) over real model shapes and small odd shapes, split
// into row chunks the way ops::matmul splits them, and with a float64 product on unquantized
// activations (a looser, per-activation-type budget); then forced by name through ops::matmul.
// The kernels of the smaller ops (attention, quantization, element-wise) are in test_op_conformance.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <ostream>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/cpu_matmul.h"
#include "kernels/registry.h"
#include "gguf/codecs.h"
#include "kernels/ref/act_quant.h"
#include "tools/testdata/random_weights.h"

namespace tessera::ops {
namespace {

struct Shape {
  int64_t n_in, n_out, n_tokens;
};

// Activations prepared as ops::matmul prepares them.
struct Acts {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> s, s32;
  std::vector<uint16_t> h16;
  PreparedActs p;
};

void prepare(ActType type, const std::vector<float>& x, int64_t n_in, int64_t n_tokens, Acts& a) {
  const size_t n = static_cast<size_t>(n_in * n_tokens);
  a.qs.assign(n, 0);
  a.d.assign(n / 32 + 1, 0.0f);
  a.s.assign(n / 16 + 1, 0);
  a.s32.assign(n / 32 + 1, 0);
  a.h16.assign(n, 0);
  quantize_activations(type, x.data(), n_in, n_in, 0, n_tokens, a.qs.data(), a.d.data(), a.s.data(), a.s32.data(), a.h16.data());
  a.p = PreparedActs{};
  a.p.type = type;
  a.p.n_tokens = n_tokens;
  a.p.n_in = n_in;
  a.p.f32 = x.data();
  a.p.f32_stride = n_in;
  a.p.h16 = a.h16.data();
  a.p.qs = a.qs.data();
  a.p.d = a.d.data();
  a.p.s = a.s.data();
  a.p.s32 = a.s32.data();
}

// Runs kernel k over all rows in chunks of `chunk` rows (the last one shorter). y: [n_tokens][y_stride].
void run_kernel(const MatmulKernel& k, const WeightView& w, const PreparedActs& x, float* y, int64_t y_stride,
                int64_t chunk) {
  for (int64_t r = 0; r < w.n_out; r += chunk) {
    MatmulArgs a;
    a.w = &w;
    a.x = &x;
    a.y = y;
    a.y_stride = y_stride;
    a.row_begin = r;
    a.row_end = std::min(w.n_out, r + chunk);
    k.run(a);
  }
}

double nmse(const float* got, const double* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0 ? num / den : num;
}

// Budget against the reference kernel with the same activations (only summation order differs).
double same_act_budget(GgmlType t) {
  return (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) ? 1e-10 : 1e-9;
}

// Budget against float64 with unquantized activations (activation rounding dominates).
double f32_act_budget(ActType a) {
  switch (a) {
    case ActType::F32: return 1e-10;
    case ActType::F16: return 1e-6;
    case ActType::BF16: return 1e-4;
    case ActType::Q8_0: case ActType::Q8_1: return 1e-3;
    case ActType::Q8_K: return 3e-3;
  }
  return 0;
}

std::vector<Shape> shapes_for(GgmlType t) {
  const int64_t blk = type_traits(t).block_size == 1 ? 32 : type_traits(t).block_size;
  std::vector<Shape> s = {
      {2048, 768, 1}, {2048, 768, 5}, {768, 2048, 1}, {768, 2048, 5},  // expert gate/up and down
      {2048, 4096, 1}, {2048, 1000, 1}, {2048, 1000, 2},              // attention q, a small vocab head
      {2048, 768, 3}, {768, 2048, 4},                                  // a few sequences decoding
  };
  if (t == GgmlType::Q8_0 || t == GgmlType::Q4_K || t == GgmlType::IQ4_NL) s.push_back({2048, 768, 33});
  for (int64_t n_out : {1, 3, 17})
    for (int64_t n_tok : {1, 2, 5, 33}) s.push_back({blk, n_out, n_tok});
  if (type_traits(t).block_size == 1) s.push_back({17, 5, 3});  // float types: any row length
  if (type_traits(t).block_size == 32) {  // groups of 8 blocks plus a remainder
    s.push_back({320, 17, 1});
    s.push_back({320, 17, 3});
  }
  return s;
}

// All matmul kernels, as test parameters named after the kernel.
std::vector<const MatmulKernel*> all_matmul_kernels() {
  std::vector<const MatmulKernel*> v;
  for (const MatmulKernel& k : matmul_kernels()) v.push_back(&k);
  return v;
}

// Why this CPU cannot run kernel k (empty: it can): asked with a shape every weight type allows.
std::string cannot_run(const MatmulKernel& k, const DeviceCaps& caps) {
  if (kernel_supports(k, MatmulShape{k.wtype, 2048, 768, k.op == Op::Gemv ? 1 : 4}, caps)) return "";
  const std::string needs = variant_cpu_needs(k.variant);
  if (needs.empty()) return k.name + ": not supported on " + caps.describe();
  return k.name + ": needs " + needs + " (this cpu: " + (caps.cpu.describe().empty() ? "baseline x86-64" : caps.cpu.describe()) + ")";
}

// Through ops::matmul with the kernel forced by name: the override reaches dispatch, and several jobs
// (one empty) in one call give the same answers as the reference kernel.
void check_forced_through_matmul(const MatmulKernel& k, const DeviceCaps& caps) {
  const GgmlType t = k.wtype;
  ThreadPool pool(2);
  const int64_t n_in = type_traits(t).block_size == 1 ? 96 : 512, n_out = 40;
  const int64_t n_tok = k.op == Op::Gemv ? 1 : 3;
  ASSERT_TRUE(kernel_supports(k, MatmulShape{t, n_in, n_out, n_tok}, caps)) << k.name;
  const auto w1 = random_weight_rows(t, n_out, n_in, 5);
  const auto w2 = random_weight_rows(t, n_out, n_in, 6);
  const auto x = random_activations(n_in * 3, 7);
  const WeightView v1{t, w1.data(), n_in, n_out, row_bytes(t, n_in)}, v2{t, w2.data(), n_in, n_out, row_bytes(t, n_in)};
  std::vector<float> want(static_cast<size_t>(n_out * n_tok));
  KernelPolicy ref;  // the reference twin with the same activation format
  ref.set(op_key(k.op, t), op_key(k.op, t) + "_" + std::string(act_type_name(k.act)) + "_ref");
  const BoundMatmul ref_bound = BoundMatmul::bind(ref, t, n_in, n_out, caps);
  matmul(MatmulJob{v2, x.data(), n_in, n_tok, want.data(), n_out, &ref_bound}, pool);
  KernelPolicy forced;
  forced.set(op_key(k.op, t), k.name);
  const BoundMatmul bound = BoundMatmul::bind(forced, t, n_in, n_out, caps);
  ASSERT_EQ(&bound.for_tokens(n_tok), &k);
  std::vector<float> y1(static_cast<size_t>(n_out * n_tok)), y2(y1.size());
  std::vector<MatmulJob> jobs = {{v1, x.data(), n_in, n_tok, y1.data(), n_out, &bound},
                                 {v1, x.data(), n_in, 0, y1.data(), n_out, &bound},
                                 {v2, x.data(), n_in, n_tok, y2.data(), n_out, &bound}};
  matmul(jobs, pool);
  std::vector<double> wd(want.begin(), want.end());
  EXPECT_LE(nmse(y2.data(), wd.data(), wd.size()), same_act_budget(t)) << k.name;
}

class MatmulConformance : public ::testing::TestWithParam<const MatmulKernel*> {};

TEST_P(MatmulConformance, MatchesReference) {
  const MatmulKernel& k = *GetParam();
  const DeviceCaps caps = host_caps();
  if (const std::string why = cannot_run(k, caps); !why.empty()) GTEST_SKIP() << why;
  const GgmlType t = k.wtype;
  const ActType act = k.act;
  const MatmulKernel* ref = find_kernel(op_key(k.op, t) + "_" + std::string(act_type_name(act)) + "_ref");
  ASSERT_NE(ref, nullptr) << k.name << " has no reference twin";
  double worst_ref = 0, worst_f64 = 0;
  int cases = 0, skipped_shapes = 0;
  int64_t seed = 1;
  for (const Shape& sh : shapes_for(t)) {
    seed += 2;  // the same data for a shape whichever kernel runs it
    if ((sh.n_tokens > 1) != (k.op == Op::Gemm)) continue;
    const MatmulShape ms{t, sh.n_in, sh.n_out, sh.n_tokens};
    if (!kernel_supports(k, ms, caps)) {  // e.g. a few-token kernel and 33 tokens
      ++skipped_shapes;
      continue;
    }
    const auto wbytes = random_weight_rows(t, sh.n_out, sh.n_in, static_cast<uint64_t>(seed));
    const auto x = random_activations(sh.n_in * sh.n_tokens, static_cast<uint64_t>(seed + 1));
    const WeightView w{t, wbytes.data(), sh.n_in, sh.n_out, row_bytes(t, sh.n_in)};
    Acts acts;
    prepare(act, x, sh.n_in, sh.n_tokens, acts);
    const size_t ny = static_cast<size_t>(sh.n_out * sh.n_tokens);

    // truths: the reference kernel on the same activations, and float64 on unquantized ones
    std::vector<float> yref(ny);
    run_kernel(*ref, w, acts.p, yref.data(), sh.n_out, sh.n_out);
    std::vector<double> yref_d(yref.begin(), yref.end());
    std::vector<double> yf64(ny);
    {
      std::vector<float> row(static_cast<size_t>(sh.n_in));
      for (int64_t o = 0; o < sh.n_out; ++o) {
        dequantize_row(t, wbytes.data() + o * w.row_bytes, row.data(), sh.n_in);
        for (int64_t tk = 0; tk < sh.n_tokens; ++tk) {
          double s = 0;
          for (int64_t i = 0; i < sh.n_in; ++i) s += static_cast<double>(row[i]) * x[tk * sh.n_in + i];
          yf64[tk * sh.n_out + o] = s;
        }
      }
    }

    // chunks as ops::matmul makes them: multiples of row_block, a shorter tail
    const int64_t chunk = std::max<int64_t>(k.row_block, (sh.n_out / 3 + k.row_block - 1) / k.row_block * k.row_block);
    std::vector<float> y(ny + 7, NAN);
    run_kernel(k, w, acts.p, y.data(), sh.n_out, chunk);
    for (size_t i = ny; i < y.size(); ++i) ASSERT_TRUE(std::isnan(y[i])) << k.name << " wrote past its output";
    const double e_ref = nmse(y.data(), yref_d.data(), ny);
    const double e_f64 = nmse(y.data(), yf64.data(), ny);
    worst_ref = std::max(worst_ref, e_ref);
    if (sh.n_in >= 768) worst_f64 = std::max(worst_f64, e_f64);
    ++cases;
    const std::string where = k.name + " n_in=" + std::to_string(sh.n_in) + " n_out=" + std::to_string(sh.n_out) +
                              " n_tokens=" + std::to_string(sh.n_tokens);
    EXPECT_LE(e_ref, same_act_budget(t)) << where;
    // a handful of outputs of one short block is too noisy for a relative budget
    if (sh.n_in >= 768) EXPECT_LE(e_f64, f32_act_budget(act)) << where;
    for (size_t i = 0; i < ny; ++i) ASSERT_TRUE(std::isfinite(y[i])) << where << " at " << i;
  }
  EXPECT_GT(cases, 0) << k.name << " ran no shape of the sweep";
  std::printf("%s: %d shapes (%d not supported), worst NMSE vs ref %.2e, vs f64 (n_in >= 768) %.2e\n", k.name.c_str(),
              cases, skipped_shapes, worst_ref, worst_f64);
  RecordProperty("worst_nmse_vs_ref", std::to_string(worst_ref));
  RecordProperty("worst_nmse_vs_f64", std::to_string(worst_f64));
  check_forced_through_matmul(k, caps);
}

INSTANTIATE_TEST_SUITE_P(Kernel, MatmulConformance, ::testing::ValuesIn(all_matmul_kernels()),
                         [](const ::testing::TestParamInfo<const MatmulKernel*>& i) { return i.param->name; });

}  // namespace

// Test parameters print as the kernel's name (ctest shows it after the test name: stable, readable).
void PrintTo(const MatmulKernel* k, std::ostream* os) { *os << k->name; }

}  // namespace tessera::ops
