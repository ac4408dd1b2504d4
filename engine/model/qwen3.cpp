// qwen3 (dense) forward pass: attention with QK-norm and NEOX RoPE, then a SwiGLU FFN.
#include "engine/model/forward.h"

namespace tessera::engine {

void forward_qwen3(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool) {
  embed_tokens(m, b, ws);  // x = token_embd[tokens]
  prepare_rope(m, b, ws);
  for (int layer = 0; layer < static_cast<int>(m.config().n_layer); ++layer) {
    attention_block(m, layer, b, kv, ws, pool);  // x += attention(rmsnorm(x) * attn_norm), QK-norm
    dense_ffn_block(m, layer, b, ws, pool);      // x += Wdown(silu(Wgate h) * Wup h)
  }
  output_head(m, b, ws, pool);  // logits = Wout (rmsnorm(x) * output_norm)
}

}  // namespace tessera::engine
