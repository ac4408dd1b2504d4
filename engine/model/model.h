// A loaded model: hyperparameters from GGUF metadata and zero-copy views of its weights in the
// mmap'd file, validated at load (every tensor present with the shape the architecture needs).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend/backend.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tessera::engine {

struct ModelConfig {
  std::string arch;             // "qwen3moe", "qwen3", "qwen2", "llama"
  int64_t n_embd = 0;           // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;           // query heads
  int64_t n_head_kv = 0;        // key/value heads
  int64_t head_dim = 0;         // attention.key_length (n_embd / n_head only when absent)
  int64_t n_vocab = 0;
  int64_t n_ff = 0;             // dense FFN size (0 when absent)
  int64_t n_expert = 0;         // 0 for dense models
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;         // expert FFN size
  int64_t n_ctx_train = 0;
  double rope_base = 10000.0;
  ops::RopeType rope_type = ops::RopeType::Neox;  // the architecture's pairing (llama: Norm)
  double rope_freq_scale = 1.0;       // 1 / rope.scaling.factor for linear scaling, else 1
  std::vector<float> rope_freq_factors;  // [head_dim/2] from rope_freqs.weight (Llama 3.1+), else empty
  double eps = 1e-6;            // rmsnorm epsilon
};

class Model;
struct Workspace;
struct Batch;

struct SizeLabel {
  int64_t n_layer, n_embd;  // n_embd 0: any
  const char* label;        // "30B.A3B"
};

// An architecture as data: which tensors its layers have, which forward runs it, its size names.
struct Architecture {
  const char* name;       // general.architecture
  bool moe = false;       // experts (ffn_*_exps, router) instead of a dense FFN
  bool qk_norm = false;   // attn_q_norm / attn_k_norm
  bool qkv_bias = false;  // attn_{q,k,v}.bias
  bool output_bias = false;  // optional output.bias
  ops::RopeType rope = ops::RopeType::Neox;  // NEOX pairs (i, i + d/2) or NORM adjacent pairs (2i, 2i+1)
  bool rope_freqs = false;   // optional rope_freqs.weight frequency factors and linear rope scaling
  void (*forward)(const Model&, const Batch&, KvStore&, Workspace&, Stream&) = nullptr;
  std::span<const SizeLabel> sizes;
};
// The architecture named so, or nullptr.
const Architecture* find_architecture(std::string_view name);
std::string supported_architectures();  // "qwen3moe, qwen3, qwen2, llama"

// The hyperparameters of an opened (not loaded) file, validated as Model::load does; throws
// tessera::Error naming the file and the problem. Memory planning reads models with this.
ModelConfig read_model_config(const gguf::File& f);

std::string weights_from_env();  // TESSERA_WEIGHTS, else "auto"

struct LoadOptions {
  std::string backend = "cpu";  // "cpu", "ref" or "vulkan" (see make_backend)
  int device = -1;              // the backend's device (`tessera devices`); -1: its default
  ops::KernelPolicy kernels = ops::KernelPolicy::from_env();  // kernel overrides (--kernel, TESSERA_KERNELS)
  // Where the weights live (--weights, TESSERA_WEIGHTS): "mmap" zero-copy from the page cache; "copy"
  // into huge-page memory (faster to stream on the CPU); "auto": copy for the host backends when the
  // file fits in half the available memory, else mmap (device backends upload from the mapping).
  std::string weights = weights_from_env();
  bool print_plan = true;       // print the weight memory plan to stderr
  bool profile = false;         // --profile: per-dispatch device times (vulkan), else the stage profile
};

// One transformer block's weights on the backend. Absent optional pieces are empty.
struct LayerWeights {
  Vector attn_norm;                    // [n_embd]
  Matrix wq, wk, wv, wo;               // q/k/v: n_embd -> heads*head_dim; o: back
  Vector bq, bk, bv;                   // qwen2 biases [heads*head_dim]
  Vector q_norm, k_norm;               // qwen3 QK-norm [head_dim]
  Vector ffn_norm;                     // [n_embd]
  Matrix ffn_gate, ffn_up, ffn_down;   // dense FFN
  Matrix router;                       // MoE: n_embd -> n_expert (F32 usually)
  Matrix gate_exps, up_exps, down_exps;  // MoE experts: stacks of n_expert matrices
};

struct ModelWeights {
  Table token_embd;                    // {n_embd, n_vocab}, rows decoded on lookup
  Vector output_norm;                  // [n_embd]
  Matrix output;                       // n_embd -> n_vocab (token_embd when tied)
  Vector output_bias;                  // qwen2, optional [n_vocab]
  bool tied_output = false;
  std::vector<LayerWeights> layers;
};

class Model {  // the mapped file, its config, and its weights on one backend
 public:
  // Opens, validates and maps a model. Throws tessera::Error naming the file and the problem
  // (unsupported architecture, missing key, missing or mis-shaped tensor).
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});

  const ModelConfig& config() const { return config_; }
  const Architecture& arch() const { return *arch_; }
  Backend& backend() const { return *backend_; }
  const gguf::File& file() const { return file_; }
  const ModelWeights& weights() const { return weights_; }
  // The tokenizer is built on first use (the forward pass does not need it).
  const tok::Tokenizer& tokenizer() const;

  // The kernel overrides it was loaded with (LoadOptions::kernels); streams choose their ops with them.
  const ops::KernelPolicy& kernel_policy() const { return kernel_policy_; }
  uint64_t weight_bytes() const { return weight_bytes_; }  // bytes of all tensors in the file
  // Weight bytes one decoded token needs: every non-expert tensor (norms, attention, router, output
  // head), n_expert_used experts' matrices per layer and one embedding row (--profile compares).
  uint64_t active_bytes_per_token() const;
  bool profile() const { return profile_; }  // LoadOptions::profile
  uint64_t n_params() const { return n_params_; }
  bool is_moe() const { return config_.n_expert > 0; }
  std::string type_description() const;  // llama-bench style, e.g. "qwen3moe 30B.A3B Q4_K - Medium"
  std::string size_label() const;        // "30B.A3B", "?B"
  std::string ftype_name() const;        // "Q4_K - Medium", "IQ4_NL - 4.5 bpw", ...

  explicit Model(gguf::File file);  // use load()

 private:
  void bind_weights(const ops::KernelPolicy& policy);
  Vector f32_vector(const std::string& name, int64_t n, bool required);

  gguf::File file_;
  ModelConfig config_;
  const Architecture* arch_ = nullptr;
  std::shared_ptr<Backend> backend_;
  ops::KernelPolicy kernel_policy_;
  bool profile_ = false;
  ModelWeights weights_;
  std::vector<std::vector<float>> owned_;  // decoded non-F32 vectors (norms, biases)
  uint64_t weight_bytes_ = 0;
  uint64_t n_params_ = 0;
  mutable std::once_flag tok_once_;
  mutable std::unique_ptr<tok::Tokenizer> tokenizer_;
};

}  // namespace tessera::engine
