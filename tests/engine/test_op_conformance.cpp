// Conformance of the smaller ops' kernels: one test case per registered kernel, named after it
// (Kernel/OpConformance.MatchesReference/attention_f16_avx512); a kernel this CPU cannot run is skipped
// by name. Each kernel is compared with its `ref` twin and with a float64 truth over Qwen3-30B-A3B
// shapes (n_embd 2048, 32 query heads / 4 KV heads of 128, n_ff_exp 768, decode at depths crossing
// KV blocks, prefill of 33 tokens) and odd ones (remainders, one token, empty). Budgets are NMSE
// (sum of squared errors / sum of squared truths) and stated next to each check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/cpu_kv.h"
#include "engine/kv/kv_cache.h"
#include "gguf/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/registry.h"
#include "tools/testdata/random_weights.h"

namespace tessera::ops {
namespace {

template <class T>
double nmse(const T* got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = static_cast<double>(got[i]) - want[i];
    num += e * e;
    den += want[i] * want[i];
  }
  return den > 0 ? num / den : num;
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  return nmse(got.data(), std::vector<double>(want.begin(), want.end()));
}

std::vector<float> normal(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// ---- attention_f16 -------------------------------------------------------------------------------

struct AttnCase {
  int n_head, n_head_kv, head_dim, depth, n_tokens, n_seq;  // n_seq sequences of n_tokens each
};

// Qwen3-30B-A3B: decode at depths on both sides of block edges (32 keys a block), deep decode (split
// over key ranges with many threads), prefill of 33 tokens, two sequences in one batch; then odd
// head groupings and head dims (72 is not a multiple of 16 and 320 is over 256: the AVX-512 kernel
// does not support them).
const std::vector<AttnCase> kAttnCases = {
    {32, 4, 128, 0, 1, 1},   {32, 4, 128, 31, 1, 1},  {32, 4, 128, 32, 1, 1}, {32, 4, 128, 33, 1, 1},
    {32, 4, 128, 300, 1, 1}, {32, 4, 128, 1200, 1, 1}, {32, 4, 128, 0, 33, 1}, {32, 4, 128, 40, 33, 1},
    {32, 4, 128, 70, 1, 3},  {32, 4, 128, 20, 5, 2},  {8, 2, 64, 100, 5, 1},   {24, 1, 64, 40, 3, 1},
    {6, 2, 72, 20, 4, 1},    {2, 1, 32, 64, 64, 1},   {4, 4, 256, 50, 2, 1},   {4, 2, 16, 7, 9, 1},
    {2, 1, 320, 10, 3, 1},
};

// Budgets: f32 sums in another order and e^x to about 2 ulp, against the portable kernel and against
// float64 softmax(q k^T) v on the same f16-rounded q, k, v (measured: below 1e-11 for both).
constexpr double kAttnVsRef = 1e-10;
constexpr double kAttnVsF64 = 1e-10;

// Runs kernel fn over the case through ops::attention with `threads` threads; returns the outputs and
// fills the float64 truth.
struct AttnData {
  std::vector<float> q, K, V;  // q [seq][tokens][n_head*hd]; K, V [seq][pos][n_head_kv*hd]
  std::vector<std::vector<int32_t>> blocks;
  std::unique_ptr<engine::CpuKv> kv;
  std::vector<int32_t> pos;
  std::vector<const int32_t*> tables;
};

AttnData make_attention(const AttnCase& c) {
  AttnData d;
  const int n_pos = c.depth + c.n_tokens;
  const int per_seq = (n_pos + kKvBlock - 1) / kKvBlock;
  d.kv = std::make_unique<engine::CpuKv>(engine::KvShape{1, c.n_head_kv, c.head_dim, per_seq * c.n_seq + 2});
  engine::KvCache free_blocks(per_seq * c.n_seq + 2);
  const int kv_dim = c.n_head_kv * c.head_dim, q_dim = c.n_head * c.head_dim;
  d.K = normal(static_cast<size_t>(c.n_seq) * n_pos * kv_dim, 11 + c.depth, 2.0f);
  d.V = normal(d.K.size(), 12 + c.depth);
  d.q = normal(static_cast<size_t>(c.n_seq) * c.n_tokens * q_dim, 13 + c.depth, 2.0f);
  d.blocks.resize(static_cast<size_t>(c.n_seq));
  for (int s = 0; s < c.n_seq; ++s) {
    for (int b = 0; b < per_seq; ++b) d.blocks[s].push_back(free_blocks.alloc());
    std::swap(d.blocks[s].front(), d.blocks[s].back());  // non-contiguous block order
    for (int p = 0; p < n_pos; ++p) {
      const size_t o = (static_cast<size_t>(s) * n_pos + p) * kv_dim;
      d.kv->store(0, d.blocks[s].data(), p, d.K.data() + o, d.V.data() + o);
    }
  }
  for (int s = 0; s < c.n_seq; ++s)
    for (int t = 0; t < c.n_tokens; ++t) {
      d.pos.push_back(c.depth + t);
      d.tables.push_back(d.blocks[s].data());
    }
  return d;
}

std::vector<float> run_attention(const AttnCase& c, AttnData& d, AttendRowsFn fn, int threads) {
  const int q_dim = c.n_head * c.head_dim;
  std::vector<float> out(d.q.size(), NAN);
  AttentionArgs a;
  a.n_tokens = static_cast<int64_t>(d.pos.size());
  a.n_head = c.n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  a.q = d.q.data();
  a.q_stride = q_dim;
  a.out = out.data();
  a.out_stride = q_dim;
  a.pos = d.pos.data();
  a.block_table = d.tables.data();
  a.k_cache = d.kv->k_layer(0);
  a.v_cache = d.kv->v_layer(0);
  a.block_elems = d.kv->head_block_elems();
  a.head_stride = d.kv->head_stride();
  ThreadPool pool(threads);
  attention(a, pool, fn);
  return out;
}

std::vector<double> attention_f64(const AttnCase& c, const AttnData& d) {
  const int n_pos = c.depth + c.n_tokens, kv_dim = c.n_head_kv * c.head_dim, q_dim = c.n_head * c.head_dim;
  const int group = c.n_head / c.n_head_kv;
  const double scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  auto h = [](float x) { return static_cast<double>(fp16_to_fp32(fp32_to_fp16(x))); };
  std::vector<double> out(d.q.size());
  for (size_t t = 0; t < d.pos.size(); ++t) {
    const size_t s = t / static_cast<size_t>(c.n_tokens);
    for (int hh = 0; hh < c.n_head; ++hh) {
      const int g = hh / group;
      const float* qr = d.q.data() + t * q_dim + hh * c.head_dim;
      std::vector<double> p(static_cast<size_t>(d.pos[t] + 1));
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j <= d.pos[t]; ++j) {
        const float* kr = d.K.data() + (s * n_pos + j) * kv_dim + g * c.head_dim;
        double acc = 0;
        for (int i = 0; i < c.head_dim; ++i) acc += h(qr[i]) * h(kr[i]);
        p[j] = acc * scale;
        mx = std::max(mx, p[j]);
      }
      for (double& v : p) sum += v = std::exp(v - mx);
      double* o = out.data() + t * q_dim + hh * c.head_dim;
      for (int j = 0; j <= d.pos[t]; ++j) {
        const float* vr = d.V.data() + (s * n_pos + j) * kv_dim + g * c.head_dim;
        for (int i = 0; i < c.head_dim; ++i) o[i] += p[j] / sum * h(vr[i]);
      }
    }
  }
  return out;
}

void check_attention(const OpKernel& k, const OpKernel& ref, const DeviceCaps& caps, double& worst_ref,
                     double& worst_f64, int& cases, int& unsupported) {
  for (const AttnCase& c : kAttnCases) {
    if (!op_kernel_supports(k, caps, c.head_dim)) {
      ++unsupported;
      continue;
    }
    AttnData d = make_attention(c);
    const std::vector<double> truth = attention_f64(c, d);
    // 2 threads; and 12 threads, which splits a single token's keys into ranges merged afterwards
    for (int threads : {2, 12}) {
      const std::vector<float> want = run_attention(c, d, ref.fn<AttendRowsFn>(), threads);
      const std::vector<float> got = run_attention(c, d, k.fn<AttendRowsFn>(), threads);
      const std::string where = k.name + " heads " + std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) +
                                " x " + std::to_string(c.head_dim) + " depth " + std::to_string(c.depth) + " tokens " +
                                std::to_string(c.n_tokens) + " x " + std::to_string(c.n_seq) + " seqs, " +
                                std::to_string(threads) + " threads";
      for (float v : got) ASSERT_TRUE(std::isfinite(v)) << where;
      const double e_ref = nmse(got, want), e_f64 = nmse(got.data(), truth);
      EXPECT_LE(e_ref, kAttnVsRef) << where;
      EXPECT_LE(e_f64, kAttnVsF64) << where;
      worst_ref = std::max(worst_ref, e_ref);
      worst_f64 = std::max(worst_f64, e_f64);
      ++cases;
    }
  }
}

// ---- quantize_<act> ------------------------------------------------------------------------------

ActType act_of(const std::string& op_key) {
  for (ActType a : {ActType::F16, ActType::BF16, ActType::Q8_0, ActType::Q8_1, ActType::Q8_K})
    if (quantize_op_key(a) == op_key) return a;
  ADD_FAILURE() << "no activation type for " << op_key;
  return ActType::F32;
}

struct QuantOut {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> s, s32;
  std::vector<uint16_t> h16;
  bool operator==(const QuantOut& o) const {
    return qs == o.qs && std::memcmp(d.data(), o.d.data(), d.size() * sizeof(float)) == 0 && s == o.s &&
           s32 == o.s32 && h16 == o.h16;
  }
};

// Tokens [t_begin, n_tokens) of x ([n_tokens][x_stride]); untouched entries keep their fill values.
QuantOut run_quantize(QuantizeFn fn, ActType act, const std::vector<float>& x, int64_t x_stride, int64_t n_in,
                      int64_t n_tokens, int64_t t_begin) {
  const size_t n = static_cast<size_t>(n_in * n_tokens);
  QuantOut o{std::vector<int8_t>(n, 99), std::vector<float>(n / 32 + 1, -7.0f), std::vector<int32_t>(n / 16 + 1, -7),
             std::vector<int32_t>(n / 32 + 1, -7), std::vector<uint16_t>(n, 0xdead)};
  fn(act, x.data(), x_stride, n_in, t_begin, n_tokens, o.qs.data(), o.d.data(), o.s.data(), o.s32.data(), o.h16.data());
  return o;
}

// The quantized tokens decoded back to float.
std::vector<float> dequantize(const QuantOut& o, ActType act, int64_t n_in, int64_t n_tokens, int64_t t_begin) {
  std::vector<float> v;
  for (int64_t t = t_begin; t < n_tokens; ++t)
    for (int64_t i = 0; i < n_in; ++i) {
      const size_t at = static_cast<size_t>(t * n_in + i);
      if (act == ActType::F16) v.push_back(fp16_to_fp32(o.h16[at]));
      else if (act == ActType::BF16) v.push_back(bf16_to_fp32(o.h16[at]));
      else v.push_back(static_cast<float>(o.qs[at]) * o.d[static_cast<size_t>(t * (n_in / 32) + i / 32)]);
    }
  return v;
}

// Budgets against the input (normal values), per format: q8 steps of amax/127 per 32 (per 256 for
// q8_K); f16 / bf16 keep 11 / 8 significant bits. Measured: f16 4e-8, bf16 3e-6, q8_0 3e-5, q8_K 5e-5.
double quantize_budget(ActType a) {
  switch (a) {
    case ActType::F16: return 1e-7;
    case ActType::BF16: return 1e-5;
    case ActType::Q8_0: case ActType::Q8_1: return 1e-4;
    case ActType::Q8_K: return 2e-4;
    case ActType::F32: return 0;
  }
  return 0;
}

void check_quantize(const OpKernel& k, const OpKernel& ref, double& worst_ref, double& worst_f64, int& cases) {
  const ActType act = act_of(k.op);
  const bool q8 = act != ActType::F16 && act != ActType::BF16;
  const int64_t blk = act == ActType::Q8_K ? 256 : 32;
  struct QCase { int64_t n_in, n_tokens, t_begin, pad; };
  // n_embd and n_ff_exp rows for one token, 5 and 33 tokens (a prefill tile); the 4096-wide attention
  // output; then one block, a sub-range of tokens with padded rows, and (f16 / bf16) odd row lengths.
  std::vector<QCase> qc = {{2048, 1, 0, 0}, {768, 1, 0, 0}, {2048, 5, 0, 0}, {768, 33, 0, 0}, {4096, 2, 0, 0},
                           {blk, 1, 0, 0},  {blk, 3, 1, 5}, {2 * blk, 4, 2, 0}};
  if (!q8) qc.insert(qc.end(), {{17, 3, 0, 1}, {40, 2, 0, 0}, {1, 1, 0, 0}});
  uint32_t seed = 1;
  for (const QCase& c : qc) {
    const int64_t stride = c.n_in + c.pad;
    std::vector<float> x = normal(static_cast<size_t>(stride * c.n_tokens), seed++);
    if (c.n_in >= 64) {
      std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block
      x[40] = 3.0f;                               // ties for the largest magnitude, both signs
      x[41] = -3.0f;
    }
    const QuantOut want = run_quantize(ref.fn<QuantizeFn>(), act, x, stride, c.n_in, c.n_tokens, c.t_begin);
    const QuantOut got = run_quantize(k.fn<QuantizeFn>(), act, x, stride, c.n_in, c.n_tokens, c.t_begin);
    const std::string where = k.name + " n_in=" + std::to_string(c.n_in) + " tokens [" + std::to_string(c.t_begin) +
                              ", " + std::to_string(c.n_tokens) + ") stride " + std::to_string(stride);
    // budget against the reference: bit-identical (every kernel sees the same activations)
    EXPECT_TRUE(got == want) << where << ": differs from " << ref.name;
    std::vector<double> truth;
    for (int64_t t = c.t_begin; t < c.n_tokens; ++t)
      for (int64_t i = 0; i < c.n_in; ++i) truth.push_back(x[static_cast<size_t>(t * stride + i)]);
    const std::vector<float> back = dequantize(got, act, c.n_in, c.n_tokens, c.t_begin);
    const double e = nmse(back.data(), truth);
    if (c.n_in >= 256) EXPECT_LE(e, quantize_budget(act)) << where;  // a few values are too noisy
    if (q8) {  // the sums the kernels use
      for (int64_t t = c.t_begin; t < c.n_tokens; ++t)
        for (int64_t b = 0; b < c.n_in / 32; ++b) {
          int32_t sum = 0;
          for (int64_t i = 0; i < 32; ++i) sum += got.qs[static_cast<size_t>(t * c.n_in + b * 32 + i)];
          ASSERT_EQ(got.s32[static_cast<size_t>(t * (c.n_in / 32) + b)], sum) << where << " block " << b;
        }
    }
    worst_ref = std::max(worst_ref, got == want ? 0.0 : 1.0);
    if (c.n_in >= 256) worst_f64 = std::max(worst_f64, e);
    ++cases;
  }
}

// ---- rmsnorm_f32, rope_neox_f32, rope_norm_f32, swiglu_f32 --------------------------------------------------------

// Budgets: the kernels compute in f32 (rmsnorm sums squares in double); against float64 on the same
// inputs only the f32 rounding of a few operations remains (measured: under 3e-15); against the
// reference, the same.
constexpr double kElementwiseVsRef = 1e-12;
constexpr double kElementwiseVsF64 = 1e-12;

void check_rmsnorm(const OpKernel& k, const OpKernel& ref, double& worst_ref, double& worst_f64, int& cases) {
  struct RCase { int64_t n, rows, pad; bool weight, in_place; };
  // n_embd for one token and a 33-token tile; QK-norm (33 tokens x 32 heads of 128); odd lengths
  const std::vector<RCase> rc = {{2048, 1, 0, true, false}, {2048, 33, 0, true, true}, {128, 33 * 32, 0, true, true},
                                 {17, 3, 4, true, false},   {1, 1, 0, false, false},   {768, 2, 3, false, true},
                                 {2048, 0, 0, true, false}};
  uint32_t seed = 100;
  for (const RCase& c : rc) {
    const int64_t stride = c.n + c.pad;
    const std::vector<float> x = normal(static_cast<size_t>(std::max<int64_t>(1, stride * c.rows)), seed++, 3.0f);
    const std::vector<float> w = normal(static_cast<size_t>(c.n), seed++);
    const float* wp = c.weight ? w.data() : nullptr;
    const double eps = 1e-6;
    auto run = [&](RmsnormFn fn) {
      std::vector<float> y = x;  // in place: x and y one buffer; else rows of stride n
      if (c.in_place) {
        fn(y.data(), stride, y.data(), stride, wp, c.rows, c.n, eps);
        return y;
      }
      std::vector<float> out(static_cast<size_t>(std::max<int64_t>(1, c.n * c.rows)), NAN);
      fn(x.data(), stride, out.data(), c.n, wp, c.rows, c.n, eps);
      return out;
    };
    const std::vector<float> got = run(k.fn<RmsnormFn>()), want = run(ref.fn<RmsnormFn>());
    const std::string where = k.name + " n=" + std::to_string(c.n) + " rows=" + std::to_string(c.rows);
    if (c.rows == 0) {  // nothing written
      for (float v : got) EXPECT_TRUE(std::isnan(v)) << where;
      ++cases;
      continue;
    }
    // truth: float64 on the same inputs (padding between rows: what the kernel left there)
    std::vector<double> truth(got.begin(), got.end());
    const int64_t ostride = c.in_place ? stride : c.n;
    for (int64_t r = 0; r < c.rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < c.n; ++i) ss += static_cast<double>(x[r * stride + i]) * x[r * stride + i];
      const double scale = 1.0 / std::sqrt(ss / static_cast<double>(c.n) + eps);
      for (int64_t i = 0; i < c.n; ++i)
        truth[r * ostride + i] = x[r * stride + i] * scale * (wp ? static_cast<double>(wp[i]) : 1.0);
    }
    const double e_ref = nmse(got, want), e_f64 = nmse(got.data(), truth);
    EXPECT_LE(e_ref, kElementwiseVsRef) << where;
    EXPECT_LE(e_f64, kElementwiseVsF64) << where;
    worst_ref = std::max(worst_ref, e_ref);
    worst_f64 = std::max(worst_f64, e_f64);
    ++cases;
  }
}

// rope_neox_f32 (pairs i, i + d/2) and rope_norm_f32 (llama: adjacent pairs 2i, 2i + 1). The NORM cases
// take their angles from a table with Llama-3-style frequency factors and a linear scale.
void check_rope(const OpKernel& k, const OpKernel& ref, double& worst_ref, double& worst_f64, int& cases) {
  const bool norm = k.op == "rope_norm_f32";
  struct PCase { int64_t n_heads, head_dim, n_tokens; int32_t pos0; };
  // q (32 heads) and k (4 heads) of 128 for a 33-token tile at the start and deep in the context; odd;
  // SmolLM2 (9 and 3 heads of 64)
  const std::vector<PCase> pc = {{32, 128, 33, 0}, {4, 128, 33, 4000}, {32, 128, 1, 70000}, {3, 64, 5, 7}, {1, 2, 2, 1},
                                 {9, 64, 7, 100},  {3, 64, 7, 8000}};
  uint32_t seed = norm ? 250 : 200;
  for (const PCase& c : pc) {
    const int64_t half = c.head_dim / 2, row = c.n_heads * c.head_dim;
    std::vector<int32_t> pos(static_cast<size_t>(c.n_tokens));
    for (int64_t t = 0; t < c.n_tokens; ++t) pos[t] = c.pos0 + static_cast<int32_t>(t);
    std::vector<float> cs(static_cast<size_t>(c.n_tokens * half)), sn(cs.size());
    if (norm) {  // Llama 3.1 style: low frequencies slowed down by factors 1..8, linear scale 1/2
      std::vector<float> ff(static_cast<size_t>(half));
      for (int64_t i = 0; i < half; ++i) ff[i] = 1.0f + 7.0f * static_cast<float>(i) / static_cast<float>(half);
      rope_table(pos.data(), c.n_tokens, c.head_dim, 5e5, cs.data(), sn.data(), 0.5, ff.data());
    } else {
      rope_table(pos.data(), c.n_tokens, c.head_dim, 1e6, cs.data(), sn.data());  // Qwen3: base 1e6
    }
    const std::vector<float> x = normal(static_cast<size_t>(c.n_tokens * row), seed++, 2.0f);
    auto run = [&](RopeFn fn) {
      std::vector<float> y = x;
      for (int64_t t = 0; t < c.n_tokens; ++t) fn(y.data() + t * row, c.n_heads, c.head_dim, cs.data() + t * half, sn.data() + t * half);
      return y;
    };
    const std::vector<float> got = run(k.fn<RopeFn>()), want = run(ref.fn<RopeFn>());
    std::vector<double> truth(x.size());
    for (int64_t t = 0; t < c.n_tokens; ++t)
      for (int64_t h = 0; h < c.n_heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const size_t base = static_cast<size_t>(t * row + h * c.head_dim);
          const size_t a = base + static_cast<size_t>(norm ? 2 * i : i), b = base + static_cast<size_t>(norm ? 2 * i + 1 : i + half);
          const double co = cs[t * half + i], si = sn[t * half + i];
          truth[a] = x[a] * co - x[b] * si;
          truth[b] = x[a] * si + x[b] * co;
        }
    const std::string where = k.name + " heads=" + std::to_string(c.n_heads) + " head_dim=" + std::to_string(c.head_dim);
    const double e_ref = nmse(got, want), e_f64 = nmse(got.data(), truth);
    EXPECT_LE(e_ref, kElementwiseVsRef) << where;
    EXPECT_LE(e_f64, kElementwiseVsF64) << where;
    worst_ref = std::max(worst_ref, e_ref);
    worst_f64 = std::max(worst_f64, e_f64);
    ++cases;
  }
}

// The angle table itself against float64: theta_i = scale * pos * base^(-2i/d) / factor_i (ggml's rope
// with frequency factors, no YaRN), and the plain table (no factors, scale 1) unchanged.
TEST(RopeTable, FrequencyFactorsAndLinearScale) {
  const int64_t hd = 64, half = hd / 2, n = 3;
  const int32_t pos[n] = {0, 17, 8191};
  std::vector<float> ff(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) ff[i] = i < half / 2 ? 1.0f : 8.0f;
  for (const bool with : {false, true}) {
    const double scale = with ? 0.25 : 1.0;
    std::vector<float> cs(static_cast<size_t>(n * half)), sn(cs.size());
    rope_table(pos, n, hd, 1e5, cs.data(), sn.data(), scale, with ? ff.data() : nullptr);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const double theta = scale * pos[t] * std::pow(1e5, -2.0 * static_cast<double>(i) / hd) / (with ? ff[i] : 1.0);
        EXPECT_NEAR(cs[t * half + i], std::cos(theta), 1e-6) << t << " " << i;
        EXPECT_NEAR(sn[t * half + i], std::sin(theta), 1e-6) << t << " " << i;
      }
  }
}

void check_swiglu(const OpKernel& k, const OpKernel& ref, double& worst_ref, double& worst_f64, int& cases) {
  // 8 experts x n_ff_exp for one token, a 33-token tile of one expert, remainders of 16 lanes, empty
  const std::vector<int64_t> sizes = {8 * 768, 33 * 768, 17, 31, 1, 0};
  uint32_t seed = 300;
  for (int64_t n : sizes) {
    std::vector<float> g = normal(static_cast<size_t>(n), seed++, 3.0f), u = normal(static_cast<size_t>(n), seed++);
    if (n >= 16) {  // far into both tails of e^-g (overflow to inf must give -0, not NaN)
      g[0] = -100.0f;
      g[1] = 100.0f;
      g[2] = -88.0f;
      g[3] = 0.0f;
    }
    std::vector<float> got = g, want = g;
    k.fn<SwigluFn>()(got.data(), u.data(), n);
    ref.fn<SwigluFn>()(want.data(), u.data(), n);
    std::vector<double> truth(static_cast<size_t>(n));
    for (size_t i = 0; i < truth.size(); ++i) truth[i] = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    const std::string where = k.name + " n=" + std::to_string(n);
    for (float v : got) ASSERT_TRUE(std::isfinite(v)) << where;
    const double e_ref = nmse(got, want), e_f64 = nmse(got.data(), truth);
    EXPECT_LE(e_ref, kElementwiseVsRef) << where;
    EXPECT_LE(e_f64, kElementwiseVsF64) << where;
    worst_ref = std::max(worst_ref, e_ref);
    worst_f64 = std::max(worst_f64, e_f64);
    ++cases;
  }
}

// ---- the sweep -----------------------------------------------------------------------------------

std::vector<const OpKernel*> all_op_kernels() {
  std::vector<const OpKernel*> v;
  for (const OpKernel& k : op_kernels()) v.push_back(&k);
  return v;
}

class OpConformance : public ::testing::TestWithParam<const OpKernel*> {};

TEST_P(OpConformance, MatchesReference) {
  const OpKernel& k = *GetParam();
  const DeviceCaps caps = host_caps();
  if (!op_kernel_supports(k, caps, k.op == "attention_f16" ? 128 : 0)) {
    const std::string needs = variant_cpu_needs(k.variant), cpu = caps.cpu.describe();
    if (needs.empty()) GTEST_SKIP() << k.name << ": not supported on " << caps.describe();
    GTEST_SKIP() << k.name << ": needs " << needs << " (this cpu: " << (cpu.empty() ? "baseline x86-64" : cpu) << ")";
  }
  const OpKernel* ref = find_op_kernel(k.op + "_ref");
  ASSERT_NE(ref, nullptr) << k.name << " has no reference twin";
  double worst_ref = 0, worst_f64 = 0;
  int cases = 0, unsupported = 0;
  if (k.op == "attention_f16") check_attention(k, *ref, caps, worst_ref, worst_f64, cases, unsupported);
  else if (k.op.starts_with("quantize_")) check_quantize(k, *ref, worst_ref, worst_f64, cases);
  else if (k.op == "rmsnorm_f32") check_rmsnorm(k, *ref, worst_ref, worst_f64, cases);
  else if (k.op == "rope_neox_f32" || k.op == "rope_norm_f32") check_rope(k, *ref, worst_ref, worst_f64, cases);
  else if (k.op == "swiglu_f32") check_swiglu(k, *ref, worst_ref, worst_f64, cases);
  else FAIL() << "no conformance check for op " << k.op << " (add one here)";
  EXPECT_GT(cases, 0) << k.name << " ran no case";
  std::printf("%s: %d cases (%d shapes not supported), worst NMSE vs %s %.2e, vs f64 %.2e\n", k.name.c_str(), cases,
              unsupported, ref->name.c_str(), worst_ref, worst_f64);
  RecordProperty("worst_nmse_vs_ref", std::to_string(worst_ref));
  RecordProperty("worst_nmse_vs_f64", std::to_string(worst_f64));
}

INSTANTIATE_TEST_SUITE_P(Kernel, OpConformance, ::testing::ValuesIn(all_op_kernels()),
                         [](const ::testing::TestParamInfo<const OpKernel*>& i) { return i.param->name; });

}  // namespace

// Test parameters print as the kernel's name (ctest shows it after the test name: stable, readable).
void PrintTo(const OpKernel* k, std::ostream* os) { *os << k->name; }

}  // namespace tessera::ops
