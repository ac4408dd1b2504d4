// Context and KV cache: one batch vs token by token vs small chunks give the same logits; truncate
// and clear free blocks and re-evaluation reproduces the logits; sequences do not see each other;
// model loading reports missing / mis-shaped tensors by name and falls back to a tied output.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/context.h"
#include "core/error.h"
#include "engine/model/model.h"
#include "engine/sample/sampler.h"
#include "gguf/gguf.h"

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

const fs::path kModels = fs::path(TESSERA_GOLDEN_DIR) / "models";

std::shared_ptr<Model> load(const std::string& name) {
  LoadOptions lo;
  lo.print_plan = false;
  return Model::load((kModels / name).string(), lo);
}

ContextOptions opts(int n_batch = 512, int n_seq = 1, int n_ctx = 256) {
  ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_batch = n_batch;
  co.n_seq_max = n_seq;
  co.n_threads = 2;
  co.print_plan = false;
  return co;
}

double nmse(std::span<const float> ref, std::span<const float> got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return num / den;
}

std::vector<int32_t> prompt(int n, int seed = 1) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 733 + seed * 97 + 11) % 4000);
  return ids;
}

// Row-by-row agreement. Batched and single-token matmuls may take different kernel paths (GEMM vs
// GEMV), so rows agree to summation-order noise, not bit for bit; llama.cpp itself differs by up to
// NMSE 5e-4 between the two. A KV or position bug shows up as NMSE ~1e-1.
void expect_rows_close(std::span<const float> a, std::span<const float> b, int64_t V, double tol) {
  ASSERT_EQ(a.size(), b.size());
  size_t rows = 0, same_top = 0;
  for (size_t r = 0; r * V < a.size(); ++r, ++rows) {
    auto ra = a.subspan(r * V, V), rb = b.subspan(r * V, V);
    EXPECT_LE(nmse(ra, rb), tol) << "row " << r;
    same_top += argmax(ra) == argmax(rb);
  }
  EXPECT_GE(same_top * 10, rows * 9) << "top-1 agreement " << same_top << "/" << rows;
}

class ContextTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ContextTest, BatchMatchesTokenByToken) {
  auto model = load(GetParam());
  const int64_t V = model->config().n_vocab;
  const auto ids = prompt(45);  // crosses a KV block boundary
  Context whole(model, opts());
  std::vector<float> a;
  auto l = whole.eval(ids, true);
  a.assign(l.begin(), l.end());
  EXPECT_EQ(whole.n_past(), 45);

  Context single(model, opts());
  std::vector<float> b;
  for (int32_t id : ids) {
    auto r = single.eval(std::span<const int32_t>(&id, 1));
    b.insert(b.end(), r.begin(), r.end());
  }
  expect_rows_close(a, b, V, 5e-4);

  Context chunked(model, opts(7));  // chunks of 7 tokens
  auto c = chunked.eval(ids, true);
  expect_rows_close(a, c, V, 5e-4);
}

TEST_P(ContextTest, TruncateAndClear) {
  auto model = load(GetParam());
  Context ctx(model, opts(512, 1, 128));
  const auto a = prompt(40, 1), b = prompt(10, 2);
  ctx.eval(a);
  auto first = ctx.eval(b);
  const std::vector<float> ref(first.begin(), first.end());
  EXPECT_EQ(ctx.n_past(), 50);

  ctx.truncate(0, 40);  // drop b, keep a's cache
  EXPECT_EQ(ctx.n_past(), 40);
  auto again = ctx.eval(b);
  EXPECT_LE(nmse(ref, again), 1e-12);

  ctx.truncate(0, 3);  // keep a tiny prefix, re-evaluate the rest
  std::vector<int32_t> rest(a.begin() + 3, a.end());
  ctx.eval(rest);
  auto third = ctx.eval(b);
  EXPECT_LE(nmse(ref, third), 5e-4);

  // clear() frees every block: the full capacity is usable again, many times over
  for (int i = 0; i < 5; ++i) {
    ctx.clear();
    EXPECT_EQ(ctx.n_past(), 0);
    ctx.eval(prompt(120, i));
  }
  ctx.clear();
  ctx.eval(a);
  auto fourth = ctx.eval(b);
  EXPECT_LE(nmse(ref, fourth), 5e-4);
}

TEST_P(ContextTest, PrefixReuse) {
  auto model = load(GetParam());
  Context ctx(model, opts(512, 1, 256));
  auto a = prompt(50, 1);
  ctx.eval(a);
  EXPECT_EQ(std::vector<int32_t>(ctx.tokens().begin(), ctx.tokens().end()), a);
  // an edited prompt: same first 37 tokens, then different
  auto b = a;
  b.resize(60);
  for (size_t i = 37; i < b.size(); ++i) b[i] = static_cast<int32_t>((i * 31 + 5) % 4000);
  const int kept = ctx.reuse_prefix(0, b);
  EXPECT_EQ(kept, 37);
  EXPECT_EQ(ctx.n_past(), 37);
  auto reused = ctx.eval(std::span(b).subspan(37));
  const std::vector<float> got(reused.begin(), reused.end());
  Context fresh(model, opts(512, 1, 256));
  auto ref = fresh.eval(b);
  EXPECT_LE(nmse(ref, got), 5e-4);
  // the same prompt again keeps all but its last token
  EXPECT_EQ(ctx.reuse_prefix(0, b), 59);
  EXPECT_EQ(ctx.reuse_prefix(0, std::vector<int32_t>{}), 0);
}

TEST_P(ContextTest, SequencesAreIndependent) {
  auto model = load(GetParam());
  const auto a = prompt(20, 3), b = prompt(33, 4);
  Context solo(model, opts());
  auto ra = solo.eval(a);
  const std::vector<float> ref_a(ra.begin(), ra.end());
  solo.clear();
  auto rb = solo.eval(b);
  const std::vector<float> ref_b(rb.begin(), rb.end());

  Context two(model, opts(512, 2));
  two.eval(std::span(a).first(10), false, 0);
  two.eval(std::span(b).first(20), false, 1);
  auto ga = two.eval(std::span(a).subspan(10), false, 0);
  EXPECT_LE(nmse(ref_a, ga), 5e-4);
  auto gb = two.eval(std::span(b).subspan(20), false, 1);
  EXPECT_LE(nmse(ref_b, gb), 5e-4);
}

TEST_P(ContextTest, MultiSequenceBatch) {
  auto model = load(GetParam());
  const int64_t V = model->config().n_vocab;
  const auto a = prompt(20, 5), b = prompt(37, 6), c = prompt(9, 7);
  // reference: each sequence on its own
  std::vector<std::vector<float>> ref;
  for (const auto* p : {&a, &b, &c}) {
    Context solo(model, opts());
    auto l = solo.eval(std::span(*p).first(p->size() - 1));
    auto last = solo.eval(std::span(*p).last(1));
    ref.emplace_back(last.begin(), last.end());
    (void)l;
  }
  // shared passes: a and b prefill together (all rows of b), then one decode step of all three
  // next to c's prefill, in batches of 16 tokens
  Context ctx(model, opts(16, 3));
  const SeqInput first[] = {{0, std::span(a).first(a.size() - 1), false}, {1, std::span(b).first(b.size() - 1), true}};
  auto l1 = ctx.eval_batch(first);
  EXPECT_EQ(l1.size(), static_cast<size_t>((1 + b.size() - 1) * V));
  const SeqInput second[] = {{2, std::span(c).first(c.size() - 1), false},
                             {0, std::span(a).last(1), false},
                             {1, std::span(b).last(1), false},
                             {2, std::span(c).last(1), false}};
  auto l2 = ctx.eval_batch(second);
  ASSERT_EQ(l2.size(), static_cast<size_t>(4 * V));
  EXPECT_LE(nmse(ref[0], l2.subspan(1 * V, V)), 5e-4);
  EXPECT_LE(nmse(ref[1], l2.subspan(2 * V, V)), 5e-4);
  EXPECT_LE(nmse(ref[2], l2.subspan(3 * V, V)), 5e-4);
  EXPECT_EQ(ctx.n_past(0), static_cast<int>(a.size()));
  EXPECT_EQ(ctx.n_past(1), static_cast<int>(b.size()));
  EXPECT_EQ(ctx.n_past(2), static_cast<int>(c.size()));
  // a failing call changes nothing
  const std::vector<int32_t> bad = {1, 2, 99999};
  const SeqInput third[] = {{0, std::span(a).last(1), false}, {1, bad, false}};
  EXPECT_THROW(ctx.eval_batch(third), tessera::Error);
  EXPECT_EQ(ctx.n_past(0), static_cast<int>(a.size()));
}

TEST_P(ContextTest, ContextFullIsAnError) {
  auto model = load(GetParam());
  Context ctx(model, opts(512, 1, 64));
  ctx.eval(prompt(60));
  EXPECT_THROW(ctx.eval(prompt(5)), tessera::Error);
  EXPECT_EQ(ctx.n_past(), 60);
  EXPECT_THROW(ctx.eval(std::vector<int32_t>{100000}), tessera::Error);  // id out of range
  EXPECT_THROW(ctx.eval(prompt(1), false, 3), tessera::Error);           // no such sequence
}

INSTANTIATE_TEST_SUITE_P(Models, ContextTest,
                         ::testing::Values("tiny-q8_0.gguf", "tiny-q4_k_m.gguf", "tiny-qwen3-q8_0.gguf",
                                           "tiny-qwen2-q4_k_m.gguf"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// Rewrites a model with one tensor changed: dropped (new_ne empty) or replaced by zeros of new_ne.
fs::path rewrite(const std::string& src_name, const std::string& tensor, std::vector<int64_t> new_ne) {
  const gguf::File src = gguf::File::open((kModels / src_name).string());
  gguf::Writer w;
  w.copy_metadata(src);
  for (const gguf::TensorInfo& t : src.tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    if (t.name == tensor) {
      if (new_ne.empty()) continue;
      int64_t n = 1;
      for (int64_t v : new_ne) n *= v;
      w.add_tensor(t.name, GgmlType::F32, new_ne, std::vector<uint8_t>(static_cast<size_t>(n) * 4, 0));
      continue;
    }
    w.add_tensor(t.name, t.type, ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const fs::path out = fs::temp_directory_path() / ("tessera-test-" + std::to_string(::getpid()) + "-" + src_name);
  w.write(out.string());
  return out;
}

std::string load_error(const fs::path& p) {
  try {
    LoadOptions lo;
    lo.print_plan = false;
    Model::load(p.string(), lo);
  } catch (const tessera::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelLoad, MissingTensorIsNamed) {
  const fs::path p = rewrite("tiny-q8_0.gguf", "blk.1.attn_k.weight", {});
  const std::string msg = load_error(p);
  fs::remove(p);
  EXPECT_NE(msg.find("blk.1.attn_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(ModelLoad, MisShapedTensorIsNamed) {
  const fs::path p = rewrite("tiny-q8_0.gguf", "blk.0.attn_q_norm.weight", {32});
  const std::string msg = load_error(p);
  fs::remove(p);
  EXPECT_NE(msg.find("blk.0.attn_q_norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
}

// A weight of a type no matmul kernel runs (Q2_K output head) is a load error naming the tensor, not a
// failure at the first token.
TEST(ModelLoad, WeightTypeWithoutKernelIsALoadError) {
  const gguf::File src = gguf::File::open((kModels / "tiny-qwen3-q8_0.gguf").string());
  gguf::Writer w;
  w.copy_metadata(src);
  for (const gguf::TensorInfo& t : src.tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    if (t.name == "output.weight")
      w.add_tensor(t.name, GgmlType::Q2_K, ne, std::vector<uint8_t>(row_bytes(GgmlType::Q2_K, ne[0]) * ne[1], 0));
    else
      w.add_tensor(t.name, t.type, ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const fs::path p = fs::temp_directory_path() / ("tessera-test-" + std::to_string(::getpid()) + "-q2k-output.gguf");
  w.write(p.string());
  LoadOptions lo;
  lo.print_plan = false;
  for (const char* backend : {"cpu", "ref"}) {
    lo.backend = backend;
    try {
      Model::load(p.string(), lo);
      ADD_FAILURE() << backend << ": a Q2_K output head loaded";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("output.weight"), std::string::npos) << msg;
      EXPECT_NE(msg.find("no kernel"), std::string::npos) << msg;
    }
  }
  fs::remove(p);
}

TEST(ModelLoad, UnknownBackendIsAnError) {
  LoadOptions lo;
  lo.print_plan = false;
  lo.backend = "tpu";
  EXPECT_THROW(Model::load((kModels / "tiny-q8_0.gguf").string(), lo), Error);
}

TEST(ModelLoad, TiedOutputFallsBackToEmbedding) {
  const fs::path p = rewrite("tiny-qwen3-q8_0.gguf", "output.weight", {});
  LoadOptions lo;
  lo.print_plan = false;
  auto model = Model::load(p.string(), lo);
  EXPECT_TRUE(model->weights().tied_output);
  EXPECT_EQ(model->weights().output.view.data, model->weights().token_embd.tensor->data);
  Context ctx(model, opts());
  auto l = ctx.eval(prompt(5));
  for (float v : l) ASSERT_TRUE(std::isfinite(v));
  fs::remove(p);
}

TEST(ModelLoad, ConfigFromMetadata) {
  auto m = load("tiny-q8_0.gguf");
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, "qwen3moe");
  EXPECT_EQ(c.n_embd, 256);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_expert, 128);
  EXPECT_EQ(c.n_expert_used, 8);
  EXPECT_EQ(c.n_ff_exp, 64);
  EXPECT_EQ(c.n_vocab, 4122);
  EXPECT_DOUBLE_EQ(c.rope_base, 1e7);
  EXPECT_FALSE(m->weights().tied_output);
  auto q2 = load("tiny-qwen2-q8_0.gguf");
  EXPECT_EQ(q2->config().head_dim, 64);  // n_embd / n_head: qwen2 has no key_length
  EXPECT_TRUE(q2->weights().layers[0].bq);
  EXPECT_FALSE(q2->weights().layers[0].q_norm);
  EXPECT_THROW(load("does-not-exist.gguf"), tessera::Error);
}

}  // namespace
