// Model loading: hyperparameters from `<arch>.` metadata, weight views bound to the mapped file and
// checked against the shapes the architecture needs, and the memory plan.
#include "engine/model/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/model/forward.h"
#include "gguf/codecs.h"

namespace tessera::engine {

namespace {

std::string shape_str(const std::array<int64_t, 4>& ne, uint32_t n_dims) {
  std::string s = "[";
  for (uint32_t i = 0; i < std::max<uint32_t>(n_dims, 1); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

std::string shape_str(std::initializer_list<int64_t> ne) {
  std::string s = "[";
  bool first = true;
  for (int64_t v : ne) {
    s += (first ? "" : ", ") + std::to_string(v);
    first = false;
  }
  return s + "]";
}

double gib(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0); }

// Published model sizes by (layers, hidden size), as llama.cpp names them.
const SizeLabel kQwen3MoeSizes[] = {{48, 0, "30B.A3B"}, {94, 0, "235B.A22B"}};
const SizeLabel kQwen3Sizes[] = {{28, 1024, "0.6B"}, {28, 2048, "1.7B"}, {36, 2560, "4B"},
                                 {36, 4096, "8B"},   {40, 5120, "14B"},  {64, 5120, "32B"}};
const SizeLabel kQwen2Sizes[] = {{24, 896, "0.5B"}, {28, 1536, "1.5B"}, {36, 2048, "3B"}, {28, 3584, "7B"},
                                 {48, 5120, "14B"}, {64, 5120, "32B"},  {80, 8192, "72B"}};
// llama, by layer count as llama.cpp names them (30 layers: "256M" after SmolDocling, so SmolLM2-135M
// shows as that; 32 layers: "3B" for a 49,152-token vocabulary (SmolLM2-360M), else 8B for Llama 3
// (7B for Llama 2's 32,000 tokens, which needs a tokenizer Tessera lacks anyway)).
const SizeLabel kLlamaSizes[] = {{16, 0, "1B"},  {22, 0, "1B"},   {26, 0, "3B"},  {28, 0, "3B"},
                                 {30, 0, "256M"}, {32, 960, "3B"}, {32, 0, "8B"},  {36, 0, "8B"},
                                 {40, 0, "13B"},  {48, 0, "34B"},  {60, 0, "30B"}, {80, 0, "70B"}};

// The architectures Tessera runs: one row each.
const Architecture kArchitectures[] = {
    {"qwen3moe", /*moe=*/true, /*qk_norm=*/true, /*qkv_bias=*/false, /*output_bias=*/false, ops::RopeType::Neox,
     /*rope_freqs=*/false, forward_moe, kQwen3MoeSizes},
    {"qwen3", /*moe=*/false, /*qk_norm=*/true, /*qkv_bias=*/false, /*output_bias=*/false, ops::RopeType::Neox,
     /*rope_freqs=*/false, forward_dense, kQwen3Sizes},
    {"qwen2", /*moe=*/false, /*qk_norm=*/false, /*qkv_bias=*/true, /*output_bias=*/true, ops::RopeType::Neox,
     /*rope_freqs=*/false, forward_dense, kQwen2Sizes},
    // Llama 3.x, SmolLM: GQA, adjacent-pair RoPE, optional rope_freqs, output often tied to token_embd.
    {"llama", /*moe=*/false, /*qk_norm=*/false, /*qkv_bias=*/false, /*output_bias=*/false, ops::RopeType::Norm,
     /*rope_freqs=*/true, forward_dense, kLlamaSizes},
};

// Upper bounds on the counts a file may claim: far above any real model, low enough that nothing
// sized from them (layer tables, norms, KV cache) can be huge before the tensors are checked.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 1024;
constexpr int64_t kMaxExperts = 4096;
constexpr int64_t kMaxExpertsUsed = 64;
constexpr int64_t kMaxEmbd = int64_t{1} << 20;
constexpr int64_t kMaxFf = int64_t{1} << 20;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxCtxTrain = int64_t{1} << 30;

void check_range(const gguf::File& f, const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) throw_error("{}: {} = {} is out of range [{}, {}]", f.path(), key, v, lo, hi);
}

void check_positive(const gguf::File& f, const std::string& key, double v, double hi) {
  if (!(v > 0.0 && v < hi))  // NaN fails too
    throw_error("{}: {} = {} must be finite and in (0, {})", f.path(), key, v, hi);
}

// Every count from the metadata in range and consistent with the tensors that exist, before
// bind_weights sizes anything from them. Messages name the file, the key and the value.
void validate_config(const gguf::File& f, const ModelConfig& c, const Architecture& arch) {
  const std::string p = c.arch + ".";
  check_range(f, p + "embedding_length", c.n_embd, 1, kMaxEmbd);
  check_range(f, p + "block_count", c.n_layer, 1, kMaxLayers);
  check_range(f, p + "attention.head_count", c.n_head, 1, kMaxHeads);
  check_range(f, p + "attention.head_count_kv", c.n_head_kv, 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw_error("{}: {}attention.head_count = {} is not a multiple of {}attention.head_count_kv = {}", f.path(), p,
                c.n_head, p, c.n_head_kv);
  const std::string key_len =
      p + "attention.key_length" + (f.has(p + "attention.key_length") ? "" : " (absent: embedding_length / head_count)");
  check_range(f, key_len, c.head_dim, 2, kMaxHeadDim);
  if (c.head_dim % 2 != 0) throw_error("{}: {} = {} is odd (RoPE rotates pairs)", f.path(), key_len, c.head_dim);
  if (const int64_t v_dim = f.get_int_or(p + "attention.value_length", c.head_dim); v_dim != c.head_dim)
    throw_error("{}: {}attention.value_length = {} differs from the key length {} (unsupported)", f.path(), p, v_dim,
                c.head_dim);
  if (arch.moe) {
    check_range(f, p + "expert_count", c.n_expert, 1, kMaxExperts);
    check_range(f, p + "expert_used_count", c.n_expert_used, 1, std::min(c.n_expert, kMaxExpertsUsed));
    check_range(f, p + "expert_feed_forward_length", c.n_ff_exp, 1, kMaxFf);
    check_range(f, p + "feed_forward_length", c.n_ff, 0, kMaxFf);  // unused by MoE layers
  } else {
    check_range(f, p + "feed_forward_length", c.n_ff, 1, kMaxFf);
  }
  if (f.has(p + "context_length")) check_range(f, p + "context_length", c.n_ctx_train, 1, kMaxCtxTrain);
  check_positive(f, p + "rope.freq_base", c.rope_base, 1e30);
  if (const int64_t n_rot = f.get_int_or(p + "rope.dimension_count", c.head_dim); n_rot != c.head_dim)
    throw_error("{}: {}rope.dimension_count = {} differs from the head dim {} (partial RoPE is unsupported)", f.path(),
                p, n_rot, c.head_dim);
  if (arch.rope_freqs) {
    const std::string type = f.get_string_or(p + "rope.scaling.type", "none");
    if (type != "none" && type != "linear")
      throw_error("{}: {}rope.scaling.type = '{}' is unsupported (none, linear; Llama 3 frequency factors come as "
                  "rope_freqs.weight)", f.path(), p, type);
    check_positive(f, "1 / " + p + "rope.scaling.factor", c.rope_freq_scale, 1e30);
  }
  if (arch.rope_freqs && f.has(p + "expert_count") && f.get_int(p + "expert_count") > 0)
    throw_error("{}: {}expert_count = {}: {} MoE files (Mixtral-style) are unsupported", f.path(), p,
                f.get_int(p + "expert_count"), c.arch);
  if (f.has(p + "attention.scale"))
    throw_error("{}: {}attention.scale is set (a custom attention scale is unsupported)", f.path(), p);
  check_positive(f, p + "attention.layer_norm_rms_epsilon", c.eps, 1.0);

  check_range(f, "token_embd.weight rows (n_vocab)", c.n_vocab, 1, kMaxVocab);
  if (f.has(p + "vocab_size") && f.get_int(p + "vocab_size") != c.n_vocab)
    throw_error("{}: {}vocab_size = {} but token_embd.weight has {} rows", f.path(), p, f.get_int(p + "vocab_size"),
                c.n_vocab);
  // Ids the model can emit must all decode; a model without a tokenizer still loads (logits --feed).
  if (const gguf::MetaValue* v = f.find("tokenizer.ggml.tokens"); v && v->type == gguf::ValueType::ARRAY) {
    const size_t n_tokens = std::get<gguf::MetaArray>(v->value).size();
    if (n_tokens < static_cast<size_t>(c.n_vocab))
      throw_error("{}: tokenizer.ggml.tokens has {} tokens, fewer than the model's n_vocab {} (token_embd.weight rows)",
                  f.path(), n_tokens, c.n_vocab);
  }

  // The claimed layer count must match the layers present: no more (missing tensors would only
  // show after sizing everything), no fewer (extra layers would be silently ignored).
  const std::string last = fmt::format("blk.{}.attn_norm.weight", c.n_layer - 1);
  if (!f.find_tensor(last))
    throw_error("{}: {}block_count = {} but tensor '{}' is missing", f.path(), p, c.n_layer, last);
  const std::string beyond = fmt::format("blk.{}.attn_norm.weight", c.n_layer);
  if (f.find_tensor(beyond))
    throw_error("{}: {}block_count = {} but the file has tensor '{}' (more layers)", f.path(), p, c.n_layer, beyond);
}

}  // namespace

const Architecture* find_architecture(std::string_view name) {
  for (const Architecture& a : kArchitectures)
    if (name == a.name) return &a;
  return nullptr;
}

std::string supported_architectures() {
  std::string s;
  for (const Architecture& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

Model::Model(gguf::File file) : file_(std::move(file)) {}

std::string weights_from_env() {
  const char* v = std::getenv("TESSERA_WEIGHTS");
  return v && *v ? v : "auto";
}

namespace {

// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
uint64_t available_memory() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  std::fclose(f);
  return kib * 1024;
}

gguf::Residency choose_residency(const std::string& path, const LoadOptions& opts) {
  if (opts.weights == "mmap") return gguf::Residency::Mapped;
  if (opts.weights == "copy") return gguf::Residency::Copied;
  if (opts.weights != "auto") throw_error("weights '{}' (--weights, TESSERA_WEIGHTS): expected auto, mmap or copy", opts.weights);
  if (opts.backend != "cpu" && opts.backend != "ref") return gguf::Residency::Mapped;  // uploaded anyway
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return gguf::Residency::Mapped;  // open() names the problem
  return size <= available_memory() / 2 ? gguf::Residency::Copied : gguf::Residency::Mapped;
}

}  // namespace

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
  auto model = std::make_shared<Model>(gguf::File::open(path, choose_residency(path, opts)));
  model->config_ = read_model_config(model->file_);
  model->arch_ = find_architecture(model->config_.arch);
  model->backend_ = make_backend(opts.backend, opts.device);
  model->kernel_policy_ = opts.kernels;
  model->profile_ = opts.profile;
  model->bind_weights(opts.kernels);
  if (opts.print_plan) {
    const ModelConfig& c = model->config_;
    std::fprintf(stderr, "tessera: model %s (%s): %lld layers, embd %lld, heads %lld/%lld x %lld, vocab %lld",
                 model->type_description().c_str(), path.c_str(), (long long)c.n_layer, (long long)c.n_embd,
                 (long long)c.n_head, (long long)c.n_head_kv, (long long)c.head_dim, (long long)c.n_vocab);
    if (c.n_expert > 0)
      std::fprintf(stderr, ", %lld experts (top %lld, ffn %lld)", (long long)c.n_expert,
                   (long long)c.n_expert_used, (long long)c.n_ff_exp);
    else
      std::fprintf(stderr, ", ffn %lld", (long long)c.n_ff);
    const bool host = model->backend_->kind() != ops::Backend::Vulkan && model->backend_->kind() != ops::Backend::Hip;
    std::fprintf(stderr, "\ntessera: memory plan: weights %.3f GiB %s (%.3f B params)%s, backend %s\n",
                 gib(model->weight_bytes_),
                 !host ? "uploaded to the device"
                 : model->file_.residency() == gguf::Residency::Copied ? "copied into huge-page memory"
                                                                       : "mmap'd zero-copy",
                 static_cast<double>(model->n_params_) * 1e-9,
                 model->weights_.tied_output ? ", output tied to token_embd" : "",
                 model->backend_->caps().describe().c_str());
  }
  return model;
}

ModelConfig read_model_config(const gguf::File& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  const Architecture* arch = find_architecture(c.arch);
  if (!arch) throw_error("{}: architecture '{}' is not supported ({})", f.path(), c.arch, supported_architectures());
  const std::string p = c.arch + ".";
  c.n_embd = f.get_int(p + "embedding_length");
  c.n_layer = f.get_int(p + "block_count");
  c.n_head = f.get_int(p + "attention.head_count");
  c.n_head_kv = f.get_int_or(p + "attention.head_count_kv", c.n_head);
  c.head_dim = f.get_int_or(p + "attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_ff = f.get_int_or(p + "feed_forward_length", 0);
  c.n_expert = f.get_int_or(p + "expert_count", 0);
  c.n_expert_used = f.get_int_or(p + "expert_used_count", 0);
  c.n_ff_exp = f.get_int_or(p + "expert_feed_forward_length", 0);
  c.n_ctx_train = f.get_int_or(p + "context_length", 0);
  c.rope_base = f.get_float_or(p + "rope.freq_base", 10000.0);
  c.rope_type = arch->rope;
  if (arch->rope_freqs) {
    // Linear scaling (rope.scaling.factor, or the older rope.scale_linear): positions divided by the factor.
    double factor = f.get_float_or(p + "rope.scaling.factor", 0.0);
    if (factor == 0.0) factor = f.get_float_or(p + "rope.scale_linear", 0.0);
    c.rope_freq_scale = factor == 0.0 ? 1.0 : 1.0 / factor;  // as llama.cpp: 0 or absent means none
  }
  c.eps = f.get_float(p + "attention.layer_norm_rms_epsilon");
  if (arch->moe) {
    if (!f.has(p + "expert_feed_forward_length")) {  // older files: take it from the tensor
      const gguf::TensorInfo* t = f.find_tensor("blk.0.ffn_gate_exps.weight");
      if (t) c.n_ff_exp = t->ne[1];
    }
  } else {
    c.n_expert = c.n_expert_used = c.n_ff_exp = 0;
  }
  const gguf::TensorInfo& emb = f.tensor("token_embd.weight");
  c.n_vocab = emb.ne[1];
  validate_config(f, c, *arch);
  // Llama 3.1+ frequency factors: theta_i is divided by rope_freqs[i] (one tensor for all layers).
  if (const gguf::TensorInfo* t = f.find_tensor("rope_freqs.weight"); t && arch->rope_freqs) {
    const int64_t half = c.head_dim / 2;
    if (t->n_elements() != half || t->ne[0] != half)
      throw_error("{}: tensor 'rope_freqs.weight' has shape {} but {} needs {}", f.path(), shape_str(t->ne, t->n_dims),
                  c.arch, shape_str({half}));
    if (!has_decoder(t->type))
      throw_error("{}: tensor 'rope_freqs.weight' has type {} which has no decoder", f.path(), type_name(t->type));
    c.rope_freq_factors.resize(static_cast<size_t>(half));
    dequantize_row(t->type, t->data, c.rope_freq_factors.data(), half);
    for (int64_t i = 0; i < half; ++i)
      if (!(c.rope_freq_factors[i] > 0.0f && std::isfinite(c.rope_freq_factors[i])))
        throw_error("{}: rope_freqs.weight[{}] = {} must be finite and positive", f.path(), i, c.rope_freq_factors[i]);
  }
  return c;
}

Vector Model::f32_vector(const std::string& name, int64_t n, bool required) {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (!t) {
    if (required) throw_error("{}: missing tensor '{}' (needed by {})", file_.path(), name, config_.arch);
    return {};
  }
  if (t->n_elements() != n || t->ne[0] != n)
    throw_error("{}: tensor '{}' has shape {} but {} needs {}", file_.path(), name, shape_str(t->ne, t->n_dims),
                config_.arch, shape_str({n}));
  if (t->type == GgmlType::F32) return backend_->upload_vector(reinterpret_cast<const float*>(t->data), n);
  if (!has_decoder(t->type))
    throw_error("{}: tensor '{}' has type {} which has no decoder", file_.path(), name, type_name(t->type));
  owned_.emplace_back(static_cast<size_t>(n));
  dequantize_row(t->type, t->data, owned_.back().data(), n);
  return backend_->upload_vector(owned_.back().data(), n);
}

void Model::bind_weights(const ops::KernelPolicy& policy) {
  const ModelConfig& c = config_;
  const std::string& path = file_.path();
  auto find = [&](const std::string& name) -> const gguf::TensorInfo& {
    const gguf::TensorInfo* t = file_.find_tensor(name);
    if (!t) throw_error("{}: missing tensor '{}' (needed by {})", path, name, c.arch);
    return *t;
  };
  auto check = [&](const gguf::TensorInfo& t, std::initializer_list<int64_t> want) {
    std::array<int64_t, 4> ne = {1, 1, 1, 1};
    size_t i = 0;
    for (int64_t v : want) ne[i++] = v;
    if (t.ne != ne)
      throw_error("{}: tensor '{}' has shape {} but {} needs {}", path, t.name, shape_str(t.ne, t.n_dims), c.arch,
                  shape_str(want));
  };
  // ffn_down's input (the SwiGLU product) has outliers 14-63x its row RMS on real models: Q8_K's one
  // scale per 256 values leaves the small values few bits. One scale per 32 (Q8_0 activations, for the
  // types whose usual format is Q8_K) halves Qwen2.5-Coder's median logit NMSE against float64 (issue 9).
  // Only past the few-token range: there the int8 tiles run either way (same speed), while decode's
  // fused kernels read Q8_K and the tiles would cost ~20% of decode speed (a per-32 fused kernel: to do).
  ops::KernelPolicy down_policy = policy;
  down_policy.prefer_act(ops::ActType::Q8_0, 5);
  // Uploads a matrix (or expert stack) and binds its kernels; a type no kernel runs is a load error.
  auto upload = [&](const gguf::TensorInfo& t, const ops::KernelPolicy& p) {
    try {
      return backend_->upload_matrix(t, p);
    } catch (const Error& e) {
      throw_error("{}: tensor '{}' ({}): {}", path, t.name, type_name(t.type), e.what());
    }
  };
  auto matrix = [&](const std::string& name, int64_t n_in, int64_t n_out, const ops::KernelPolicy& p) {
    const gguf::TensorInfo& t = find(name);
    check(t, {n_in, n_out});
    return upload(t, p);
  };
  auto experts = [&](const std::string& name, int64_t n_in, int64_t n_out, const ops::KernelPolicy& p) {
    const gguf::TensorInfo& t = find(name);
    check(t, {n_in, n_out, c.n_expert});
    return upload(t, p);
  };

  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  ModelWeights& w = weights_;
  const gguf::TensorInfo& embd = find("token_embd.weight");
  check(embd, {c.n_embd, c.n_vocab});
  if (!has_decoder(embd.type))
    throw_error("{}: tensor 'token_embd.weight' has type {} which has no decoder", path, type_name(embd.type));
  w.token_embd = backend_->upload_table(embd);
  w.output_norm = f32_vector("output_norm.weight", c.n_embd, true);
  if (file_.find_tensor("output.weight")) {
    w.output = matrix("output.weight", c.n_embd, c.n_vocab, policy);
  } else {
    w.tied_output = true;
    w.output = upload(embd, policy);
  }
  if (arch_->output_bias) w.output_bias = f32_vector("output.bias", c.n_vocab, false);

  // Tensors that would change the result but that this architecture does not run: refused, not ignored
  // (e.g. a llama-family file with output or FFN biases).
  const std::pair<const char*, bool> optional[] = {
      {"attn_q.bias", arch_->qkv_bias},      {"attn_k.bias", arch_->qkv_bias},  {"attn_v.bias", arch_->qkv_bias},
      {"attn_q_norm.weight", arch_->qk_norm}, {"ffn_gate_inp.weight", arch_->moe}, {"attn_output.bias", false},
      {"ffn_gate.bias", false},              {"ffn_up.bias", false},            {"ffn_down.bias", false}};
  for (const auto& [extra, used] : optional)
    if (!used && file_.find_tensor(std::string("blk.0.") + extra))
      throw_error("{}: tensor 'blk.0.{}' is not supported by {} here (it would be ignored)", path, extra, c.arch);

  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[static_cast<size_t>(i)];
    L.attn_norm = f32_vector(b + "attn_norm.weight", c.n_embd, true);
    L.wq = matrix(b + "attn_q.weight", c.n_embd, q_dim, policy);
    L.wk = matrix(b + "attn_k.weight", c.n_embd, kv_dim, policy);
    L.wv = matrix(b + "attn_v.weight", c.n_embd, kv_dim, policy);
    L.wo = matrix(b + "attn_output.weight", q_dim, c.n_embd, policy);
    if (arch_->qkv_bias) {
      L.bq = f32_vector(b + "attn_q.bias", q_dim, true);
      L.bk = f32_vector(b + "attn_k.bias", kv_dim, true);
      L.bv = f32_vector(b + "attn_v.bias", kv_dim, true);
    }
    if (arch_->qk_norm) {
      L.q_norm = f32_vector(b + "attn_q_norm.weight", c.head_dim, true);
      L.k_norm = f32_vector(b + "attn_k_norm.weight", c.head_dim, true);
    }
    L.ffn_norm = f32_vector(b + "ffn_norm.weight", c.n_embd, true);
    if (arch_->moe) {
      L.router = matrix(b + "ffn_gate_inp.weight", c.n_embd, c.n_expert, policy);
      L.gate_exps = experts(b + "ffn_gate_exps.weight", c.n_embd, c.n_ff_exp, policy);
      L.up_exps = experts(b + "ffn_up_exps.weight", c.n_embd, c.n_ff_exp, policy);
      L.down_exps = experts(b + "ffn_down_exps.weight", c.n_ff_exp, c.n_embd, down_policy);
    } else {
      L.ffn_gate = matrix(b + "ffn_gate.weight", c.n_embd, c.n_ff, policy);
      L.ffn_up = matrix(b + "ffn_up.weight", c.n_embd, c.n_ff, policy);
      L.ffn_down = matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, down_policy);
    }
  }
  for (const gguf::TensorInfo& t : file_.tensors()) {
    weight_bytes_ += t.nbytes;
    n_params_ += static_cast<uint64_t>(t.n_elements());
  }
}

const tok::Tokenizer& Model::tokenizer() const {
  std::call_once(tok_once_, [this] {
    tokenizer_ = std::make_unique<tok::Tokenizer>(tok::Tokenizer::from_gguf(file_));
  });
  return *tokenizer_;
}

std::string Model::size_label() const {
  for (const SizeLabel& l : arch_->sizes)
    if (l.n_layer == config_.n_layer && (l.n_embd == 0 || l.n_embd == config_.n_embd)) return l.label;
  return "?B";
}

std::string Model::ftype_name() const {
  // llama_ftype values as stored in general.file_type, with llama.cpp's descriptions.
  static const std::map<int64_t, const char*> names = {
      {0, "all F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"}, {9, "Q5_1"},
      {10, "Q2_K - Medium"}, {11, "Q3_K - Small"}, {12, "Q3_K - Medium"}, {13, "Q3_K - Large"},
      {14, "Q4_K - Small"}, {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"}, {18, "Q6_K"},
      {19, "IQ2_XXS - 2.0625 bpw"}, {20, "IQ2_XS - 2.3125 bpw"}, {21, "Q2_K - Small"}, {22, "IQ3_XS - 3.3 bpw"},
      {23, "IQ3_XXS - 3.0625 bpw"}, {24, "IQ1_S - 1.5625 bpw"}, {25, "IQ4_NL - 4.5 bpw"},
      {26, "IQ3_S - 3.4375 bpw"}, {27, "IQ3_S mix - 3.66 bpw"}, {28, "IQ2_S - 2.5 bpw"}, {29, "IQ2_M - 2.7 bpw"},
      {30, "IQ4_XS - 4.25 bpw"}, {31, "IQ1_M - 1.75 bpw"}, {32, "BF16"}, {36, "TQ1_0 - 1.69 bpw ternary"},
      {37, "TQ2_0 - 2.06 bpw ternary"}, {38, "MXFP4 MoE"}};
  if (const gguf::MetaValue* v = file_.find("general.file_type"); v && v->type != gguf::ValueType::STRING &&
                                                                   v->type != gguf::ValueType::ARRAY) {
    if (auto it = names.find(file_.get_int("general.file_type")); it != names.end()) return it->second;
  }
  // No (known) file type: name the type holding most of the bytes.
  std::map<GgmlType, uint64_t> bytes;
  for (const gguf::TensorInfo& t : file_.tensors()) bytes[t.type] += t.nbytes;
  GgmlType best = GgmlType::F32;
  uint64_t most = 0;
  for (auto& [t, b] : bytes)
    if (b > most) most = b, best = t;
  std::string n(type_name(best));
  for (char& ch : n) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return n + " (guessed)";
}

uint64_t Model::active_bytes_per_token() const {
  const auto mat = [](const Matrix& m) -> uint64_t { return m.view.data ? uint64_t(m.view.n_out) * m.view.row_bytes : 0; };
  const auto vec = [](const Vector& v) -> uint64_t { return uint64_t(v.n) * sizeof(float); };
  const uint64_t k = static_cast<uint64_t>(std::max<int64_t>(config_.n_expert_used, 0));
  const ModelWeights& W = weights_;
  uint64_t n = W.token_embd.tensor ? W.token_embd.tensor->row_bytes() : 0;
  n += vec(W.output_norm) + mat(W.output) + vec(W.output_bias);
  for (const LayerWeights& L : W.layers) {
    for (const Vector* v : {&L.attn_norm, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm, &L.ffn_norm}) n += vec(*v);
    for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.router}) n += mat(*m);
    for (const Matrix* m : {&L.gate_exps, &L.up_exps, &L.down_exps}) n += k * mat(*m);
  }
  return n;
}

std::string Model::type_description() const { return config_.arch + " " + size_label() + " " + ftype_name(); }

}  // namespace tessera::engine
