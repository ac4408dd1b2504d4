// Model loading refuses bad metadata before sizing anything from it: each case rewrites a golden
// model with one metadata value changed and expects a quick tessera::Error naming the file, the key
// and the value (not std::bad_alloc, not gigabytes allocated first).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
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

const fs::path kModels = fs::path(TESSERA_GOLDEN_DIR) / "models";

gguf::MetaValue u32(uint32_t v) { return {gguf::ValueType::U32, int64_t{v}}; }
gguf::MetaValue u64(uint64_t v) { return {gguf::ValueType::U64, static_cast<int64_t>(v)}; }
gguf::MetaValue f32(float v) { return {gguf::ValueType::F32, double{v}}; }

// A copy of a golden model with metadata changed: `set` replaces or adds keys (a value of nullopt
// drops the key), `tokens` (when given) keeps only that many entries of tokenizer.ggml.tokens.
struct Rewrite {
  std::string src = "tiny-q8_0.gguf";
  std::vector<std::pair<std::string, std::optional<gguf::MetaValue>>> set;
  std::optional<size_t> tokens;
  bool drop_tokenizer = false;
};

fs::path rewrite(const Rewrite& r) {
  const gguf::File src = gguf::File::open((kModels / r.src).string());
  gguf::Writer w;
  for (const auto& [key, value] : src.metadata()) {
    if (key == "general.alignment") continue;
    if (r.drop_tokenizer && key.rfind("tokenizer.", 0) == 0) continue;
    bool dropped = false;
    for (const auto& [k, v] : r.set) dropped |= k == key && !v;
    if (dropped) continue;
    if (key == "tokenizer.ggml.tokens" && r.tokens) {
      gguf::MetaValue cut = value;
      auto& strings = std::get<gguf::MetaArray>(cut.value).strings;
      strings.resize(*r.tokens);
      w.set(key, cut);
      continue;
    }
    w.set(key, value);
  }
  for (const auto& [k, v] : r.set)
    if (v) w.set(k, *v);
  for (const gguf::TensorInfo& t : src.tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                 std::vector<uint8_t>(t.data, t.data + t.nbytes));
  static int serial = 0;
  const std::string name = "tessera-load-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + ".gguf";
  const fs::path out = fs::temp_directory_path() / name;
  w.write(out.string());
  return out;
}

struct LoadOutcome {
  bool ok = false;
  std::string error;       // tessera::Error message
  std::string other;       // any other exception (std::bad_alloc, ...)
  double seconds = 0;
};

LoadOutcome try_load(const fs::path& p) {
  LoadOutcome o;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    LoadOptions lo;
    lo.print_plan = false;
    Model::load(p.string(), lo);
    o.ok = true;
  } catch (const tessera::Error& e) {
    o.error = e.what();
  } catch (const std::exception& e) {
    o.other = e.what();
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

// Loads the rewritten model and expects an error that names the file and every piece in `want`.
void expect_refused(const Rewrite& r, std::vector<std::string> want) {
  const fs::path p = rewrite(r);
  const LoadOutcome o = try_load(p);
  fs::remove(p);
  ASSERT_FALSE(o.ok) << "loaded; expected an error naming " << want[0];
  ASSERT_TRUE(o.other.empty()) << "not a tessera::Error: " << o.other;
  EXPECT_LT(o.seconds, 2.0) << o.error;
  EXPECT_NE(o.error.find(p.filename().string()), std::string::npos) << o.error;
  for (const std::string& w : want) EXPECT_NE(o.error.find(w), std::string::npos) << "'" << w << "' in: " << o.error;
}

// One key of a golden model changed (nullopt: dropped).
void expect_refused(const std::string& key, std::optional<gguf::MetaValue> value, std::vector<std::string> want,
                    const std::string& src = "tiny-q8_0.gguf") {
  Rewrite r;
  r.src = src;
  r.set.emplace_back(key, std::move(value));
  expect_refused(r, std::move(want));
}

TEST(ModelLoadLimits, HugeBlockCountIsRefusedQuickly) {
  // Used to resize the layer table first: 5 GB and 10 s before the error.
  expect_refused("qwen3moe.block_count", u32(10'000'000), {"qwen3moe.block_count", "10000000"});
}

TEST(ModelLoadLimits, MaxIntBlockCountIsNotBadAlloc) {
  expect_refused("qwen3moe.block_count", u32(0x7fffffff), {"qwen3moe.block_count", "2147483647"});
  // a u64 above INT64_MAX (refused by the metadata reader itself)
  expect_refused("qwen3moe.block_count", u64(~0ull), {"qwen3moe.block_count", "18446744073709551615"});
}

TEST(ModelLoadLimits, BlockCountMustMatchTheLayerTensors) {
  // Within the bound but more layers than the file has: named by the key, before any layer is bound.
  expect_refused("qwen3moe.block_count", u32(4000), {"qwen3moe.block_count", "4000", "blk.3999.attn_norm.weight"});
  expect_refused("qwen3moe.block_count", u32(1), {"qwen3moe.block_count", "blk.1.attn_norm.weight"});
}

TEST(ModelLoadLimits, HeadCounts) {
  expect_refused("qwen3moe.attention.head_count", u32(1'000'000), {"qwen3moe.attention.head_count", "1000000"});
  expect_refused("qwen3moe.attention.head_count", u32(0), {"qwen3moe.attention.head_count", "= 0"});
  expect_refused("qwen3moe.attention.head_count_kv", u32(3), {"qwen3moe.attention.head_count_kv", "3"});
  expect_refused("qwen3moe.attention.head_count_kv", u32(64), {"qwen3moe.attention.head_count_kv", "64"});
}

TEST(ModelLoadLimits, HeadDim) {
  expect_refused("qwen3moe.attention.key_length", u32(0x7fffffff), {"qwen3moe.attention.key_length", "2147483647"});
  expect_refused("qwen3moe.attention.key_length", u32(0), {"qwen3moe.attention.key_length", "= 0"});
}

TEST(ModelLoadLimits, EmbeddingLength) {
  expect_refused("qwen3moe.embedding_length", u64(uint64_t{1} << 40), {"qwen3moe.embedding_length", "1099511627776"});
}

TEST(ModelLoadLimits, ExpertCounts) {
  expect_refused("qwen3moe.expert_count", u32(1'000'000), {"qwen3moe.expert_count", "1000000"});
  expect_refused("qwen3moe.expert_used_count", u32(0), {"qwen3moe.expert_used_count", "= 0"});
  expect_refused("qwen3moe.expert_used_count", u32(129), {"qwen3moe.expert_used_count", "129"});
  expect_refused("qwen3moe.expert_feed_forward_length", u32(0x7fffffff),
                 {"qwen3moe.expert_feed_forward_length", "2147483647"});
}

TEST(ModelLoadLimits, FeedForwardLength) {
  expect_refused("qwen2.feed_forward_length", u32(1u << 30), {"qwen2.feed_forward_length", "1073741824"},
                 "tiny-qwen2-q8_0.gguf");
  expect_refused("qwen3.feed_forward_length", std::nullopt, {"qwen3.feed_forward_length", "= 0"},
                 "tiny-qwen3-q8_0.gguf");
}

TEST(ModelLoadLimits, ContextLength) {
  expect_refused("qwen3moe.context_length", u32(0), {"qwen3moe.context_length", "= 0"});
  expect_refused("qwen3moe.context_length", u64(uint64_t{1} << 40), {"qwen3moe.context_length", "1099511627776"});
}

TEST(ModelLoadLimits, RopeBaseAndEpsMustBePositiveAndFinite) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float v : {nan, inf, 0.0f, -1.0f}) {
    SCOPED_TRACE(v);
    expect_refused("qwen3moe.rope.freq_base", f32(v), {"qwen3moe.rope.freq_base"});
    expect_refused("qwen3moe.attention.layer_norm_rms_epsilon", f32(v),
                   {"qwen3moe.attention.layer_norm_rms_epsilon"});
  }
}

TEST(ModelLoadLimits, VocabSizeMustMatchTheEmbedding) {
  expect_refused("qwen3moe.vocab_size", u32(5000), {"qwen3moe.vocab_size", "5000", "4122"});
}

TEST(ModelLoadLimits, TokenizerSmallerThanVocabIsALoadError) {
  Rewrite r;
  r.tokens = 4000;
  expect_refused(r, {"tokenizer.ggml.tokens", "4000", "4122"});
}

TEST(ModelLoadLimits, ModelWithoutTokenizerStillLoads) {
  Rewrite r;
  r.drop_tokenizer = true;
  const fs::path p = rewrite(r);
  const LoadOutcome o = try_load(p);
  fs::remove(p);
  EXPECT_TRUE(o.ok) << o.error << o.other;
}

TEST(ModelLoadLimits, GoldenModelsStillLoad) {
  for (const char* name : {"tiny-q8_0.gguf", "tiny-qwen2-q8_0.gguf", "tiny-qwen3-q8_0.gguf", "tiny-iq4_nl.gguf"}) {
    const LoadOutcome o = try_load(kModels / name);
    EXPECT_TRUE(o.ok) << name << ": " << o.error << o.other;
  }
}

// --weights: copy and mmap give bit-identical logits (the same bytes, only where they live differs);
// auto copies on the cpu backend; an unknown value is a load error naming it.
TEST(ModelLoadWeights, CopyAndMmapGiveTheSameLogits) {
  std::vector<float> logits[2];
  for (int i = 0; i < 2; ++i) {
    LoadOptions lo;
    lo.print_plan = false;
    lo.weights = i ? "copy" : "mmap";
    const auto m = Model::load((kModels / "tiny-q4_k_m.gguf").string(), lo);
    EXPECT_EQ(m->file().residency(), i ? gguf::Residency::Copied : gguf::Residency::Mapped);
    ContextOptions co;
    co.n_ctx = 64;
    co.n_threads = 2;
    co.print_plan = false;
    Context ctx(m, co);
    std::vector<int32_t> prompt;
    for (int t = 0; t < 20; ++t) prompt.push_back(static_cast<int32_t>((t * 97 + 13) % 4000));
    const auto r = ctx.eval(prompt, true);
    logits[i].assign(r.begin(), r.end());
  }
  ASSERT_FALSE(logits[0].empty());
  EXPECT_EQ(logits[0], logits[1]);
  LoadOptions lo;
  lo.print_plan = false;
  lo.weights = "auto";
  EXPECT_EQ(Model::load((kModels / "tiny-q8_0.gguf").string(), lo)->file().residency(), gguf::Residency::Copied);
  lo.weights = "huge";
  try {
    Model::load((kModels / "tiny-q8_0.gguf").string(), lo);
    ADD_FAILURE() << "weights 'huge' accepted";
  } catch (const tessera::Error& e) {
    EXPECT_NE(std::string(e.what()).find("weights 'huge'"), std::string::npos) << e.what();
  }
}

}  // namespace
