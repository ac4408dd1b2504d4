// Pieces shared by the forward passes: workspace, the dispatch by architecture, the attention block
// and the output head.
#include <cstdio>

#include "core/error.h"
#include "engine/model/forward.h"

namespace tessera::engine {

Workspace::Sizes Workspace::sizes(const ModelConfig& c, int64_t n) {
  const size_t N = static_cast<size_t>(n), F = sizeof(float);
  const size_t q_dim = static_cast<size_t>(c.n_head * c.head_dim), kv_dim = static_cast<size_t>(c.n_head_kv * c.head_dim);
  const size_t E = static_cast<size_t>(c.n_embd);
  Sizes s;
  s.x = s.h = s.out_h = N * E * F;
  s.q = s.attn = N * q_dim * F;
  s.k = s.v = N * kv_dim * F;
  if (c.n_expert > 0) {
    const size_t K = static_cast<size_t>(c.n_expert_used);
    s.router = N * static_cast<size_t>(c.n_expert) * F;
    s.expert_ids = N * K * sizeof(int32_t);
    s.expert_w = N * K * F;
  } else {
    s.ffn_gate = s.ffn_up = N * static_cast<size_t>(c.n_ff) * F;
  }
  return s;
}

Workspace::Workspace(Backend& be, const ModelConfig& c, int64_t n) : n_batch(n) {
  const Sizes s = sizes(c, n);
  auto buf = [&be](size_t bytes) { return bytes > 0 ? be.alloc(bytes) : nullptr; };
  x = buf(s.x);
  h = buf(s.h);
  q = buf(s.q);
  k = buf(s.k);
  v = buf(s.v);
  attn = buf(s.attn);
  ffn_gate = buf(s.ffn_gate);
  ffn_up = buf(s.ffn_up);
  router = buf(s.router);
  expert_ids = buf(s.expert_ids);
  expert_w = buf(s.expert_w);
  out_h = buf(s.out_h);
}

uint64_t Workspace::bytes() const {
  uint64_t total = 0;
  for (const auto* b : {&x, &h, &q, &k, &v, &attn, &ffn_gate, &ffn_up, &router, &expert_ids, &expert_w, &out_h})
    if (*b) total += (*b)->bytes();
  return total;
}

void forward(const Model& m, const Batch& b, KvStore& kv, Workspace& ws, Stream& s) {
  if (b.n_tokens <= 0) return;
  if (b.n_tokens > ws.n_batch) throw_error("forward: batch of {} tokens exceeds n_batch {}", b.n_tokens, ws.n_batch);
  ws.prof.stream = &s;
  ws.prof.begin(b.n_tokens, b.n_tokens == 1);
  s.begin(b);
  s.set_layer(-1);
  m.arch().forward(m, b, kv, ws, s);
  s.sync();
}

void attention_block(const Model& m, int layer, const Batch& b, KvStore& kv, Workspace& ws, Stream& s) {
  const ModelConfig& c = m.config();
  const int64_t n = b.n_tokens;
  const LayerWeights& L = m.weights().layers[static_cast<size_t>(layer)];

  s.set_layer(layer);  // every layer starts with its attention block
  s.rmsnorm(*ws.x, *ws.h, L.attn_norm, n);  // h = rmsnorm(x) * attn_norm
  ws.prof.mark(Stage::Norms);
  const MatmulCall qkv[] = {{&L.wq, ws.h.get(), ws.q.get()},   // q = Wq h
                            {&L.wk, ws.h.get(), ws.k.get()},   // k = Wk h
                            {&L.wv, ws.h.get(), ws.v.get()}};  // v = Wv h
  s.matmul(qkv);
  ws.prof.mark(Stage::QKV);
  if (L.bq) {  // qwen2: projection biases
    s.add_bias(*ws.q, L.bq, n);
    s.add_bias(*ws.k, L.bk, n);
    s.add_bias(*ws.v, L.bv, n);
  }
  if (L.q_norm) {  // qwen3: QK-norm, rmsnorm of each head
    s.rmsnorm(*ws.q, *ws.q, L.q_norm, n * c.n_head);
    s.rmsnorm(*ws.k, *ws.k, L.k_norm, n * c.n_head_kv);
  }
  s.rope(*ws.q, c.n_head);  // NEOX pairs (i, i + head_dim/2), llama NORM pairs (2i, 2i+1), at each token's position
  s.rope(*ws.k, c.n_head_kv);
  s.kv_store(kv, layer, *ws.k, *ws.v);
  ws.prof.mark(Stage::RopeKV);
  s.attention(kv, layer, *ws.q, *ws.attn);  // attn = softmax(q k^T / sqrt(hd), causal) v
  ws.prof.mark(Stage::Attention);
  s.matmul(MatmulCall{&L.wo, ws.attn.get(), ws.h.get()});  // x = x + Wo attn
  s.add(*ws.x, *ws.h, c.n_embd);
  ws.prof.mark(Stage::AttnOut);
}

void output_head(const Model& m, const Batch& b, Workspace& ws, Stream& s) {
  s.set_layer(-1);
  if (b.n_out <= 0) return;
  const ModelWeights& W = m.weights();
  s.gather_out_rows(*ws.x, *ws.out_h);                  // the rows whose logits are wanted
  s.rmsnorm(*ws.out_h, *ws.out_h, W.output_norm, b.n_out);  // h = rmsnorm(x) * output_norm
  s.logits(W.output, W.output_bias, *ws.out_h, b.logits);   // logits = Wout h (+ bias)
  ws.prof.mark(Stage::Output);
}

void StageProfile::print() const {
  static const char* names[] = {"embed",    "norms",  "qkv matmul", "rope+kv store", "attention", "attn out",
                                "router",   "routing", "experts",   "dense ffn",     "output head"};
  for (int k = 0; k < 2; ++k) {
    if (forwards[k] == 0) continue;
    double total = 0;
    for (double v : ms[k]) total += v;
    std::fprintf(stderr, "tessera: profile (%s): %lld forward passes, %lld tokens, %.1f ms\n",
                 k == 0 ? "decode" : "batch", static_cast<long long>(forwards[k]), static_cast<long long>(tokens[k]), total);
    for (int i = 0; i < static_cast<int>(Stage::kCount); ++i)
      if (ms[k][i] > 0)
        std::fprintf(stderr, "tessera:   %-16s %9.1f ms %5.1f%%  %8.3f ms/pass\n", names[i], ms[k][i], 100.0 * ms[k][i] / total,
                     ms[k][i] / static_cast<double>(forwards[k]));
  }
}

}  // namespace tessera::engine
