// The dense forward pass (qwen3: QK-norm; qwen2: Q/K/V biases and an optional output bias; llama:
// neither, NORM RoPE, often a tied output): per layer, attention with RoPE, then a SwiGLU FFN.
#include "engine/model/forward.h"

namespace tessera::engine {

namespace {

// x += Wdown(silu(Wgate h) * Wup h), h = rmsnorm(x) * ffn_norm
void dense_ffn_block(const Model& m, int layer, const Batch& b, Workspace& ws, Stream& s) {
  const LayerWeights& L = m.weights().layers[static_cast<size_t>(layer)];
  const int64_t F = m.config().n_ff;
  s.rmsnorm(*ws.x, *ws.h, L.ffn_norm, b.n_tokens);  // h = rmsnorm(x) * ffn_norm
  const MatmulCall gate_up[] = {{&L.ffn_gate, ws.h.get(), ws.ffn_gate.get()},   // g = Wgate h
                                {&L.ffn_up, ws.h.get(), ws.ffn_up.get()}};      // u = Wup h
  s.matmul(gate_up);
  s.swiglu(*ws.ffn_gate, *ws.ffn_up, F);    // g = silu(g) * u
  s.matmul(MatmulCall{&L.ffn_down, ws.ffn_gate.get(), ws.h.get()});  // x += Wdown g
  s.add(*ws.x, *ws.h, m.config().n_embd);
  ws.prof.mark(Stage::FFN);
}

}  // namespace

void forward_dense(const Model& m, const Batch& b, KvStore& kv, Workspace& ws, Stream& s) {
  s.embed(m.weights().token_embd, *ws.x);  // x = token_embd[tokens]
  ws.prof.mark(Stage::Embed);
  for (int layer = 0; layer < static_cast<int>(m.config().n_layer); ++layer) {
    attention_block(m, layer, b, kv, ws, s);  // x += attention(rmsnorm(x) * attn_norm)
    dense_ffn_block(m, layer, b, ws, s);      // x += Wdown(silu(Wgate h) * Wup h)
  }
  output_head(m, b, ws, s);  // logits = Wout (rmsnorm(x) * output_norm) (+ output.bias)
}

}  // namespace tessera::engine
