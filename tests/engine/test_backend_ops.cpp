// Cross-backend op conformance (in the spirit of ggml's test-backend-ops): every op of the Stream
// interface runs on the backend under test (cpu; built again as test_backend_ops_vulkan for vulkan and
// test_backend_ops_hip_emu for hip-emu,
// TESSERA_TEST_BACKEND) and on the scalar double-precision ref backend with the same random inputs, over the real Qwen3-30B-A3B shapes and small odd ones, and the outputs are compared (exactly
// where both must agree bit for bit, else by NMSE against ref under a per-op budget). Prints a table.
//
// Which test covers each Stream method (CoversEveryStreamMethod checks these suites exist):
//   begin            every test (each op runs after begin(batch)); Rope.NewBeginMovesPositions
//   embed            Embed.*            exact, against dequantize_row
//   rmsnorm          Rmsnorm.*          rows of n_embd, in place, QK-norm rows of head_dim
//   rope             Rope.*             q and k heads, positions far from 0, two sequences; after QK-norm
//   kv_store         KvAttention.*      filled over several batches, read back through attention
//   attention        KvAttention.*      depths across KV blocks, two sequences, GQA groupings
//   matmul           Matmul.*           several calls in one go, `rows` below the batch, 1/3/33 tokens
//                    MatmulPath.*       vulkan: the batch matmul's coopmat and shared-memory paths forced
//   add_bias         AddBias.*
//   add              Add.*
//   swiglu           Swiglu.*
//   route            Route.*            ids exact (distinct logits; exact ties), weights by NMSE
//   moe              Moe.*              ids and weights from ref's route, shared and unused experts;
//                    MoePath.*          vulkan: the batch MoE on tiles grouped by expert, each path forced;
//                    MoeMixed.*         gate / up / down of different types, as real files mix them
//   gather_out_rows  GatherOutRows.*    exact
//   logits           Logits.*           with and without bias, reordered output rows
//   sync             every test (called after every op)
//
// Buffers are filled and read through the host backends' memory (engine/backend/host.h); a device
// backend's buffers through host mirrors, written before and read after every run (Backend::write/read).
// Ops a device backend does not have yet are skipped, by name, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/host.h"
#include "engine/model/model.h"
#include "gguf/codecs.h"
#include "gguf/half.h"
#include "kernels/registry.h"
#include "tools/testdata/random_weights.h"

#ifndef TESSERA_TEST_BACKEND
#define TESSERA_TEST_BACKEND "cpu"
#endif

namespace tessera::engine {
namespace {

// The backend compared with ref, and whether its buffers live on a device.
const std::string kUnderTest = TESSERA_TEST_BACKEND;
bool on_device() { return kUnderTest != "cpu"; }

// Why the backend under test cannot run here (nullptr: it can): e.g. a build without Vulkan or no device.
const char* unavailable() {
  static const std::string why = [] {
    try {
      make_backend(kUnderTest);
      return std::string();
    } catch (const std::exception& e) {
      return kUnderTest + " backend unavailable: " + e.what();
    }
  }();
  return why.empty() ? nullptr : why.c_str();
}

// Every test of the sweep: skipped, saying why, when the backend under test is unavailable.
template <class P>
class OpTest : public ::testing::TestWithParam<P> {
 protected:
  void SetUp() override {
    if (const char* why = unavailable()) GTEST_SKIP() << why;
  }
};
class OpFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* why = unavailable()) GTEST_SKIP() << why;
  }
};
// Weight types the vulkan backend has no shader for yet (issue 12).
bool vulkan_lacks(GgmlType t) {
  switch (t) {
    case GgmlType::IQ4_XS: case GgmlType::MXFP4: return kUnderTest == "vulkan";
    default: return false;
  }
}

using ops::random_activations;
using ops::random_weight_rows;

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

// ---- per-op budgets (NMSE of cpu against ref) ----
// Single f32 adds/copies: both backends do the same one rounding, so the outputs are bit-identical.
constexpr double kExactBudget = 0.0;
// Dequantization on a device: GPU compilers may contract d*q - m into an fma (one rounding fewer).
constexpr double kDeviceDequantBudget = 1e-13;
// Row-wise f32 ops (rmsnorm, rope, swiglu, route weights): ref works in double and rounds once, cpu
// rounds each f32 step (float sin/cos table, float exp): a few ulps, NMSE ~1e-14; 1e-11 leaves room
// for vector exp approximations while a wrong element, row or angle costs >1e-4.
constexpr double kRowOpBudget = 1e-11;
// Attention: both read the same f16 K and V, but cpu rounds q to f16 before q.k (as llama.cpp does),
// a relative error up to 2^-11 per element of q, and sums in f32 with an online softmax (merging key
// ranges split over threads). Measured 1e-9..1e-7 here (most at the deepest contexts); a key at the
// wrong position, block or layer shows up as >1e-2.
constexpr double kAttentionBudget = 1e-6;
// Matmul and logits: both quantize the activations to the type's activation format from the same f32
// rows, so only summation order (and an occasional rounding of one activation landing on the other
// side of a half step) differs. The kernel sweep (test_kernel_conformance) holds kernels to 1e-9 /
// 1e-10 against the same activations; one more decade here for the rare flipped activation rounding
// of the SIMD quantizers.
double matmul_budget(GgmlType t) { return is_float(t) ? 1e-10 : 1e-8; }
// hip-emu sends batches of at least kHipWmmaMinTokens tokens with quantized weights to the gfx12 matrix
// cores (kernels/hip/matmul_wmma.hip; HipStream's default threshold, TESSERA_HIP_WMMA_MIN_TOKENS):
// activations rounded to f16 instead of Q8, weights d q + m rounded to f16, f32 sums. Against ref's Q8
// activations that differs by ref's own activation rounding, a step of up to 1/127 of the block's
// largest value (Q8_0: 32 values, Q8_K: 256): NMSE ~ (amax/127)^2/12 / var(x), ~2e-5..6e-5 for these
// inputs (measured below 1e-4 at every shape here, see the table); the f16 weights add ~1e-8. A wrong
// tile, row, token or 16-value step costs >1e-3 at these sizes (n_in <= 2048 values, 16 per step).
// With the test inputs' outliers (random_activations: x8 on one value in 97) a 256-value Q8_K block
// nearly always holds one (step ~8/127): NMSE ~6e-4 measured; 32-value Q8_0 blocks mostly not: ~7e-5.
// So this budget is loose; MatmulWmma also holds the kernel to a float64 product of its own f16 inputs.
constexpr int64_t kHipWmmaMinTokens = 8;
int64_t block_of(GgmlType t);
double batch_matmul_budget(GgmlType t, int64_t n_tok) {
  if (kUnderTest != "hip-emu" || is_float(t) || n_tok < kHipWmmaMinTokens) return matmul_budget(t);
  return block_of(t) == 256 ? 2e-3 : 3e-4;
}
// The WMMA path against y = W x in float64 from W's dequantized rows and x rounded to f16 (the kernel's
// own inputs): only the weights' f16 rounding (up to 2^-12 relative) and the f32 sums separate them:
// NMSE ~4e-8 measured over 1000+ outputs, up to 1.1e-7 over 70 (one token); a wrong tile, row, token
// or 16-value step costs >1e-3.
constexpr double kWmmaF16Budget = 3e-7;
// MoE: gate/up as matmul, but silu(g)*u is formed in double on ref and in f32 on cpu and then quantized
// again for the down product, so now and then one of its activations rounds to the neighbouring code.
// A flipped f16 activation moves one of F inputs by one f16 ulp (2^-11 relative): NMSE ~2^-22/F, ~3e-10
// at F = 768 (measured up to 7e-11). A flipped Q8 code moves it by a step of up to 1/127 of its block's
// largest value: up to ~1e-7 (measured up to 3e-10). The budgets allow tens of flips and still catch
// a wrong expert, weight or dropped slot (>1e-2).
double moe_budget(GgmlType t) { return is_float(t) ? 1e-8 : 1e-5; }
// MoE on hip-emu's WMMA path: gate, up and down each with f16 instead of Q8 activations (see
// batch_matmul_budget), on top of the moe budget's flips.
// Against ref: ref rounds silu(g) u (heavy tailed: a block's step is set by its largest product) to
// Q8 for down, so ref itself strays: measured up to 1.6e-3 (Q8_0 blocks) and 3.6e-3 (Q8_K), and 4.5e-2
// once for Q8_K with h at 1/8 scale; these budgets only check that both compute the same MoE (a
// wrong expert, pair or slot: ~1). The tight check is against a float64 MoE of the path's own f16
// inputs: measured up to 4.4e-7 (one token of 96x288: few outputs; 3e-8 typical): silu(g) u near an f16
// rounding boundary rounds the other way now and then (a wrong expert, pair, slot or 16-value step:
// >1e-3 there).
double moe_wmma_budget(bool k_quant) { return k_quant ? 2e-2 : 5e-3; }
constexpr double kMoeWmmaF16Budget = 3e-6;

// The ref kernels with the activation format the backend under test uses for weights of type t: the
// CPU's default Q4_1 / Q5_1 kernels take f32 activations, ref's default (and Vulkan) Q8_1.
ops::KernelPolicy ref_policy(GgmlType t) {
  ops::KernelPolicy p;
  if (kUnderTest != "cpu") return p;
  for (ops::Op op : {ops::Op::Gemv, ops::Op::Gemm}) {
    const ops::MatmulShape shape{t, 256, 16, op == ops::Op::Gemv ? 1 : 64};
    const ops::MatmulKernel& k = ops::KernelPolicy().choose(shape, ops::host_caps());
    const std::string key = ops::op_key(op, t);
    p.set(key, key + "_" + std::string(ops::act_type_name(k.act)) + "_ref");
  }
  return p;
}

// ---- shapes ----
// Qwen3-30B-A3B, except: 2 layers, a 1000-token vocabulary (the scalar ref computes the logits), and
// expert stacks of `n_expert` given per test (the router uses the real 128).
ModelConfig real_config() {
  ModelConfig c;
  c.arch = "qwen3moe";
  c.n_embd = 2048;
  c.n_layer = 2;
  c.n_head = 32;
  c.n_head_kv = 4;
  c.head_dim = 128;
  c.n_vocab = 1000;
  c.n_expert = 128;
  c.n_expert_used = 8;
  c.n_ff_exp = 768;
  c.rope_base = 1e7;
  c.eps = 1e-6;
  return c;
}

// Small and odd: 96 = 64 + 32 (a SIMD width plus a remainder), 6 query heads over 2 KV heads.
ModelConfig small_config() {
  ModelConfig c;
  c.arch = "qwen3moe";
  c.n_embd = 96;
  c.n_layer = 2;
  c.n_head = 6;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_vocab = 37;
  c.n_expert = 8;
  c.n_expert_used = 3;
  c.n_ff_exp = 288;  // 9 blocks of 32: a group of 8 plus one
  c.rope_base = 1e4;
  c.eps = 1e-5;
  return c;
}

// The types the matmul-like ops are swept over: the common quants of MoE GGUFs plus the float ones.
const std::vector<GgmlType> kWeightTypes = {GgmlType::Q4_K,   GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::Q8_0,
                                            GgmlType::Q5_0,   GgmlType::F16,  GgmlType::F32};

int64_t block_of(GgmlType t) { return std::max<int64_t>(32, type_traits(t).block_size); }

// Float weights uniform in [-0.1, 0.1) as random_weight_rows makes them, but drawn with a plain
// xorshift: its std::uniform_real_distribution costs ~130 ns a value here, seconds at real shapes.
std::vector<uint8_t> float_weight_rows(GgmlType t, int64_t n_out, int64_t n_in, uint64_t seed) {
  const size_t n = static_cast<size_t>(n_out * n_in), size = t == GgmlType::F32 ? 4 : 2;
  std::vector<uint8_t> out(n * size);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const float v = (static_cast<float>(x >> 40) * 0x1p-23f - 1.0f) * 0.1f;
    if (t == GgmlType::F32) std::memcpy(out.data() + 4 * i, &v, 4);
    else {
      const uint16_t h = t == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}
std::vector<uint8_t> weight_rows(GgmlType t, int64_t n_out, int64_t n_in, uint64_t seed) {
  return is_float(t) ? float_weight_rows(t, n_out, n_in, seed) : random_weight_rows(t, n_out, n_in, seed);
}

// ---- the report ----
struct Row {
  std::string op, shape, type;
  double nmse, budget;
};
std::vector<Row>& report() {
  static std::vector<Row> r;
  return r;
}

double nmse(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? num / den : num;
}

// Compares cpu's n outputs with ref's, records the row and checks the budget (and finiteness).
void check(const std::string& op, const std::string& shape, const std::string& type, const float* cpu,
           const float* ref, size_t n, double budget) {
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(ref[i])) << op << " " << shape << " " << type << ": ref output " << i << " not finite";
    ASSERT_TRUE(std::isfinite(cpu[i])) << op << " " << shape << " " << type << ": " << kUnderTest << " output " << i << " not finite";
  }
  const double e = nmse(cpu, ref, n);
  report().push_back({op, shape, type, e, budget});
  EXPECT_LE(e, budget) << op << " " << shape << " " << type << ": NMSE of " << kUnderTest << " against ref";
}

// ---- the two backends side by side ----
enum Side { kCpu = 0, kRef = 1 };

// A buffer on each backend, n floats (or int32s). A device buffer has a host mirror (`mirror`) that
// Twin::run_on writes before and reads after each run.
struct Buf {
  std::unique_ptr<Buffer> b[2];
  std::shared_ptr<std::vector<float>> mirror;  // side kCpu on a device backend
  size_t n = 0;
  Buffer& operator[](int s) { return *b[s]; }
  float* f(int s) const { return s == kCpu && mirror ? mirror->data() : f32(*b[s]); }
  int32_t* i(int s) const { return reinterpret_cast<int32_t*>(f(s)); }
};

// A weight tensor in host memory (random bytes), uploaded to both backends.
struct Weight {
  std::vector<uint8_t> bytes;
  gguf::TensorInfo info;
  Matrix m[2];
};

// A batch over sequences: each sequence has its own (scattered) KV blocks.
struct BatchData {
  std::vector<int32_t> tokens, pos, out_rows;
  std::vector<const int32_t*> tables;
  std::vector<float> logits;
  Batch get() {
    Batch b;
    b.n_tokens = static_cast<int64_t>(pos.size());
    b.tokens = tokens.data();
    b.pos = pos.data();
    b.block_table = tables.data();
    b.out_rows = out_rows.data();
    b.n_out = static_cast<int64_t>(out_rows.size());
    return b;
  }
  // count tokens of the sequence with this block table, at positions start, start+1, ...
  BatchData& add(const std::vector<int32_t>& blocks, int start, int count) {
    for (int i = 0; i < count; ++i) {
      pos.push_back(start + i);
      tokens.push_back(static_cast<int32_t>(tokens.size()));
      tables.push_back(blocks.data());
    }
    return *this;
  }
};

class Twin {
 public:
  explicit Twin(const ModelConfig& c) : c_(c) {
    be_[kCpu] = make_backend(kUnderTest);
    be_[kRef] = make_backend("ref");
    StreamOptions o;
    o.n_threads = 2;
    o.n_batch = 128;  // the KV fill below batches up to 97 tokens
    for (int s : {kCpu, kRef}) st_[s] = be_[s]->create_stream(c_, o);
  }
  Twin(const Twin&) = delete;
  Twin& operator=(const Twin&) = delete;

  const ModelConfig& cfg() const { return c_; }
  Backend& backend(int s) { return *be_[s]; }

  // n floats on both backends, filled with `init` when given.
  Buf buf(size_t n, const std::vector<float>& init = {}) {
    Buf b;
    b.n = n;
    for (int s : {kCpu, kRef}) b.b[s] = be_[s]->alloc(n * sizeof(float));
    if (on_device()) {
      b.mirror = std::make_shared<std::vector<float>>(n, 0.0f);
      mirrors_.push_back({b.mirror, b.b[kCpu].get()});
    }
    for (int s : {kCpu, kRef})
      if (!init.empty()) std::memcpy(b.f(s), init.data(), n * sizeof(float));
    return b;
  }
  // A random matrix (or stack of n_mat experts) {n_in, n_out, n_mat} of type t on both backends.
  Weight& weight(GgmlType t, int64_t n_in, int64_t n_out, int64_t n_mat, uint64_t seed) {
    auto w = std::make_unique<Weight>();
    w->bytes = weight_rows(t, n_out * n_mat, n_in, seed);
    w->info.name = "w";
    w->info.type = t;
    w->info.n_dims = n_mat > 1 ? 3 : 2;
    w->info.ne = {n_in, n_out, n_mat, 1};
    w->info.data = w->bytes.data();
    w->info.nbytes = w->bytes.size();
    w->m[kCpu] = be_[kCpu]->upload_matrix(w->info, ops::KernelPolicy());
    w->m[kRef] = be_[kRef]->upload_matrix(w->info, ref_policy(t));
    weights_.push_back(std::move(w));
    return *weights_.back();
  }
  // Runs op(stream, side) on both streams after begin(batch), then syncs.
  void run(const Batch& b, const std::function<void(Stream&, int)>& op) {
    for (int s : {kCpu, kRef}) run_on(s, b, op);
  }
  void run_on(int s, const Batch& b, const std::function<void(Stream&, int)>& op) {
    if (s == kCpu) sync_mirrors(true);
    st_[s]->begin(b);
    op(*st_[s], s);
    st_[s]->sync();
    if (s == kCpu) sync_mirrors(false);
  }

 private:
  ModelConfig c_;  // the streams hold a reference
  std::shared_ptr<Backend> be_[2];
  std::unique_ptr<Stream> st_[2];
  std::deque<std::unique_ptr<Weight>> weights_;
  // The device buffers of live Bufs and their host mirrors (an expired mirror: the Buf is gone).
  struct Mirror {
    std::weak_ptr<std::vector<float>> host;
    Buffer* dev;
  };
  std::vector<Mirror> mirrors_;
  void sync_mirrors(bool to_device) {
    for (const Mirror& m : mirrors_)
      if (auto h = m.host.lock()) {
        if (to_device) be_[kCpu]->write(*m.dev, h->data(), h->size() * sizeof(float));
        else be_[kCpu]->read(*m.dev, h->data(), h->size() * sizeof(float));
      }
  }
};

std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (int64_t v : d) s += (s.empty() ? "" : "x") + std::to_string(v);
  return s;
}

// Scattered block ids of one sequence: n blocks from `first`, every other id, reversed.
std::vector<int32_t> scattered_blocks(int n, int first) {
  std::vector<int32_t> b(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) b[i] = first + 2 * (n - 1 - i);
  return b;
}

const std::vector<int32_t> kNoBlocks(1, 0);  // ops that ignore the KV still get a block table

// ===== embed =====
class Embed : public OpTest<GgmlType> {};

TEST_P(Embed, RowsEqualDequantize) {
  const GgmlType t = GetParam();
  if (vulkan_lacks(t)) GTEST_SKIP() << kUnderTest << ": no shader or kernel for " << type_name(t) << " yet";
  for (bool real : {false, true}) {
    ModelConfig c = real ? real_config() : small_config();
    if (!real && block_of(t) == 256) c.n_embd = 768;  // K-quants: 3 super-blocks
    Twin tw(c);
    std::vector<uint8_t> bytes = weight_rows(t, c.n_vocab, c.n_embd, 11);
    gguf::TensorInfo info;
    info.name = "token_embd.weight";
    info.type = t;
    info.n_dims = 2;
    info.ne = {c.n_embd, c.n_vocab, 1, 1};
    info.data = bytes.data();
    info.nbytes = bytes.size();
    Table tab[2] = {tw.backend(kCpu).upload_table(info), tw.backend(kRef).upload_table(info)};
    BatchData bd;
    bd.add(kNoBlocks, 0, 5);
    bd.tokens = {0, static_cast<int32_t>(c.n_vocab - 1), 7, 7, static_cast<int32_t>(c.n_vocab / 2)};
    const size_t n = static_cast<size_t>(5 * c.n_embd);
    Buf x = tw.buf(n);
    tw.run(bd.get(), [&](Stream& s, int side) { s.embed(tab[side], x[side]); });
    std::vector<float> want(n);
    for (int64_t i = 0; i < 5; ++i)
      dequantize_row(t, bytes.data() + static_cast<size_t>(bd.tokens[i]) * info.row_bytes(), want.data() + i * c.n_embd,
                     c.n_embd);
    const std::string shape = dims({c.n_embd, c.n_vocab}) + " 5 tok";
    for (int s : {kCpu, kRef})
      if (s == kRef || !on_device())
        EXPECT_EQ(std::memcmp(x.f(s), want.data(), n * sizeof(float)), 0)
            << "embed " << shape << " " << type_name(t) << " on " << (s == kCpu ? kUnderTest : "ref");
    // a device may fuse the block's scale and offset into one fma: a rounding of a few values
    check("embed", shape, std::string(type_name(t)), x.f(kCpu), want.data(), n, on_device() ? kDeviceDequantBudget : kExactBudget);
    // an id outside the vocabulary is an error on both
    bd.tokens[3] = static_cast<int32_t>(c.n_vocab);
    for (int s : {kCpu, kRef})
      EXPECT_ANY_THROW(tw.run_on(s, bd.get(), [&](Stream& st, int side) { st.embed(tab[side], x[side]); }))
          << (s == kCpu ? kUnderTest : "ref");
  }
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Embed, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& i) { return std::string(type_name(i.param)); });

// ===== rmsnorm =====
struct NormCase {
  bool real;
  int n_tokens;
  bool qk;       // rows of head_dim (QK-norm) instead of n_embd
  bool inplace;  // y is x
};
void PrintTo(const NormCase& p, std::ostream* os) {
  *os << (p.real ? "real" : "small") << " " << p.n_tokens << " tok" << (p.qk ? " qk" : "") << (p.inplace ? " in place" : "");
}
class Rmsnorm : public OpTest<NormCase> {};

TEST_P(Rmsnorm, MatchesRef) {
  const NormCase p = GetParam();
  Twin tw(p.real ? real_config() : small_config());
  const ModelConfig& c = tw.cfg();
  const int64_t n = p.qk ? c.head_dim : c.n_embd, rows = p.qk ? p.n_tokens * c.n_head : p.n_tokens;
  const size_t sz = static_cast<size_t>(rows * n);
  std::vector<float> w = random_activations(n, 3);
  for (float& v : w) v += 1.0f;
  Vector wv[2] = {tw.backend(kCpu).upload_vector(w.data(), n), tw.backend(kRef).upload_vector(w.data(), n)};
  Buf x = tw.buf(sz, random_activations(static_cast<int64_t>(sz), 4)), y = tw.buf(sz);
  BatchData bd;
  bd.add(kNoBlocks, 0, p.n_tokens);
  tw.run(bd.get(), [&](Stream& s, int side) { s.rmsnorm(x[side], p.inplace ? x[side] : y[side], wv[side], rows); });
  const Buf& out = p.inplace ? x : y;
  check("rmsnorm", std::to_string(rows) + " rows of " + std::to_string(n) + (p.inplace ? " in place" : ""), "f32",
        out.f(kCpu), out.f(kRef), sz, kRowOpBudget);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Rmsnorm,
                         ::testing::Values(NormCase{false, 1, false, false}, NormCase{false, 3, false, true},
                                           NormCase{false, 33, true, false}, NormCase{true, 3, false, false},
                                           NormCase{true, 33, false, true}, NormCase{true, 3, true, true}),
                         [](const auto& i) {
                           return std::string(i.param.real ? "real" : "small") + "_" + std::to_string(i.param.n_tokens) +
                                  "tok" + (i.param.qk ? "_qk" : "") + (i.param.inplace ? "_inplace" : "");
                         });

// ===== rope =====
struct RopeCase {
  bool real;
  std::vector<int> starts;  // one sequence per entry: its first position
  int per_seq;              // tokens of each sequence
  bool llama = false;       // NORM pairs, Llama-3-style frequency factors and a linear scale
};
void PrintTo(const RopeCase& p, std::ostream* os) {
  *os << (p.real ? "real" : "small") << (p.llama ? " llama" : "") << " " << p.per_seq << " tok at";
  for (int st : p.starts) *os << " " << st;
}
class Rope : public OpTest<RopeCase> {};

// The config of a rope case: llama's rope (adjacent pairs) with frequency factors 1..8 over the pairs
// and linear scaling 1/2 on top of the real or small shapes.
ModelConfig rope_config(const RopeCase& p) {
  ModelConfig c = p.real ? real_config() : small_config();
  if (p.llama) {
    c.arch = "llama";
    c.rope_type = ops::RopeType::Norm;
    c.rope_base = 5e5;
    c.rope_freq_scale = 0.5;
    c.rope_freq_factors.resize(static_cast<size_t>(c.head_dim / 2));
    for (size_t i = 0; i < c.rope_freq_factors.size(); ++i)
      c.rope_freq_factors[i] = 1.0f + 7.0f * static_cast<float>(i) / static_cast<float>(c.rope_freq_factors.size());
  }
  return c;
}

TEST_P(Rope, MatchesRefOnQAndKHeads) {
  const RopeCase p = GetParam();
  Twin tw(rope_config(p));
  const ModelConfig& c = tw.cfg();
  BatchData bd;
  for (int st : p.starts) bd.add(kNoBlocks, st, p.per_seq);
  const int64_t n_tok = bd.get().n_tokens;
  for (int64_t heads : {c.n_head, c.n_head_kv}) {
    const size_t sz = static_cast<size_t>(n_tok * heads * c.head_dim);
    Buf x = tw.buf(sz, random_activations(static_cast<int64_t>(sz), static_cast<uint64_t>(heads)));
    tw.run(bd.get(), [&](Stream& s, int side) { s.rope(x[side], heads); });
    std::string where;
    for (int st : p.starts) where += (where.empty() ? "pos " : ",") + std::to_string(st) + "+" + std::to_string(p.per_seq);
    check("rope", std::to_string(heads) + "x" + std::to_string(c.head_dim) + " " + where, "f32", x.f(kCpu), x.f(kRef), sz,
          kRowOpBudget);
  }
}

// A second begin() with other positions must move the angles (a stale table would keep the first).
TEST_P(Rope, NewBeginMovesPositions) {
  const RopeCase p = GetParam();
  Twin tw(rope_config(p));
  const ModelConfig& c = tw.cfg();
  BatchData first, second;
  first.add(kNoBlocks, 0, 3);
  second.add(kNoBlocks, p.starts.back() + 5, 3);
  const size_t sz = static_cast<size_t>(3 * c.n_head * c.head_dim);
  Buf a = tw.buf(sz, random_activations(static_cast<int64_t>(sz), 21)), b = tw.buf(sz, random_activations(static_cast<int64_t>(sz), 21));
  tw.run(first.get(), [&](Stream& s, int side) { s.rope(a[side], c.n_head); });
  tw.run(second.get(), [&](Stream& s, int side) { s.rope(b[side], c.n_head); });
  check("begin+rope", "pos 0+3 then " + std::to_string(p.starts.back() + 5) + "+3", "f32", b.f(kCpu), b.f(kRef), sz,
        kRowOpBudget);
}
// QK-norm then rope of q and k, in the order the attention block issues them (rmsnorm q, rmsnorm k,
// rope q, rope k; vulkan fuses each norm into its rope): both heads' outputs against ref.
TEST_P(Rope, AfterQkNorm) {
  const RopeCase p = GetParam();
  Twin tw(rope_config(p));
  const ModelConfig& c = tw.cfg();
  BatchData bd;
  for (int st : p.starts) bd.add(kNoBlocks, st, p.per_seq);
  const int64_t n_tok = bd.get().n_tokens, hd = c.head_dim;
  const size_t nq = static_cast<size_t>(n_tok * c.n_head * hd), nk = static_cast<size_t>(n_tok * c.n_head_kv * hd);
  std::vector<float> wq = random_activations(hd, 5), wk = random_activations(hd, 6);
  for (float& v : wq) v += 1.0f;
  Vector vq[2] = {tw.backend(kCpu).upload_vector(wq.data(), hd), tw.backend(kRef).upload_vector(wq.data(), hd)};
  Vector vk[2] = {tw.backend(kCpu).upload_vector(wk.data(), hd), tw.backend(kRef).upload_vector(wk.data(), hd)};
  Buf q = tw.buf(nq, random_activations(static_cast<int64_t>(nq), 7)), k = tw.buf(nk, random_activations(static_cast<int64_t>(nk), 8));
  tw.run(bd.get(), [&](Stream& s, int side) {
    s.rmsnorm(q[side], q[side], vq[side], n_tok * c.n_head);
    s.rmsnorm(k[side], k[side], vk[side], n_tok * c.n_head_kv);
    s.rope(q[side], c.n_head);
    s.rope(k[side], c.n_head_kv);
  });
  const std::string shape = std::to_string(n_tok) + " tok x " + std::to_string(hd);
  check("qk_norm+rope", "q " + shape, "f32", q.f(kCpu), q.f(kRef), nq, kRowOpBudget);
  check("qk_norm+rope", "k " + shape, "f32", k.f(kCpu), k.f(kRef), nk, kRowOpBudget);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Rope,
                         ::testing::Values(RopeCase{false, {0}, 1}, RopeCase{false, {0}, 3}, RopeCase{false, {17, 1000}, 3},
                                           RopeCase{true, {0}, 3}, RopeCase{true, {40000, 5}, 2},
                                           RopeCase{true, {100}, 33}, RopeCase{false, {0}, 3, true},
                                           RopeCase{false, {17, 1000}, 3, true}, RopeCase{true, {40000, 5}, 2, true}),
                         [](const auto& i) {
                           std::string s = std::string(i.param.llama ? "llama_" : "") + (i.param.real ? "real" : "small");
                           for (int st : i.param.starts) s += "_at" + std::to_string(st);
                           return s + "_" + std::to_string(i.param.per_seq) + "tok";
                         });

// ===== kv_store + attention =====
struct AttnCase {
  bool real;
  int n_head, n_head_kv;  // 0: the config's
  int depth_a, n_a;       // sequence A: positions 0..depth_a-1 stored before, n_a query tokens after
  int depth_b, n_b;       // sequence B (n_b 0: none)
};
void PrintTo(const AttnCase& p, std::ostream* os) {
  *os << (p.real ? "real" : "small") << " heads " << p.n_head << "/" << p.n_head_kv << " A " << p.depth_a << "+" << p.n_a
      << " B " << p.depth_b << "+" << p.n_b;
}
class KvAttention : public OpTest<AttnCase> {};

// rope_k: 0: K stored as drawn; 1: rope'd first; 2: QK-norm'ed and rope'd first (as the forward pass
// issues them; vulkan folds the store into the rope: rope_store / rope_qk_norm_store); 3 and 4: q heads
// (QK-norm'ed and) rope'd along with k's before the store, as the forward pass does (vulkan: one
// dispatch for both, rope_both_store / rope_qk_norm_both_store), and the query batch attends with them.
void kv_attention_case(const AttnCase& p, int rope_k) {
  ModelConfig cfg = p.real ? real_config() : small_config();
  if (p.n_head) {
    cfg.n_head = p.n_head;
    cfg.n_head_kv = p.n_head_kv;
  }
  Twin tw(cfg);
  const ModelConfig& c = tw.cfg();
  const int B = ops::kKvBlock;
  const int blocks_a = (p.depth_a + p.n_a + B - 1) / B, blocks_b = (p.depth_b + p.n_b + B - 1) / B;
  // A on even ids, B on odd ones, both out of order; layer 0 gets other keys, attention reads layer 1
  const std::vector<int32_t> seq_a = scattered_blocks(std::max(blocks_a, 1), 0);
  const std::vector<int32_t> seq_b = scattered_blocks(std::max(blocks_b, 1), 1);
  const KvShape kv_shape{2, static_cast<int>(c.n_head_kv), static_cast<int>(c.head_dim), 2 * std::max(blocks_a, blocks_b) + 2};
  std::unique_ptr<KvStore> kv[2] = {tw.backend(kCpu).create_kv(kv_shape), tw.backend(kRef).create_kv(kv_shape)};
  const int64_t kv_dim = c.n_head_kv * c.head_dim, q_dim = c.n_head * c.head_dim;
  uint64_t seed = 100;
  std::vector<float> knw = random_activations(c.head_dim, 99);
  for (float& v : knw) v += 1.0f;
  Vector kn[2] = {tw.backend(kCpu).upload_vector(knw.data(), c.head_dim), tw.backend(kRef).upload_vector(knw.data(), c.head_dim)};
  std::vector<float> qnw = random_activations(c.head_dim, 98);
  for (float& v : qnw) v += 1.0f;
  Vector qn[2] = {tw.backend(kCpu).upload_vector(qnw.data(), c.head_dim), tw.backend(kRef).upload_vector(qnw.data(), c.head_dim)};
  const bool norm = rope_k == 2 || rope_k == 3, with_q = rope_k >= 3;
  std::optional<Buf> last_q;  // with_q: the q heads of the last store
  // stores K and V of a batch in one layer of both stores
  auto store = [&](BatchData& bd, int layer) {
    const int64_t n = bd.get().n_tokens;
    Buf k = tw.buf(static_cast<size_t>(n * kv_dim), random_activations(n * kv_dim, seed++));
    Buf v = tw.buf(static_cast<size_t>(n * kv_dim), random_activations(n * kv_dim, seed++));
    Buf q = tw.buf(static_cast<size_t>(with_q ? n * q_dim : 1), with_q ? random_activations(n * q_dim, seed++) : std::vector<float>{});
    tw.run(bd.get(), [&](Stream& s, int side) {
      if (with_q && norm) s.rmsnorm(q[side], q[side], qn[side], n * c.n_head);
      if (norm) s.rmsnorm(k[side], k[side], kn[side], n * c.n_head_kv);
      if (with_q) s.rope(q[side], c.n_head);
      if (rope_k >= 1) s.rope(k[side], c.n_head_kv);
      s.kv_store(*kv[side], layer, k[side], v[side]);
    });
    if (with_q) last_q = std::move(q);
  };
  // the context before the query batch, in uneven batches (both sequences interleaved in some)
  const int chunks[] = {1, 7, 33, 5, 64};
  int done_a = 0, done_b = 0;
  for (int i = 0; done_a < p.depth_a || done_b < p.depth_b; ++i) {
    const int ch = chunks[i % 5];
    BatchData bd;
    const int na = std::min(ch, p.depth_a - done_a), nb = std::min(ch / 2 + 1, p.depth_b - done_b);
    if (na > 0) bd.add(seq_a, done_a, na);
    if (nb > 0) bd.add(seq_b, done_b, nb);
    for (int layer : {0, 1}) store(bd, layer);
    done_a += std::max(na, 0);
    done_b += std::max(nb, 0);
  }
  // the query batch stores its own K and V first, as the forward does, then attends
  BatchData q_bd;
  q_bd.add(seq_a, p.depth_a, p.n_a);
  if (p.n_b > 0) q_bd.add(seq_b, p.depth_b, p.n_b);
  store(q_bd, 0);
  store(q_bd, 1);
  const int64_t n_tok = q_bd.get().n_tokens;
  Buf q = with_q ? std::move(*last_q) : tw.buf(static_cast<size_t>(n_tok * q_dim), random_activations(n_tok * q_dim, 7));
  Buf out = tw.buf(static_cast<size_t>(n_tok * q_dim));
  tw.run(q_bd.get(), [&](Stream& s, int side) { s.attention(*kv[side], 1, q[side], out[side]); });
  std::string shape = std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + "x" + std::to_string(c.head_dim) +
                      " A " + std::to_string(p.depth_a) + "+" + std::to_string(p.n_a);
  if (p.n_b > 0) shape += " B " + std::to_string(p.depth_b) + "+" + std::to_string(p.n_b);
  const char* ops[] = {"kv_store+attention", "rope+kv_store+attention", "qk_norm+rope+kv_store+attention",
                       "qk_norm+rope q,k+kv_store+attention", "rope q,k+kv_store+attention"};
  const char* op = ops[rope_k];
  if (with_q) check(op, "q " + shape, "f32", q.f(kCpu), q.f(kRef), q.n, kRowOpBudget);
  check(op, shape, "f16 kv", out.f(kCpu), out.f(kRef), out.n, kAttentionBudget);
}
TEST_P(KvAttention, MatchesRef) { kv_attention_case(GetParam(), 0); }
TEST_P(KvAttention, AfterRope) { kv_attention_case(GetParam(), 1); }
TEST_P(KvAttention, AfterQkNormAndRope) { kv_attention_case(GetParam(), 2); }
TEST_P(KvAttention, AfterQkNormAndRopeOfQAndK) { kv_attention_case(GetParam(), 3); }
TEST_P(KvAttention, AfterRopeOfQAndK) { kv_attention_case(GetParam(), 4); }
INSTANTIATE_TEST_SUITE_P(
    BackendOps, KvAttention,
    ::testing::Values(AttnCase{false, 0, 0, 0, 1, 0, 0},      // first token
                      AttnCase{false, 0, 0, 0, 3, 0, 0},      // a prompt from 0
                      AttnCase{false, 0, 0, 31, 1, 0, 0},     // last slot of block 0
                      AttnCase{false, 0, 0, 32, 1, 0, 0},     // first slot of block 1
                      AttnCase{false, 0, 0, 100, 33, 0, 0},   // a chunk across blocks 3..4
                      AttnCase{false, 0, 0, 70, 3, 9, 1},     // two sequences at different depths
                      AttnCase{false, 8, 1, 600, 1, 0, 0},    // one KV head, 19 blocks: keys split over threads
                      AttnCase{false, 5, 5, 40, 2, 0, 0},     // no grouping, odd head count
                      AttnCase{true, 0, 0, 0, 3, 0, 0},       // Qwen3-30B-A3B prompt
                      AttnCase{true, 0, 0, 130, 1, 45, 2},    // Qwen3-30B-A3B decoding two sequences
                      AttnCase{true, 0, 0, 1000, 1, 2900, 1}),  // long contexts (hip: 12 key ranges, A's last 8 empty)
    [](const auto& i) {
      const AttnCase& p = i.param;
      std::string s = std::string(p.real ? "real" : "small") + (p.n_head ? "_h" + std::to_string(p.n_head) + "kv" + std::to_string(p.n_head_kv) : "") +
                      "_A" + std::to_string(p.depth_a) + "p" + std::to_string(p.n_a);
      if (p.n_b) s += "_B" + std::to_string(p.depth_b) + "p" + std::to_string(p.n_b);
      return s;
    });

// ===== matmul =====
class Matmul : public OpTest<GgmlType> {};

TEST_P(Matmul, MatchesRef) {
  const GgmlType t = GetParam();
  if (vulkan_lacks(t)) GTEST_SKIP() << kUnderTest << ": no matmul shader or kernel for " << type_name(t) << " yet";
  const std::string tn(type_name(t));
  uint64_t seed = 1;
  {  // real: q, k and v projections from one input in one call (3 tokens), then o and an expert's down (1 token)
    Twin tw(real_config());
    const ModelConfig& c = tw.cfg();
    const int64_t E = c.n_embd, Q = c.n_head * c.head_dim, KV = c.n_head_kv * c.head_dim;
    Weight& wq = tw.weight(t, E, Q, 1, seed++);
    Weight& wk = tw.weight(t, E, KV, 1, seed++);
    Weight& wv = tw.weight(t, E, KV, 1, seed++);
    Weight& wdown = tw.weight(t, c.n_ff_exp, E, 1, seed++);
    Buf x = tw.buf(static_cast<size_t>(3 * E), random_activations(3 * E, seed++));
    Buf q = tw.buf(static_cast<size_t>(3 * Q)), k = tw.buf(static_cast<size_t>(3 * KV)), v = tw.buf(static_cast<size_t>(3 * KV));
    BatchData bd;
    bd.add(kNoBlocks, 4, 3);
    tw.run(bd.get(), [&](Stream& s, int side) {
      const MatmulCall calls[] = {{&wq.m[side], &x[side], &q[side], -1}, {&wk.m[side], &x[side], &k[side], -1},
                                  {&wv.m[side], &x[side], &v[side], -1}};
      s.matmul(calls);
    });
    check("matmul", "qkv " + dims({E, Q}) + "+2x" + dims({E, KV}) + " 3 tok", tn, q.f(kCpu), q.f(kRef), q.n, matmul_budget(t));
    check("matmul", "k " + dims({E, KV}) + " 3 tok", tn, k.f(kCpu), k.f(kRef), k.n, matmul_budget(t));
    check("matmul", "v " + dims({E, KV}) + " 3 tok", tn, v.f(kCpu), v.f(kRef), v.n, matmul_budget(t));
    Buf a = tw.buf(static_cast<size_t>(c.n_ff_exp), random_activations(c.n_ff_exp, seed++)), y = tw.buf(static_cast<size_t>(E));
    BatchData one;
    one.add(kNoBlocks, 9, 1);
    tw.run(one.get(), [&](Stream& s, int side) { s.matmul(MatmulCall{&wdown.m[side], &a[side], &y[side], -1}); });
    check("matmul", "down " + dims({c.n_ff_exp, E}) + " 1 tok", tn, y.f(kCpu), y.f(kRef), y.n, matmul_budget(t));
  }
  {  // small: odd rows, 1/3/33 tokens (33: above the per-count bindings), `rows` below the batch's tokens
    Twin tw(small_config());
    const int64_t n_in = is_float(t) ? 96 : block_of(t) * 3, n_out = 17;
    Weight& w = tw.weight(t, n_in, n_out, 1, seed++);
    for (int n_tok : {1, 3, 33}) {
      for (int64_t rows : {int64_t{-1}, int64_t{2}}) {
        if (rows >= n_tok) continue;
        const int64_t r = rows < 0 ? n_tok : rows;
        Buf x = tw.buf(static_cast<size_t>(n_tok * n_in), random_activations(n_tok * n_in, seed++));
        Buf y = tw.buf(static_cast<size_t>(n_tok * n_out));
        BatchData bd;
        bd.add(kNoBlocks, 0, n_tok);
        tw.run(bd.get(), [&](Stream& s, int side) { s.matmul(MatmulCall{&w.m[side], &x[side], &y[side], rows}); });
        check("matmul", dims({n_in, n_out}) + " " + std::to_string(n_tok) + " tok" + (rows >= 0 ? " rows " + std::to_string(rows) : ""),
              tn, y.f(kCpu), y.f(kRef), static_cast<size_t>(r * n_out), batch_matmul_budget(t, r));
        // rows past `rows` stay untouched (zero) on both
        for (int s : {kCpu, kRef})
          for (size_t i = static_cast<size_t>(r * n_out); i < y.n; ++i) ASSERT_EQ(y.f(s)[i], 0.0f) << "matmul wrote past rows";
      }
    }
  }
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Matmul, ::testing::ValuesIn(ops::matmul_weight_types()),
                         [](const auto& i) { return std::string(type_name(i.param)); });

// ===== matmul on the gfx12 matrix cores (hip-emu's matmul_wmma, forced for every batch) =====
// hip-emu's streams made while one lives send every batch (from 1 token) to the WMMA kernels.
struct ForceWmma {  // HipStream reads it when the stream is made (Twin's constructor)
  ForceWmma() { ::setenv("TESSERA_HIP_WMMA_MIN_TOKENS", "1", 1); }
  ~ForceWmma() { ::unsetenv("TESSERA_HIP_WMMA_MIN_TOKENS"); }
};
// Tokens and output rows that are not multiples of the 16x16 tiles nor of the kernel's 64x64 blocks,
// `rows` below the batch, and a real q projection. Other backends have no such path: skipped by name.
class MatmulWmma : public OpTest<GgmlType> {};
// y[t] = W x[t] for t < n_tok in float64, x rounded to f16, W's rows dequantized (f32, as ref reads them).
std::vector<float> f16_input_product(const Weight& w, const float* x, int64_t n_tok, int64_t n_in, int64_t n_out) {
  std::vector<float> row(static_cast<size_t>(n_in)), y(static_cast<size_t>(n_tok * n_out));
  std::vector<double> xh(static_cast<size_t>(n_tok * n_in));
  for (size_t i = 0; i < xh.size(); ++i) xh[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
  for (int64_t o = 0; o < n_out; ++o) {
    dequantize_row(w.info.type, w.bytes.data() + static_cast<size_t>(o) * w.info.row_bytes(), row.data(), n_in);
    for (int64_t t = 0; t < n_tok; ++t) {
      double acc = 0.0;
      for (int64_t k = 0; k < n_in; ++k) acc += xh[static_cast<size_t>(t * n_in + k)] * row[static_cast<size_t>(k)];
      y[static_cast<size_t>(t * n_out + o)] = static_cast<float>(acc);
    }
  }
  return y;
}
TEST_P(MatmulWmma, MatchesRef) {
  const GgmlType t = GetParam();
  if (kUnderTest != "hip-emu") GTEST_SKIP() << kUnderTest << ": no gfx12 WMMA path (hip-emu only)";
  if (vulkan_lacks(t)) GTEST_SKIP() << kUnderTest << ": no matmul kernel for " << type_name(t) << " yet";
  const std::string tn(type_name(t));
  uint64_t seed = 500;
  {
    ForceWmma force;
    Twin tw(small_config());
    const int64_t n_in = block_of(t) * 3;
    for (int64_t n_out : {17, 70}) {
      Weight& w = tw.weight(t, n_in, n_out, 1, seed++);
      for (int n_tok : {1, 5, 17, 70}) {
        for (int64_t rows : {int64_t{-1}, int64_t{20}}) {
          if (rows >= n_tok) continue;
          const int64_t r = rows < 0 ? n_tok : rows;
          Buf x = tw.buf(static_cast<size_t>(n_tok * n_in), random_activations(n_tok * n_in, seed++));
          Buf y = tw.buf(static_cast<size_t>(n_tok * n_out));
          BatchData bd;
          bd.add(kNoBlocks, 0, n_tok);
          tw.run(bd.get(), [&](Stream& s, int side) { s.matmul(MatmulCall{&w.m[side], &x[side], &y[side], rows}); });
          check("matmul wmma", dims({n_in, n_out}) + " " + std::to_string(n_tok) + " tok" + (rows >= 0 ? " rows " + std::to_string(rows) : ""),
                tn, y.f(kCpu), y.f(kRef), static_cast<size_t>(r * n_out), batch_matmul_budget(t, kHipWmmaMinTokens));
          for (int s : {kCpu, kRef})
            for (size_t i = static_cast<size_t>(r * n_out); i < y.n; ++i) ASSERT_EQ(y.f(s)[i], 0.0f) << "matmul wrote past rows";
          const std::vector<float> want = f16_input_product(w, x.f(kCpu), r, n_in, n_out);
          check("matmul wmma vs f16 inputs", dims({n_in, n_out}) + " " + std::to_string(r) + " tok", tn, y.f(kCpu), want.data(),
                want.size(), kWmmaF16Budget);
        }
      }
    }
  }
  {  // real: the q projection of 20 tokens
    ForceWmma force;
    Twin tw(real_config());
    const ModelConfig& c = tw.cfg();
    const int64_t E = c.n_embd, Q = c.n_head * c.head_dim, n_tok = 20;
    Weight& wq = tw.weight(t, E, Q, 1, seed++);
    Buf x = tw.buf(static_cast<size_t>(n_tok * E), random_activations(n_tok * E, seed++)), q = tw.buf(static_cast<size_t>(n_tok * Q));
    BatchData bd;
    bd.add(kNoBlocks, 0, static_cast<int>(n_tok));
    tw.run(bd.get(), [&](Stream& s, int side) { s.matmul(MatmulCall{&wq.m[side], &x[side], &q[side], -1}); });
    check("matmul wmma", "q " + dims({E, Q}) + " 20 tok", tn, q.f(kCpu), q.f(kRef), q.n, batch_matmul_budget(t, kHipWmmaMinTokens));
    const std::vector<float> want = f16_input_product(wq, x.f(kCpu), n_tok, E, Q);
    check("matmul wmma vs f16 inputs", "q " + dims({E, Q}) + " 20 tok", tn, q.f(kCpu), want.data(), want.size(), kWmmaF16Budget);
  }
}
std::vector<GgmlType> quantized_matmul_types() {
  std::vector<GgmlType> r;
  for (GgmlType t : ops::matmul_weight_types())
    if (!is_float(t)) r.push_back(t);
  return r;
}
INSTANTIATE_TEST_SUITE_P(BackendOps, MatmulWmma, ::testing::ValuesIn(quantized_matmul_types()),
                         [](const auto& i) { return std::string(type_name(i.param)); });
// The Vulkan batch matmul's paths, each forced (TESSERA_VK_MATMUL) for every weight type: the tiles
// on cooperative matrices (f16 hi/lo pairs) and their twin on shared memory (f32), at token counts
// and rows that are not tile multiples (tiles of 32 and more), `rows` below the batch, and one real
// input width. The coopmat path is skipped, saying so, on a device without a usable shape (the
// devices test checks that lavapipe 26 has one).
struct PathCase {
  const char* path;
  GgmlType type;
};
void PrintTo(const PathCase& p, std::ostream* os) { *os << p.path << " " << type_name(p.type); }
class MatmulPath : public OpTest<PathCase> {};
// The vulkan batch matmul path for the streams made while it lives.
struct PathEnv {
  explicit PathEnv(const char* v) { setenv("TESSERA_VK_MATMUL", v, 1); }
  ~PathEnv() { unsetenv("TESSERA_VK_MATMUL"); }
  PathEnv(const PathEnv&) = delete;
  PathEnv& operator=(const PathEnv&) = delete;
};

TEST_P(MatmulPath, MatchesRef) {
  const PathCase p = GetParam();
  if (kUnderTest != "vulkan") GTEST_SKIP() << "the batch matmul paths are the vulkan backend's (" << kUnderTest << " has one)";
  if (vulkan_lacks(p.type)) GTEST_SKIP() << kUnderTest << ": no matmul shader for " << type_name(p.type) << " yet";
  const PathEnv env(p.path);
  const GgmlType t = p.type;
  std::unique_ptr<Twin> tw;
  try {
    tw = std::make_unique<Twin>(small_config());
  } catch (const std::exception& e) {
    if (std::string(p.path) == "coopmat" && std::string(e.what()).find("no usable cooperative matrix") != std::string::npos)
      GTEST_SKIP() << e.what();
    throw;
  }
  const std::string tn(type_name(t));
  uint64_t seed = 100;
  struct Size {
    int64_t n_in, n_out;
    int n_tok, rows;  // rows < 0: all tokens
  };
  const int64_t blk = block_of(t);
  const std::vector<Size> sizes = {
      {is_float(t) ? 100 : blk * 3, 37, 2, -1},  {is_float(t) ? 100 : blk * 3, 37, 7, -1},
      {is_float(t) ? 70 : blk, 65, 33, -1},     {is_float(t) ? 100 : blk * 3, 37, 67, -1},
      {is_float(t) ? 100 : blk * 3, 37, 40, 35}, {2048, 301, 67, -1}};
  for (const Size& z : sizes) {
    Weight& w = tw->weight(t, z.n_in, z.n_out, 1, seed++);
    const int64_t r = z.rows < 0 ? z.n_tok : z.rows;
    Buf x = tw->buf(static_cast<size_t>(z.n_tok * z.n_in), random_activations(z.n_tok * z.n_in, seed++));
    Buf y = tw->buf(static_cast<size_t>(z.n_tok * z.n_out));
    BatchData bd;
    bd.add(kNoBlocks, 0, z.n_tok);
    tw->run(bd.get(), [&](Stream& s, int side) { s.matmul(MatmulCall{&w.m[side], &x[side], &y[side], z.rows}); });
    check(std::string("matmul ") + p.path, dims({z.n_in, z.n_out}) + " " + std::to_string(z.n_tok) + " tok" +
                                              (z.rows >= 0 ? " rows " + std::to_string(z.rows) : ""),
          tn, y.f(kCpu), y.f(kRef), static_cast<size_t>(r * z.n_out), matmul_budget(t));
    for (size_t i = static_cast<size_t>(r * z.n_out); i < y.n; ++i) ASSERT_EQ(y.f(kCpu)[i], 0.0f) << "matmul wrote past rows";
  }
}
std::vector<PathCase> path_cases() {
  std::vector<PathCase> v;
  for (const char* path : {"coopmat", "tiled"})
    for (GgmlType t : ops::matmul_weight_types()) v.push_back({path, t});
  return v;
}
INSTANTIATE_TEST_SUITE_P(BackendOps, MatmulPath, ::testing::ValuesIn(path_cases()),
                         [](const auto& i) { return std::string(i.param.path) + "_" + std::string(type_name(i.param.type)); });

// ===== add_bias, add, swiglu =====
struct EltCase {
  bool real;
  int n_tokens;
};
void PrintTo(const EltCase& p, std::ostream* os) { *os << (p.real ? "real " : "small ") << p.n_tokens << " tok"; }
std::string elt_name(const ::testing::TestParamInfo<EltCase>& i) {
  return std::string(i.param.real ? "real" : "small") + "_" + std::to_string(i.param.n_tokens) + "tok";
}
const auto kEltCases = ::testing::Values(EltCase{false, 1}, EltCase{false, 3}, EltCase{true, 3}, EltCase{true, 33});

class AddBias : public OpTest<EltCase> {};
TEST_P(AddBias, MatchesRef) {
  Twin tw(GetParam().real ? real_config() : small_config());
  const ModelConfig& c = tw.cfg();
  const int n_tok = GetParam().n_tokens;
  // qwen2's q bias: n_head * head_dim per token; `rows` one less than the batch (the last row untouched)
  const int64_t n = c.n_head * c.head_dim, rows = std::max(1, n_tok - 1);
  std::vector<float> b = random_activations(n, 5);
  Vector bv[2] = {tw.backend(kCpu).upload_vector(b.data(), n), tw.backend(kRef).upload_vector(b.data(), n)};
  Buf y = tw.buf(static_cast<size_t>(n_tok * n), random_activations(n_tok * n, 6));
  BatchData bd;
  bd.add(kNoBlocks, 0, n_tok);
  tw.run(bd.get(), [&](Stream& s, int side) { s.add_bias(y[side], bv[side], rows); });
  check("add_bias", std::to_string(rows) + " rows of " + std::to_string(n), "f32", y.f(kCpu), y.f(kRef), y.n, kExactBudget);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, AddBias, kEltCases, elt_name);

class Add : public OpTest<EltCase> {};
TEST_P(Add, MatchesRef) {
  Twin tw(GetParam().real ? real_config() : small_config());
  const int64_t n = tw.cfg().n_embd, n_tok = GetParam().n_tokens;
  // a buffer longer than the batch: rows past it must stay as they were
  const size_t sz = static_cast<size_t>((n_tok + 2) * n);
  Buf y = tw.buf(sz, random_activations(static_cast<int64_t>(sz), 8));
  Buf x = tw.buf(sz, random_activations(static_cast<int64_t>(sz), 9));
  BatchData bd;
  bd.add(kNoBlocks, 3, static_cast<int>(n_tok));
  tw.run(bd.get(), [&](Stream& s, int side) { s.add(y[side], x[side], n); });
  check("add", std::to_string(n_tok) + " rows of " + std::to_string(n), "f32", y.f(kCpu), y.f(kRef), y.n, kExactBudget);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Add, kEltCases, elt_name);

class Swiglu : public OpTest<EltCase> {};
TEST_P(Swiglu, MatchesRef) {
  Twin tw(GetParam().real ? real_config() : small_config());
  const int64_t n = tw.cfg().n_ff_exp, n_tok = GetParam().n_tokens;
  const size_t sz = static_cast<size_t>(n_tok * n);
  std::vector<float> g = random_activations(static_cast<int64_t>(sz), 10);
  for (float& v : g) v *= 6.0f;  // out to where silu saturates (and exp(-g) overflows f32 at the outliers)
  Buf gb = tw.buf(sz, g), u = tw.buf(sz, random_activations(static_cast<int64_t>(sz), 11));
  BatchData bd;
  bd.add(kNoBlocks, 0, static_cast<int>(n_tok));
  tw.run(bd.get(), [&](Stream& s, int side) { s.swiglu(gb[side], u[side], n); });
  check("swiglu", std::to_string(n_tok) + " rows of " + std::to_string(n), "f32", gb.f(kCpu), gb.f(kRef), sz, kRowOpBudget);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Swiglu, kEltCases, elt_name);

// ===== route =====
// Router logits with distinct values (a shuffled ladder of step `step` plus jitter below it), so the
// top-k is the same for any correct softmax; step 0: only a few distinct values, so exact ties,
// which both backends break towards the lower expert id.
std::vector<float> router_logits(int64_t n_tok, int64_t n_expert, float step, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> r(static_cast<size_t>(n_tok * n_expert));
  std::vector<int> ladder(static_cast<size_t>(n_expert));
  std::uniform_real_distribution<float> jitter(0.0f, 0.3f);
  for (int64_t t = 0; t < n_tok; ++t) {
    std::iota(ladder.begin(), ladder.end(), 0);
    std::shuffle(ladder.begin(), ladder.end(), rng);
    for (int64_t e = 0; e < n_expert; ++e)
      r[t * n_expert + e] = step > 0 ? (static_cast<float>(ladder[e]) + jitter(rng)) * step - 3.0f
                                     : static_cast<float>(ladder[e] % 4) * 0.5f;
  }
  return r;
}

struct RouteCase {
  bool real;
  int n_tokens;
  float step;
};
void PrintTo(const RouteCase& p, std::ostream* os) {
  *os << (p.real ? "real " : "small ") << p.n_tokens << " tok, step " << p.step;
}
class Route : public OpTest<RouteCase> {};
TEST_P(Route, IdsExactWeightsClose) {
  const RouteCase p = GetParam();
  Twin tw(p.real ? real_config() : small_config());
  const ModelConfig& c = tw.cfg();
  const int64_t X = c.n_expert, K = c.n_expert_used;
  const std::vector<float> r = router_logits(p.n_tokens, X, p.step, 12);
  Buf logits = tw.buf(r.size(), r), ids = tw.buf(static_cast<size_t>(p.n_tokens * K)), w = tw.buf(static_cast<size_t>(p.n_tokens * K));
  BatchData bd;
  bd.add(kNoBlocks, 0, p.n_tokens);
  tw.run(bd.get(), [&](Stream& s, int side) { s.route(logits[side], ids[side], w[side]); });
  const std::string shape = std::to_string(K) + " of " + std::to_string(X) + ", " + std::to_string(p.n_tokens) + " tok" +
                            (p.step > 0 ? "" : " ties");
  for (int64_t i = 0; i < p.n_tokens * K; ++i)
    ASSERT_EQ(ids.i(kCpu)[i], ids.i(kRef)[i]) << "route " << shape << ": token " << i / K << " slot " << i % K;
  check("route", shape, "f32", w.f(kCpu), w.f(kRef), w.n, kRowOpBudget);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Route,
                         ::testing::Values(RouteCase{false, 1, 0.4f}, RouteCase{false, 5, 0.4f}, RouteCase{false, 3, 0.0f},
                                           RouteCase{true, 3, 0.05f}, RouteCase{true, 33, 0.05f}, RouteCase{true, 2, 0.0f}),
                         [](const auto& i) {
                           return std::string(i.param.real ? "real" : "small") + "_" + std::to_string(i.param.n_tokens) +
                                  "tok" + (i.param.step > 0 ? "" : "_ties");
                         });

// ===== decode sequences =====
// A decode token's op sequences that the vulkan stream fuses: rmsnorm then the q/k/v matmuls of its
// output (gemv_qkv: one dispatch, v possibly of another type, as in Q4_K_M files; gemv_norm without a
// variant), a matmul then the residual add of its output (gemv_add), and after another norm an f32
// router and the route of its logits (gemv_norm_route); every output (the normed row too) against ref.
struct DecodeCase {
  GgmlType qk, v;
};
void PrintTo(const DecodeCase& p, std::ostream* os) { *os << type_name(p.qk) << "/" << type_name(p.v); }
class DecodeSequence : public OpTest<DecodeCase> {};
void decode_case(const DecodeCase& p) {
  const GgmlType t = p.qk, tv = p.v;
  const std::string tn(type_name(t)), tvn(type_name(tv));
  uint64_t seed = 90;
  Twin tw(real_config());
  const ModelConfig& c = tw.cfg();
  const int64_t E = c.n_embd, Q = c.n_head * c.head_dim, KV = c.n_head_kv * c.head_dim, X = c.n_expert, K = c.n_expert_used;
  Weight& wq = tw.weight(t, E, Q, 1, seed++);
  Weight& wk = tw.weight(t, E, KV, 1, seed++);
  Weight& wv = tw.weight(tv, E, KV, 1, seed++);
  Weight& wo = tw.weight(t, Q, E, 1, seed++);
  Weight& wr = tw.weight(GgmlType::F32, E, X, 1, seed++);
  std::vector<float> nw = random_activations(E, seed++);
  for (float& v : nw) v += 1.0f;
  Vector n[2] = {tw.backend(kCpu).upload_vector(nw.data(), E), tw.backend(kRef).upload_vector(nw.data(), E)};
  Buf x = tw.buf(static_cast<size_t>(E), random_activations(E, seed++)), h = tw.buf(static_cast<size_t>(E));
  Buf q = tw.buf(static_cast<size_t>(Q)), k = tw.buf(static_cast<size_t>(KV)), v = tw.buf(static_cast<size_t>(KV));
  Buf a = tw.buf(static_cast<size_t>(Q), random_activations(Q, seed++)), r = tw.buf(static_cast<size_t>(X));
  Buf ids = tw.buf(static_cast<size_t>(K)), w = tw.buf(static_cast<size_t>(K));
  BatchData one;
  one.add(kNoBlocks, 7, 1);
  // first without the route (the cpu backend's route turns the logits into p in place), then with it,
  // twice (vulkan: the count of finished workgroups starts from 0 again)
  const auto step = [&](bool route) {
    tw.run(one.get(), [&](Stream& s, int side) {
      s.rmsnorm(x[side], h[side], n[side], 1);
      const MatmulCall qkv[] = {{&wq.m[side], &h[side], &q[side], -1}, {&wk.m[side], &h[side], &k[side], -1},
                                {&wv.m[side], &h[side], &v[side], -1}};
      s.matmul(qkv);
      s.matmul(MatmulCall{&wo.m[side], &a[side], &h[side], -1});  // h = Wo a, x += h
      s.add(x[side], h[side], E);
      s.rmsnorm(x[side], h[side], n[side], 1);  // h = norm(x), r = Wr h (f32), route(r)
      s.matmul(MatmulCall{&wr.m[side], &h[side], &r[side], -1});
      if (route) s.route(r[side], ids[side], w[side]);
    });
  };
  step(false);
  const double nb = kRowOpBudget, mb = matmul_budget(t), mbv = std::max(mb, matmul_budget(tv));
  const std::string types = tn + (tv == t ? "" : "/" + tvn);
  check("decode seq", "norm+q " + dims({E, Q}), types, q.f(kCpu), q.f(kRef), q.n, mb);
  check("decode seq", "norm+k " + dims({E, KV}), types, k.f(kCpu), k.f(kRef), k.n, mb);
  check("decode seq", "norm+v " + dims({E, KV}), types, v.f(kCpu), v.f(kRef), v.n, mbv);
  check("decode seq", "o+add " + dims({Q, E}), types, x.f(kCpu), x.f(kRef), x.n, mb);
  check("decode seq", "norm (2nd)", "f32", h.f(kCpu), h.f(kRef), h.n, std::max(nb, mb));
  check("decode seq", "norm+router " + dims({E, X}), "f32", r.f(kCpu), r.f(kRef), r.n, std::max(mb, matmul_budget(GgmlType::F32)));
  step(true);
  step(true);
  // the experts: ref's ranking of ref's logits, where the k-th and the next are apart by more than the
  // logits' own error (a near tie may fall either way on correct backends)
  std::vector<float> sorted(r.f(kRef), r.f(kRef) + X);  // ref's route leaves the logits as they are
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  ASSERT_GT(sorted[static_cast<size_t>(K - 1)] - sorted[static_cast<size_t>(K)], 1e-4f) << "seed gives a near tie: change it";
  for (int64_t j = 0; j < K; ++j) ASSERT_EQ(ids.i(kCpu)[j], ids.i(kRef)[j]) << "route after the router: slot " << j;
  check("decode seq", "route " + std::to_string(K) + " of " + std::to_string(X), "f32", w.f(kCpu), w.f(kRef), w.n, nb);
}
TEST_P(DecodeSequence, MatchesRef) { decode_case(GetParam()); }
// vulkan: the gemv and moe shaders' shared-memory reductions, which devices without subgroup arithmetic
// take (lavapipe has it, so they would go untested); the streams made while it lives take them.
struct NoSubgroups {
  NoSubgroups() { setenv("TESSERA_VULKAN_NO_SUBGROUPS", "1", 1); }
  ~NoSubgroups() { unsetenv("TESSERA_VULKAN_NO_SUBGROUPS"); }
};
TEST_P(DecodeSequence, SharedMemoryReductions) {
  if (kUnderTest != "vulkan") GTEST_SKIP() << kUnderTest << ": no subgroup variants (a vulkan switch)";
  NoSubgroups no;
  decode_case(GetParam());
}
const DecodeCase kDecodeCases[] = {{GgmlType::Q4_K, GgmlType::Q4_K}, {GgmlType::Q6_K, GgmlType::Q6_K},
                                   {GgmlType::IQ4_NL, GgmlType::IQ4_NL}, {GgmlType::Q8_0, GgmlType::Q8_0},
                                   {GgmlType::Q5_0, GgmlType::Q5_0}, {GgmlType::F16, GgmlType::F16},
                                   {GgmlType::BF16, GgmlType::BF16}, {GgmlType::Q4_K, GgmlType::Q6_K},
                                   {GgmlType::Q5_K, GgmlType::Q4_K}, {GgmlType::Q4_0, GgmlType::Q8_0},
                                   {GgmlType::IQ4_NL, GgmlType::Q5_K}};  // the last: no variant, three dispatches
INSTANTIATE_TEST_SUITE_P(BackendOps, DecodeSequence, ::testing::ValuesIn(kDecodeCases),
                         [](const auto& i) {
                           const std::string a(type_name(i.param.qk));
                           const std::string b(type_name(i.param.v));
                           return a == b ? a : a + "_v_" + b;
                         });

// ===== moe =====
// x += experts(h) with gate, up and down of types tg, tu, td (ids and weights from ref's route).
// The WMMA path's MoE in float64 from its own inputs: h and silu(g) u rounded to f16, the experts' rows
// dequantized (one expert at a time, for the pairs that picked it); x starts at zero.
std::vector<float> moe_f16_inputs(const Weight& gate, const Weight& up, const Weight& down, const float* h, const int32_t* ids,
                                  const float* wt, int64_t n_tok, int64_t E, int64_t F, int64_t K, int64_t X) {
  auto f16 = [](double v) { return static_cast<double>(fp16_to_fp32(fp32_to_fp16(static_cast<float>(v)))); };
  auto rows = [](const Weight& w, int64_t first, int64_t n, int64_t n_in) {
    std::vector<float> r(static_cast<size_t>(n * n_in));
    for (int64_t i = 0; i < n; ++i)
      dequantize_row(w.info.type, w.bytes.data() + static_cast<size_t>(first + i) * w.info.row_bytes(), r.data() + i * n_in, n_in);
    return r;
  };
  auto dot = [](const float* w, const std::vector<double>& x) {
    double acc = 0.0;
    for (size_t k = 0; k < x.size(); ++k) acc += w[k] * x[k];
    return acc;
  };
  std::vector<float> out(static_cast<size_t>(n_tok * E), 0.0f);
  std::vector<double> hx(static_cast<size_t>(E)), a(static_cast<size_t>(F));
  for (int64_t e = 0; e < X; ++e) {
    std::vector<float> g, u, d;
    for (int64_t z = 0; z < n_tok * K; ++z) {
      if (ids[z] != e) continue;
      if (g.empty()) g = rows(gate, e * F, F, E), u = rows(up, e * F, F, E), d = rows(down, e * E, E, F);
      const int64_t t = z / K;
      for (int64_t i = 0; i < E; ++i) hx[static_cast<size_t>(i)] = f16(h[t * E + i]);
      for (int64_t f = 0; f < F; ++f) {
        const double gv = dot(g.data() + f * E, hx), uv = dot(u.data() + f * E, hx);
        a[static_cast<size_t>(f)] = f16(gv / (1.0 + std::exp(-gv)) * uv);
      }
      for (int64_t i = 0; i < E; ++i) out[static_cast<size_t>(t * E + i)] += static_cast<float>(wt[z] * dot(d.data() + i * F, a));
    }
  }
  return out;
}

// small_toks: the token counts of the small shapes; real: the real shapes too (1 and 3 tokens).
// wmma: hip-emu's expert-grouped WMMA path forced (real shapes with 3 and 20 tokens: tiles of several tokens).
void moe_case(GgmlType tg, GgmlType tu, GgmlType td, uint64_t seed, const std::vector<int>& small_toks = {1, 5},
              bool with_real = true, const std::string& op = "moe", bool wmma = false) {
  const std::string types = tg == tu && tu == td ? std::string(type_name(tg))
                                                 : std::string(type_name(tg)) + "/" + std::string(type_name(tu)) + "/" + std::string(type_name(td));
  const bool k_quant = block_of(tg) == 256 || block_of(tu) == 256 || block_of(td) == 256;
  for (bool real : {false, true}) {
    if (real && !with_real) continue;
    ModelConfig cfg = real ? real_config() : small_config();
    if (!real && k_quant) {  // K-quants: rows of whole super-blocks
      cfg.n_embd = 256;
      cfg.n_ff_exp = 512;
    }
    // real: 16 experts in the stack (not 128: the random stacks stay ~100 MB), 8 used of them, so the
    // tokens of a batch share experts
    if (real) cfg.n_expert = 16;
    std::optional<ForceWmma> force;
    if (wmma) force.emplace();
    Twin tw(cfg);
    force.reset();
    const ModelConfig& c = tw.cfg();
    const int64_t E = c.n_embd, F = c.n_ff_exp, X = c.n_expert, K = c.n_expert_used;
    Weight& gate = tw.weight(tg, E, F, X, seed++);
    Weight& up = tw.weight(tu, E, F, X, seed++);
    Weight& down = tw.weight(td, F, E, X, seed++);
    for (int n_tok : real ? (wmma ? std::vector<int>{3, 20} : std::vector<int>{1, 3}) : small_toks) {
      BatchData bd;
      bd.add(kNoBlocks, 2, n_tok);
      // ids and weights: ref's route of random logits, for both (small: 5 tokens x 3 of 8 leaves some
      // experts unused and others shared)
      const std::vector<float> r = router_logits(n_tok, X, 0.3f, seed++);
      Buf logits = tw.buf(r.size(), r), ids = tw.buf(static_cast<size_t>(n_tok * K)), w = tw.buf(static_cast<size_t>(n_tok * K));
      tw.run(bd.get(), [&](Stream& s, int side) {
        if (side == kRef) s.route(logits[side], ids[side], w[side]);
      });
      std::memcpy(ids.i(kCpu), ids.i(kRef), static_cast<size_t>(n_tok * K) * sizeof(int32_t));
      std::memcpy(w.f(kCpu), w.f(kRef), static_cast<size_t>(n_tok * K) * sizeof(float));
      // wmma with Q6_K: h at 1/8 scale: the random Q6_K stacks (weights up to +-8, ~100x a real model's)
      // push silu(g) u past f16's range (65504), which the f16 path clamps
      std::vector<float> hv = random_activations(n_tok * E, seed++);
      if (wmma && (tg == GgmlType::Q6_K || tu == GgmlType::Q6_K || td == GgmlType::Q6_K))
        for (float& v : hv) v *= 0.125f;
      Buf h = tw.buf(hv.size(), hv);
      // wmma: x starts at zero, so the NMSE is the experts' sum's own (not diluted by the residual)
      Buf x = tw.buf(static_cast<size_t>(n_tok * E), wmma ? std::vector<float>(static_cast<size_t>(n_tok * E), 0.0f)
                                                          : random_activations(n_tok * E, seed++));
      tw.run(bd.get(), [&](Stream& s, int side) {
        s.moe(gate.m[side], up.m[side], down.m[side], h[side], ids[side], w[side], x[side]);
      });
      const double budget = wmma ? moe_wmma_budget(k_quant) : std::max({moe_budget(tg), moe_budget(tu), moe_budget(td)});
      if (wmma) {
        const std::vector<float> want = moe_f16_inputs(gate, up, down, h.f(kCpu), ids.i(kCpu), w.f(kCpu), n_tok, E, F, K, X);
        check("moe wmma vs f16 inputs", std::to_string(K) + " of " + std::to_string(X) + " " + dims({E, F}) + " " + std::to_string(n_tok) + " tok",
              types, x.f(kCpu), want.data(), want.size(), kMoeWmmaF16Budget);
      }
      check(op, std::to_string(K) + " of " + std::to_string(X) + " " + dims({E, F}) + " " + std::to_string(n_tok) + " tok",
            types, x.f(kCpu), x.f(kRef), x.n, budget);
    }
  }
}

class Moe : public OpTest<GgmlType> {};
TEST_P(Moe, MatchesRefWithRefRouting) { moe_case(GetParam(), GetParam(), GetParam(), 50); }
// F32 experts are not a thing in MoE GGUFs (F32 is the router's type, covered by Matmul)
INSTANTIATE_TEST_SUITE_P(BackendOps, Moe,
                         ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::Q8_0,
                                           GgmlType::Q5_0, GgmlType::F16, GgmlType::Q5_K, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_1, GgmlType::BF16),
                         [](const auto& i) { return std::string(type_name(i.param)); });

// The expert-grouped WMMA path (hip-emu; forced from 1 token): pairs sorted by expert on the device,
// gate / up / down as grouped 64-token tiles. Other backends: skipped by name.
class MoeWmma : public OpTest<GgmlType> {};
TEST_P(MoeWmma, MatchesRefWithRefRouting) {
  if (kUnderTest != "hip-emu") GTEST_SKIP() << kUnderTest << ": no gfx12 WMMA path (hip-emu only)";
  moe_case(GetParam(), GetParam(), GetParam(), 150, {1, 5, 17}, true, "moe wmma", true);
}
INSTANTIATE_TEST_SUITE_P(BackendOps, MoeWmma,
                         ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::Q8_0, GgmlType::Q5_0,
                                           GgmlType::Q5_K, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_1),
                         [](const auto& i) { return std::string(type_name(i.param)); });

// The Vulkan batch MoE on tiles grouped by expert, each path forced (as MatmulPath): 3 of 8 experts
// for 2, 37 and 67 tokens (up to ~40 pairs an expert: more than one tile of 32), every expert type.
class MoePath : public OpTest<PathCase> {};
TEST_P(MoePath, MatchesRefWithRefRouting) {
  const PathCase p = GetParam();
  if (kUnderTest != "vulkan") GTEST_SKIP() << "the batch matmul paths are the vulkan backend's (" << kUnderTest << " has one)";
  if (vulkan_lacks(p.type)) GTEST_SKIP() << kUnderTest << ": no matmul shader for " << type_name(p.type) << " yet";
  const PathEnv env(p.path);
  try {
    moe_case(p.type, p.type, p.type, 90, {2, 37, 67}, false, std::string("moe ") + p.path);
  } catch (const std::exception& e) {
    if (std::string(p.path) == "coopmat" && std::string(e.what()).find("no usable cooperative matrix") != std::string::npos)
      GTEST_SKIP() << e.what();
    throw;
  }
}
std::vector<PathCase> moe_path_cases() {
  std::vector<PathCase> v;
  for (const char* path : {"coopmat", "tiled"})
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::F16,
                       GgmlType::Q5_K, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_1, GgmlType::BF16})
      v.push_back({path, t});
  return v;
}
INSTANTIATE_TEST_SUITE_P(BackendOps, MoePath, ::testing::ValuesIn(moe_path_cases()),
                         [](const auto& i) { return std::string(i.param.path) + "_" + std::string(type_name(i.param.type)); });

// The stacks of one layer in different types, as Q4_K_M / IQ4_NL files mix them (down in Q6_K, Q8_0
// or Q5_0); gate and up of different types too (vulkan: apart, not in its fused gate+up shader).
class MoeMixed : public OpFixture {};
TEST_F(MoeMixed, MatchesRefWithRefRouting) {
  const GgmlType cases[][3] = {{GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K},
                               {GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q5_0},
                               {GgmlType::IQ4_NL, GgmlType::IQ4_NL, GgmlType::Q8_0},
                               {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_K}};
  uint64_t seed = 70;
  for (const auto& t : cases) moe_case(t[0], t[1], t[2], seed += 10);
}
TEST_F(MoeMixed, SharedMemoryReductions) {
  if (kUnderTest != "vulkan") GTEST_SKIP() << kUnderTest << ": no subgroup variants (a vulkan switch)";
  NoSubgroups no;
  moe_case(GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K, 80);
  moe_case(GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0, 90);
}

// ===== gather_out_rows =====
class GatherOutRows : public OpFixture {};
TEST_F(GatherOutRows, Exact) {
  for (bool real : {false, true}) {
    Twin tw(real ? real_config() : small_config());
    const int64_t E = tw.cfg().n_embd;
    for (const std::vector<int32_t>& rows : {std::vector<int32_t>{4}, std::vector<int32_t>{2, 0, 4}, std::vector<int32_t>{}}) {
      BatchData bd;
      bd.add(kNoBlocks, 0, 5);
      bd.out_rows = rows;
      Buf x = tw.buf(static_cast<size_t>(5 * E), random_activations(5 * E, 13));
      Buf out = tw.buf(static_cast<size_t>(3 * E));
      tw.run(bd.get(), [&](Stream& s, int side) { s.gather_out_rows(x[side], out[side]); });
      for (size_t i = 0; i < rows.size(); ++i)
        for (int s : {kCpu, kRef})
          ASSERT_EQ(std::memcmp(out.f(s) + i * E, x.f(s) + rows[i] * E, static_cast<size_t>(E) * sizeof(float)), 0)
              << "gather_out_rows: output " << i << " on " << (s == kCpu ? "cpu" : "ref");
      check("gather_out_rows", std::to_string(rows.size()) + " of 5 rows of " + std::to_string(E), "f32", out.f(kCpu),
            out.f(kRef), out.n, kExactBudget);
    }
  }
}

// ===== logits =====
class Logits : public OpTest<GgmlType> {};
TEST_P(Logits, MatchesRef) {
  const GgmlType t = GetParam();
  Twin tw(real_config());
  const ModelConfig& c = tw.cfg();
  Weight& w = tw.weight(t, c.n_embd, c.n_vocab, 1, 31);
  std::vector<float> bias = random_activations(c.n_vocab, 32);
  Vector bv[2] = {tw.backend(kCpu).upload_vector(bias.data(), c.n_vocab), tw.backend(kRef).upload_vector(bias.data(), c.n_vocab)};
  for (const std::vector<int32_t>& rows : {std::vector<int32_t>{2}, std::vector<int32_t>{2, 0}}) {
    for (bool with_bias : {false, true}) {
      BatchData bd;
      bd.add(kNoBlocks, 10, 3);
      bd.out_rows = rows;
      const int64_t n_out = static_cast<int64_t>(rows.size());
      // h: the gathered rows, as gather_out_rows leaves them
      Buf h = tw.buf(static_cast<size_t>(n_out * c.n_embd), random_activations(n_out * c.n_embd, 33));
      std::vector<float> host[2];
      for (auto& v : host) v.assign(static_cast<size_t>(n_out * c.n_vocab), NAN);
      tw.run(bd.get(), [&](Stream& s, int side) { s.logits(w.m[side], with_bias ? bv[side] : Vector{}, h[side], host[side].data()); });
      check("logits", dims({c.n_embd, c.n_vocab}) + " " + std::to_string(n_out) + " out" + (with_bias ? " +bias" : ""),
            std::string(type_name(t)), host[kCpu].data(), host[kRef].data(), host[kCpu].size(), matmul_budget(t));
    }
  }
}
INSTANTIATE_TEST_SUITE_P(BackendOps, Logits, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& i) { return std::string(type_name(i.param)); });

// ===== the interface is covered =====
// Every Stream method (the list at the top of this file) has its suite here, with at least one test.
TEST(BackendOps, CoversEveryStreamMethod) {
  const std::map<std::string, std::vector<std::string>> covered = {
      {"begin", {"Rope"}},           {"embed", {"Embed"}},         {"rmsnorm", {"Rmsnorm"}},
      {"rope", {"Rope"}},            {"kv_store", {"KvAttention"}}, {"attention", {"KvAttention"}},
      {"matmul", {"Matmul"}},        {"add_bias", {"AddBias"}},    {"add", {"Add"}},
      {"swiglu", {"Swiglu"}},        {"route", {"Route"}},         {"moe", {"Moe"}},
      {"gather_out_rows", {"GatherOutRows"}}, {"logits", {"Logits"}}, {"sync", {"Rope", "Matmul"}}};
  EXPECT_EQ(covered.size(), 15u) << "Stream has 15 methods (matmul's single-call overload forwards to the span one)";
  std::map<std::string, int> tests_of;
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < u.total_test_suite_count(); ++i) {
    std::string name = u.GetTestSuite(i)->name();
    name = name.substr(name.find('/') + 1);  // "BackendOps/Matmul" -> "Matmul"
    tests_of[name] += u.GetTestSuite(i)->total_test_count();
  }
  for (const auto& [method, suites] : covered)
    for (const std::string& s : suites) EXPECT_GT(tests_of[s], 0) << "Stream::" << method << ": no tests in suite " << s;
}

// After all tests: the NMSE table of this run (ctest runs one test per process).
class ReportTable : public ::testing::Environment {
 public:
  void TearDown() override {
    if (report().empty()) return;
    std::printf("\n| op | shape | type | NMSE %s vs ref | budget |\n|---|---|---|---|---|\n", kUnderTest.c_str());
    for (const Row& r : report())
      std::printf("| %s | %s | %s | %.2e | %.0e |\n", r.op.c_str(), r.shape.c_str(), r.type.c_str(), r.nmse, r.budget);
  }
};
const auto* const kReport = ::testing::AddGlobalTestEnvironment(new ReportTable);

}  // namespace
}  // namespace tessera::engine
