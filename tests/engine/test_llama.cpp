// The `llama` architecture on synthetic files (issue 15): the golden dense qwen3 fixture rewritten as a
// llama model (keys renamed, QK-norm dropped; optional rope_freqs.weight and linear rope scaling). Checks
// what is read at load, what is refused rather than ignored, and that the cpu and ref backends agree on
// the whole forward pass with NORM RoPE, frequency factors and scaling — which the real SmolLM2 file (no
// rope_freqs, no scaling; tests golden_logits and real_model_fidelity) does not exercise.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
#include "engine/model/model.h"
#include "gguf/gguf.h"

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

const fs::path kFixture = fs::path(TESSERA_GOLDEN_DIR) / "models" / "tiny-qwen3-q8_0.gguf";
constexpr int64_t kHalf = 32;  // head_dim 64 / 2

struct LlamaFile {
  std::optional<std::vector<float>> rope_freqs;     // rope_freqs.weight values
  std::optional<float> scaling_factor;              // llama.rope.scaling.factor
  std::optional<std::string> scaling_type;          // llama.rope.scaling.type
  std::vector<std::pair<std::string, gguf::MetaValue>> extra_keys;
  std::vector<std::string> extra_f32_tensors;       // added as F32 [256] (zeros), e.g. a bias
  bool tie_output = false;                          // drop output.weight
};

// Writes the fixture as a llama file; returns its path (removed by the caller).
fs::path write_llama(const LlamaFile& spec) {
  const gguf::File src = gguf::File::open(kFixture.string());
  gguf::Writer w;
  for (const auto& [key, value] : src.metadata()) {
    if (key == "general.alignment") continue;
    if (key == "general.architecture") {
      w.set_string(key, "llama");
    } else if (key.rfind("qwen3.", 0) == 0) {
      w.set("llama." + key.substr(6), value);
    } else {
      w.set(key, value);
    }
  }
  if (spec.scaling_factor) w.set_f32("llama.rope.scaling.factor", *spec.scaling_factor);
  if (spec.scaling_type) w.set_string("llama.rope.scaling.type", *spec.scaling_type);
  for (const auto& [k, v] : spec.extra_keys) w.set(k, v);
  for (const gguf::TensorInfo& t : src.tensors()) {
    if (t.name.find("attn_q_norm") != std::string::npos || t.name.find("attn_k_norm") != std::string::npos) continue;
    if (spec.tie_output && t.name == "output.weight") continue;
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                 std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  auto f32_tensor = [&](const std::string& name, const std::vector<float>& v) {
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    w.add_tensor(name, GgmlType::F32, {static_cast<int64_t>(v.size())}, std::move(bytes));
  };
  if (spec.rope_freqs) f32_tensor("rope_freqs.weight", *spec.rope_freqs);
  for (const std::string& name : spec.extra_f32_tensors) f32_tensor(name, std::vector<float>(256, 0.0f));
  static int serial = 0;
  const fs::path out = fs::temp_directory_path() /
                       ("tessera-llama-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + ".gguf");
  w.write(out.string());
  return out;
}

std::shared_ptr<Model> load(const fs::path& p, const std::string& backend = "cpu") {
  LoadOptions lo;
  lo.print_plan = false;
  lo.backend = backend;
  return Model::load(p.string(), lo);
}

// Llama-3.1-like factors: high frequencies kept, low ones slowed down up to 8x.
std::vector<float> llama31_factors() {
  std::vector<float> f(kHalf);
  for (int64_t i = 0; i < kHalf; ++i) f[i] = i < kHalf / 2 ? 1.0f : 1.0f + 7.0f * static_cast<float>(i - kHalf / 2) / (kHalf / 2);
  return f;
}

// Every row of logits of a 40-token prompt evaluated as one batch, then 4 tokens one at a time.
std::vector<float> run(const std::shared_ptr<Model>& m) {
  ContextOptions co;
  co.n_ctx = 128;
  co.n_threads = 2;
  co.print_plan = false;
  Context ctx(m, co);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(static_cast<int32_t>((i * 97 + 13) % 4000));
  const auto first = ctx.eval(prompt, true);
  std::vector<float> out(first.begin(), first.end());
  for (int32_t id : {5, 77, 1234, 3999}) {
    const auto r = ctx.eval(std::span<const int32_t>(&id, 1));
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

double nmse(const std::vector<float>& ref, const std::vector<float>& got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return num / den;
}

void expect_refused(const LlamaFile& spec, const std::vector<std::string>& want) {
  const fs::path p = write_llama(spec);
  try {
    load(p);
    ADD_FAILURE() << "loaded; expected an error naming " << want[0];
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const std::string& w : want) EXPECT_NE(what.find(w), std::string::npos) << "'" << w << "' in: " << what;
  }
  fs::remove(p);
}

TEST(Llama, ReadsRopeTypeFactorsScaleAndTiedOutput) {
  LlamaFile spec;
  spec.rope_freqs = llama31_factors();
  spec.scaling_factor = 4.0f;
  spec.tie_output = true;
  const fs::path p = write_llama(spec);
  const auto m = load(p);
  fs::remove(p);
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.rope_type, ops::RopeType::Norm);
  EXPECT_DOUBLE_EQ(c.rope_freq_scale, 0.25);
  EXPECT_EQ(c.rope_freq_factors, *spec.rope_freqs);
  EXPECT_TRUE(m->weights().tied_output);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_head_kv, 2);

  // Without the tensor and the key: no factors, scale 1; qwen stays NEOX.
  const fs::path plain = write_llama({});
  const auto m2 = load(plain);
  fs::remove(plain);
  EXPECT_TRUE(m2->config().rope_freq_factors.empty());
  EXPECT_DOUBLE_EQ(m2->config().rope_freq_scale, 1.0);
  EXPECT_FALSE(m2->weights().tied_output);
  LoadOptions lo;
  lo.print_plan = false;
  EXPECT_EQ(Model::load(kFixture.string(), lo)->config().rope_type, ops::RopeType::Neox);
}

TEST(Llama, RefusesWhatItWouldIgnore) {
  auto with = [](const std::function<void(LlamaFile&)>& set) {
    LlamaFile f;
    set(f);
    return f;
  };
  expect_refused(with([](LlamaFile& f) { f.scaling_type = "yarn"; }), {"llama.rope.scaling.type", "yarn"});
  expect_refused(with([](LlamaFile& f) { f.extra_keys = {{"llama.rope.dimension_count", {gguf::ValueType::U32, int64_t{32}}}}; }),
                 {"llama.rope.dimension_count", "32"});
  expect_refused(with([](LlamaFile& f) { f.extra_keys = {{"llama.attention.scale", {gguf::ValueType::F32, 0.5}}}; }),
                 {"llama.attention.scale"});
  expect_refused(with([](LlamaFile& f) { f.extra_f32_tensors = {"blk.0.attn_output.bias"}; }), {"blk.0.attn_output.bias"});
  expect_refused(with([](LlamaFile& f) { f.extra_f32_tensors = {"blk.0.ffn_down.bias"}; }), {"blk.0.ffn_down.bias"});
  expect_refused(with([](LlamaFile& f) { f.rope_freqs = std::vector<float>(16, 1.0f); }),
                 {"rope_freqs.weight", "[16]", "[32]"});
  std::vector<float> bad = llama31_factors();
  bad[3] = 0.0f;
  expect_refused(with([&](LlamaFile& f) { f.rope_freqs = bad; }), {"rope_freqs.weight[3]"});
}

// The whole forward on both backends with NORM RoPE, factors and a linear scale: cpu within activation
// quantization noise of ref (measured 6e-5 here, as on the golden tiny models), and the factors and the
// scale each change the result by far more than that. Rope base 100 (instead of the fixture's 1e6) so
// that every frequency turns a lot within the 44 positions and the factors matter.
TEST(Llama, CpuMatchesRefWithRopeFreqsAndScaling) {
  LlamaFile spec;
  spec.rope_freqs = std::vector<float>(kHalf);  // 1 .. 4 over the pairs
  for (int64_t i = 0; i < kHalf; ++i) (*spec.rope_freqs)[i] = 1.0f + 3.0f * static_cast<float>(i) / kHalf;
  spec.scaling_factor = 2.0f;
  spec.extra_keys = {{"llama.rope.freq_base", {gguf::ValueType::F32, 100.0}}};
  const fs::path p = write_llama(spec);
  const std::vector<float> cpu = run(load(p, "cpu")), ref = run(load(p, "ref"));
  fs::remove(p);
  const double e = nmse(ref, cpu);
  std::printf("llama (rope_freqs, linear x2): cpu vs ref NMSE %.2e over %zu logits\n", e, ref.size());
  EXPECT_LE(e, 1e-4);

  LlamaFile no_factors = spec, no_scale = spec;
  no_factors.rope_freqs.reset();
  no_scale.scaling_factor.reset();
  for (const LlamaFile& other : {no_factors, no_scale}) {
    const fs::path q = write_llama(other);
    const std::vector<float> a = run(load(q, "cpu")), b = run(load(q, "ref"));
    fs::remove(q);
    const double change = nmse(ref, b);
    std::printf("  without the %s: cpu vs ref %.2e, ref vs ref with them %.2e\n",
                other.rope_freqs ? "scale" : "factors", nmse(b, a), change);
    EXPECT_LE(nmse(b, a), 1e-4);
    EXPECT_GT(change, 20 * e) << "the factors / the scale change nothing";
  }
}

}  // namespace
