// Model shapes `tessera mkmodel` can make (qwen3moe, qwen3, qwen2): hyperparameters, the tensor list
// with each tensor's random-init rule, and the GGUF metadata keys of the architecture.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/cli/quant_rules.h"

namespace tessera::gguf {
class Writer;
}

namespace tessera::cli {

struct ModelPreset {
  std::string_view name;
  std::string_view arch;  // "qwen3moe", "qwen3" or "qwen2"
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;       // qwen2: must be n_embd / n_head
  int64_t n_ff = 0;           // feed_forward_length (the dense FFN; metadata only for qwen3moe)
  int64_t n_expert = 0;       // 0 for dense models
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;       // expert_feed_forward_length
  int64_t n_ctx = 0;
  float rope_base = 10000.0f;
  float eps = 1e-6f;
  std::string_view description;
};

// The built-in presets, and lookup by name (nullptr when unknown).
const std::vector<ModelPreset>& presets();
const ModelPreset* find_preset(std::string_view name);
std::string preset_names();

// How a tensor's random values are drawn. Scales keep activations near unit RMS through the layers:
// norms near 1, matrices ~N(0, 1/sqrt(n_in)), router logits spread wide enough that top-k routing
// is decisive.
enum class Init {
  Norm,    // 1 + N(0, scale)
  Normal,  // N(0, scale)
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;  // ggml order, ne[0] contiguous
  Init init = Init::Normal;
  float scale = 0.0f;

  int64_t n_elements() const;
  int64_t row_length() const { return ne[0]; }
  int64_t n_rows() const { return n_elements() / ne[0]; }
};

// Every tensor of the model, in file order (token_embd, output_norm, output, then blk.0 ... ).
std::vector<TensorSpec> model_tensors(const ModelPreset& p, int64_t n_vocab);

// What the quantization rules need (layer count, head counts).
ModelFacts model_facts(const ModelPreset& p);

// Writes general.architecture and the architecture's hyperparameter keys.
void write_hparams(gguf::Writer& w, const ModelPreset& p);

}  // namespace tessera::cli
