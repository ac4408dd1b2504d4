// The mixture-of-experts forward pass (qwen3moe: Qwen3-30B-A3B, Qwen3-Coder-30B-A3B): per layer,
// attention with QK-norm and NEOX RoPE, then a mixture of experts: softmax router over all experts,
// top-k, renormalised weights, SwiGLU experts, weighted sum. Formulas: shared reference "qwen3moe forward".
#include "engine/model/forward.h"

namespace tessera::engine {

namespace {

// x += sum_j w_j * Wdown_j(silu(Wgate_j h) * Wup_j h) over the k experts the router picks for each
// token, h = rmsnorm(x) * ffn_norm.
void moe_block(const Model& m, int layer, const Batch& b, Workspace& ws, Stream& s) {
  const LayerWeights& L = m.weights().layers[static_cast<size_t>(layer)];
  s.rmsnorm(*ws.x, *ws.h, L.ffn_norm, b.n_tokens);          // h = rmsnorm(x) * ffn_norm
  ws.prof.mark(Stage::Norms);
  s.matmul(MatmulCall{&L.router, ws.h.get(), ws.router.get()});  // r = Wr h
  ws.prof.mark(Stage::Router);
  s.route(*ws.router, *ws.expert_ids, *ws.expert_w);  // ids = top-k(softmax(r)), w = renormalised p
  ws.prof.mark(Stage::Routing);
  s.moe(L.gate_exps, L.up_exps, L.down_exps, *ws.h, *ws.expert_ids, *ws.expert_w, *ws.x);
  ws.prof.mark(Stage::Experts);
}

}  // namespace

void forward_moe(const Model& m, const Batch& b, KvStore& kv, Workspace& ws, Stream& s) {
  s.embed(m.weights().token_embd, *ws.x);  // x = token_embd[tokens]
  ws.prof.mark(Stage::Embed);
  for (int layer = 0; layer < static_cast<int>(m.config().n_layer); ++layer) {
    attention_block(m, layer, b, kv, ws, s);  // x += attention(rmsnorm(x) * attn_norm)
    moe_block(m, layer, b, ws, s);            // x += experts(rmsnorm(x) * ffn_norm)
  }
  output_head(m, b, ws, s);  // logits = Wout (rmsnorm(x) * output_norm)
}

}  // namespace tessera::engine
