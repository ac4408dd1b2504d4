// A loaded model: hyperparameters from GGUF metadata and zero-copy views of its weights in the
// mmap'd file, validated at load (every tensor present with the shape the architecture needs).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/ops/matmul.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tessera::engine {

struct ModelConfig {
  std::string arch;             // "qwen3moe", "qwen3", "qwen2"
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
  double eps = 1e-6;            // rmsnorm epsilon
};

struct LoadOptions {
  bool print_plan = true;  // print the weight memory plan to stderr
};

// The n_expert matrices of a 3-D expert tensor: expert e is `first` shifted by e * stride bytes.
struct ExpertWeights {
  ops::WeightView first;  // expert 0
  size_t stride = 0;      // bytes of one expert's matrix
  ops::WeightView expert(int64_t e) const {
    ops::WeightView w = first;
    w.data += static_cast<size_t>(e) * stride;
    return w;
  }
};

// One transformer block's weights. Pointers to f32 vectors point into the file (F32 tensors) or into
// Model-owned buffers (other types are decoded once at load). Absent optional pieces are nullptr.
struct LayerWeights {
  const float* attn_norm = nullptr;                // [n_embd]
  ops::WeightView wq, wk, wv, wo;                  // q/k/v: n_embd -> heads*head_dim; o: back
  const float* bq = nullptr;                       // qwen2 biases [n_head*head_dim]
  const float* bk = nullptr;                       // [n_head_kv*head_dim]
  const float* bv = nullptr;                       // [n_head_kv*head_dim]
  const float* q_norm = nullptr;                   // qwen3 QK-norm [head_dim]
  const float* k_norm = nullptr;                   // [head_dim]
  const float* ffn_norm = nullptr;                 // [n_embd]
  ops::WeightView ffn_gate, ffn_up, ffn_down;      // dense FFN
  ops::WeightView router;                          // MoE: n_embd -> n_expert (F32 usually)
  ExpertWeights gate_exps, up_exps, down_exps;     // MoE experts
};

struct ModelWeights {
  const gguf::TensorInfo* token_embd = nullptr;    // {n_embd, n_vocab}, rows decoded on lookup
  const float* output_norm = nullptr;              // [n_embd]
  ops::WeightView output;                          // n_embd -> n_vocab (token_embd when tied)
  const float* output_bias = nullptr;              // qwen2, optional [n_vocab]
  bool tied_output = false;
  std::vector<LayerWeights> layers;
};

class Model {  // zero-copy: weights are WeightViews into the mmap'd gguf::File
 public:
  // Opens, validates and maps a model. Throws tessera::Error naming the file and the problem
  // (unsupported architecture, missing key, missing or mis-shaped tensor).
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});

  const ModelConfig& config() const { return config_; }
  const gguf::File& file() const { return file_; }
  const ModelWeights& weights() const { return weights_; }
  // The tokenizer is built on first use (the forward pass does not need it).
  const tok::Tokenizer& tokenizer() const;

  uint64_t weight_bytes() const { return weight_bytes_; }  // bytes of all tensors in the file
  uint64_t n_params() const { return n_params_; }
  bool is_moe() const { return config_.n_expert > 0; }
  std::string type_description() const;  // llama-bench style, e.g. "qwen3moe 30B.A3B Q4_K - Medium"
  std::string size_label() const;        // "30B.A3B", "?B"
  std::string ftype_name() const;        // "Q4_K - Medium", "IQ4_NL - 4.5 bpw", ...

  explicit Model(gguf::File file);  // use load()

 private:
  void read_config();
  void bind_weights();
  const float* f32_vector(const std::string& name, int64_t n, bool required);

  gguf::File file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::vector<std::vector<float>> owned_;  // decoded non-F32 vectors (norms, biases)
  uint64_t weight_bytes_ = 0;
  uint64_t n_params_ = 0;
  mutable std::once_flag tok_once_;
  mutable std::unique_ptr<tok::Tokenizer> tokenizer_;
};

}  // namespace tessera::engine
