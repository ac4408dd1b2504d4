// qwen2 forward pass: attention with Q/K/V biases (no QK-norm) and NEOX RoPE, then a SwiGLU FFN;
// optional output bias.
#include "engine/model/forward.h"

namespace tessera::engine {

void forward_qwen2(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool) {
  embed_tokens(m, b, ws);  // x = token_embd[tokens]
  prepare_rope(m, b, ws);
  for (int layer = 0; layer < static_cast<int>(m.config().n_layer); ++layer) {
    attention_block(m, layer, b, kv, ws, pool);  // x += attention(rmsnorm(x) * attn_norm), biases
    dense_ffn_block(m, layer, b, ws, pool);      // x += Wdown(silu(Wgate h) * Wup h)
  }
  output_head(m, b, ws, pool);  // logits = Wout (rmsnorm(x) * output_norm) + output.bias
}

}  // namespace tessera::engine
