// Built-in model presets for `tessera mkmodel` and their tensor lists / metadata.
#include "tools/cli/model_presets.h"

#include <cmath>

#include "core/error.h"
#include "gguf/gguf.h"

namespace tessera::cli {

const std::vector<ModelPreset>& presets() {
  static const std::vector<ModelPreset> all = {
      {.name = "qwen3-30b-a3b", .arch = "qwen3moe", .n_embd = 2048, .n_layer = 48, .n_head = 32,
       .n_head_kv = 4, .head_dim = 128, .n_ff = 6144, .n_expert = 128, .n_expert_used = 8,
       .n_ff_exp = 768, .n_ctx = 262144, .rope_base = 1e7f, .eps = 1e-6f,
       .description = "Qwen3-Coder-30B-A3B shape (48 layers, 128 experts, top-8)"},
      {.name = "tiny", .arch = "qwen3moe", .n_embd = 256, .n_layer = 2, .n_head = 8, .n_head_kv = 2,
       .head_dim = 64, .n_ff = 512, .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 64,
       .n_ctx = 4096, .rope_base = 1e7f, .eps = 1e-6f,
       .description = "the golden tiny qwen3moe shape (n_embd 256, 2 layers, 128 experts)"},
      {.name = "tiny-qwen3", .arch = "qwen3", .n_embd = 256, .n_layer = 2, .n_head = 8, .n_head_kv = 2,
       .head_dim = 64, .n_ff = 512, .n_ctx = 4096, .rope_base = 1e6f, .eps = 1e-6f,
       .description = "the golden tiny dense qwen3 shape"},
      {.name = "tiny-qwen2", .arch = "qwen2", .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
       .head_dim = 64, .n_ff = 512, .n_ctx = 4096, .rope_base = 1e6f, .eps = 1e-6f,
       .description = "the golden tiny qwen2 shape (Q/K/V biases, no QK-norm)"},
  };
  return all;
}

const ModelPreset* find_preset(std::string_view name) {
  for (const ModelPreset& p : presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::string preset_names() {
  std::string out;
  for (const ModelPreset& p : presets()) {
    if (!out.empty()) out += ", ";
    out += p.name;
  }
  return out;
}

int64_t TensorSpec::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

namespace {

TensorSpec norm(std::string name, int64_t n) { return {std::move(name), {n}, Init::Norm, 0.05f}; }

// A weight matrix y = W x with x of length n_in: std 1/sqrt(n_in) keeps |y| ~ |x|.
TensorSpec matrix(std::string name, std::vector<int64_t> ne, float gain = 1.0f) {
  float scale = gain / std::sqrt(static_cast<float>(ne[0]));
  return {std::move(name), std::move(ne), Init::Normal, scale};
}

}  // namespace

std::vector<TensorSpec> model_tensors(const ModelPreset& p, int64_t n_vocab) {
  const bool moe = p.arch == "qwen3moe";
  const bool qwen2 = p.arch == "qwen2";
  const int64_t d = p.n_embd, hd = p.head_dim;
  std::vector<TensorSpec> t;
  // Embedding rows of unit RMS; the output head a little wider than unit so greedy picks are clear.
  t.push_back({"token_embd.weight", {d, n_vocab}, Init::Normal, 1.0f});
  t.push_back(norm("output_norm.weight", d));
  t.push_back(matrix("output.weight", {d, n_vocab}, 2.0f));
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t.push_back(norm(b + "attn_norm.weight", d));
    t.push_back(matrix(b + "attn_q.weight", {d, hd * p.n_head}));
    t.push_back(matrix(b + "attn_k.weight", {d, hd * p.n_head_kv}));
    t.push_back(matrix(b + "attn_v.weight", {d, hd * p.n_head_kv}));
    if (qwen2) {
      t.push_back({b + "attn_q.bias", {hd * p.n_head}, Init::Normal, 0.1f});
      t.push_back({b + "attn_k.bias", {hd * p.n_head_kv}, Init::Normal, 0.1f});
      t.push_back({b + "attn_v.bias", {hd * p.n_head_kv}, Init::Normal, 0.1f});
    } else {
      t.push_back(norm(b + "attn_q_norm.weight", hd));
      t.push_back(norm(b + "attn_k_norm.weight", hd));
    }
    t.push_back(matrix(b + "attn_output.weight", {hd * p.n_head, d}));
    t.push_back(norm(b + "ffn_norm.weight", d));
    if (moe) {
      // Router logits ~N(0, 2.5): the top-8 of 128 then carry most of the probability mass.
      t.push_back(matrix(b + "ffn_gate_inp.weight", {d, p.n_expert}, 2.5f));
      t.push_back(matrix(b + "ffn_gate_exps.weight", {d, p.n_ff_exp, p.n_expert}));
      t.push_back(matrix(b + "ffn_up_exps.weight", {d, p.n_ff_exp, p.n_expert}));
      t.push_back(matrix(b + "ffn_down_exps.weight", {p.n_ff_exp, d, p.n_expert}));
    } else {
      t.push_back(matrix(b + "ffn_gate.weight", {d, p.n_ff}));
      t.push_back(matrix(b + "ffn_up.weight", {d, p.n_ff}));
      t.push_back(matrix(b + "ffn_down.weight", {p.n_ff, d}));
    }
  }
  return t;
}

ModelFacts model_facts(const ModelPreset& p) {
  return {.n_layer = p.n_layer, .n_head = p.n_head, .n_head_kv = p.n_head_kv, .has_output = true};
}

void write_hparams(gguf::Writer& w, const ModelPreset& p) {
  const std::string a = std::string(p.arch) + ".";
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.set_string("general.architecture", std::string(p.arch));
  w.set_u32(a + "context_length", u32(p.n_ctx));
  w.set_u32(a + "embedding_length", u32(p.n_embd));
  w.set_u32(a + "block_count", u32(p.n_layer));
  w.set_u32(a + "feed_forward_length", u32(p.n_ff));
  if (p.arch == "qwen3moe") w.set_u32(a + "expert_feed_forward_length", u32(p.n_ff_exp));
  w.set_u32(a + "attention.head_count", u32(p.n_head));
  w.set_u32(a + "attention.head_count_kv", u32(p.n_head_kv));
  if (p.arch != "qwen2") {
    w.set_u32(a + "attention.key_length", u32(p.head_dim));
    w.set_u32(a + "attention.value_length", u32(p.head_dim));
  } else if (p.head_dim * p.n_head != p.n_embd) {
    throw_error("preset {}: qwen2 needs head_dim * n_head == n_embd", p.name);
  }
  w.set_f32(a + "rope.freq_base", p.rope_base);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", p.eps);
  if (p.arch == "qwen3moe") {
    w.set_u32(a + "expert_count", u32(p.n_expert));
    w.set_u32(a + "expert_used_count", u32(p.n_expert_used));
  }
}

}  // namespace tessera::cli
