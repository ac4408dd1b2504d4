// Pieces shared by the qwen2 / qwen3 / qwen3moe forward passes: workspace, embedding lookup,
// the attention block, the dense SwiGLU FFN and the output head.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "engine/model/forward.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "gguf/codecs.h"

namespace tessera::engine {

namespace {
template <typename T>
uint64_t vec_bytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}
}  // namespace

Workspace::Workspace(const ModelConfig& c, int64_t n) : n_batch(n) {
  const size_t N = static_cast<size_t>(n);
  const size_t q_dim = static_cast<size_t>(c.n_head * c.head_dim), kv_dim = static_cast<size_t>(c.n_head_kv * c.head_dim);
  const size_t E = static_cast<size_t>(c.n_embd);
  x.resize(N * E);
  h.resize(N * E);
  q.resize(N * q_dim);
  k.resize(N * kv_dim);
  v.resize(N * kv_dim);
  attn.resize(N * q_dim);
  rope_cos.resize(N * static_cast<size_t>(c.head_dim / 2));
  rope_sin.resize(N * static_cast<size_t>(c.head_dim / 2));
  if (c.n_expert > 0) {
    const size_t K = static_cast<size_t>(c.n_expert_used), X = static_cast<size_t>(c.n_expert);
    router.resize(N * X);
    sel_expert.resize(N * K);
    sel_weight.resize(N * K);
    sel_row.resize(N * K);
    expert_count.resize(X);
    expert_offset.resize(X);
    expert_fill.resize(X);
    moe_x.resize(N > 1 ? N * K * E : 0);  // a single token is not gathered
    moe_gate.resize(N * K * static_cast<size_t>(c.n_ff_exp));
    moe_up.resize(N * K * static_cast<size_t>(c.n_ff_exp));
    moe_down.resize(N * K * E);
    jobs.reserve(2 * X + 3);
  } else {
    ffn_gate.resize(N * static_cast<size_t>(c.n_ff));
    ffn_up.resize(N * static_cast<size_t>(c.n_ff));
    jobs.reserve(3);
  }
  out_h.resize(N * E);
  pos.resize(N);
  out_rows.resize(N);
  block_table.resize(N);
}

uint64_t Workspace::bytes() const {
  return vec_bytes(x) + vec_bytes(h) + vec_bytes(q) + vec_bytes(k) + vec_bytes(v) + vec_bytes(attn) +
         vec_bytes(rope_cos) + vec_bytes(rope_sin) + vec_bytes(ffn_gate) + vec_bytes(ffn_up) + vec_bytes(router) +
         vec_bytes(sel_expert) + vec_bytes(sel_weight) + vec_bytes(sel_row) + vec_bytes(moe_x) +
         vec_bytes(moe_gate) + vec_bytes(moe_up) + vec_bytes(moe_down) + vec_bytes(out_h);
}

void forward(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool) {
  if (b.n_tokens <= 0) return;
  if (b.n_tokens > ws.n_batch) throw_error("forward: batch of {} tokens exceeds n_batch {}", b.n_tokens, ws.n_batch);
  ws.prof.begin(b.n_tokens, b.n_tokens == 1);
  const std::string& arch = m.config().arch;
  if (arch == "qwen3moe") return forward_qwen3moe(m, b, kv, ws, pool);
  if (arch == "qwen3") return forward_qwen3(m, b, kv, ws, pool);
  if (arch == "qwen2") return forward_qwen2(m, b, kv, ws, pool);
  throw_error("forward: architecture '{}' is not supported", arch);
}

void parallel_rows(ThreadPool& pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (pool.size() == 1 || n <= grain) return fn(0, n);
  const int64_t n_chunks = (n + grain - 1) / grain;
  pool.parallel_for(n_chunks, [&](int64_t c, int) { fn(c * grain, std::min(n, (c + 1) * grain)); });
}

void embed_tokens(const Model& m, const Batch& b, Workspace& ws) {
  const ModelConfig& c = m.config();
  const gguf::TensorInfo& emb = *m.weights().token_embd;
  const size_t row = emb.row_bytes();
  for (int64_t t = 0; t < b.n_tokens; ++t) {
    const int32_t id = b.tokens[t];
    if (id < 0 || id >= c.n_vocab) throw_error("token id {} is out of range (vocabulary of {})", id, c.n_vocab);
    dequantize_row(emb.type, emb.data + static_cast<size_t>(id) * row, ws.x.data() + t * c.n_embd, c.n_embd);
  }
  ws.prof.mark(Stage::Embed);
}

void prepare_rope(const Model& m, const Batch& b, Workspace& ws) {
  const ModelConfig& c = m.config();
  ops::rope_table(b.pos, b.n_tokens, c.head_dim, c.rope_base, ws.rope_cos.data(), ws.rope_sin.data());
}

void attention_block(const Model& m, int layer, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool) {
  const ModelConfig& c = m.config();
  const LayerWeights& L = m.weights().layers[static_cast<size_t>(layer)];
  const int64_t n = b.n_tokens, E = c.n_embd, hd = c.head_dim;
  const int64_t q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;

  // h = rmsnorm(x) * attn_norm
  parallel_rows(pool, n, 32, [&](int64_t t0, int64_t t1) {
    ops::rmsnorm(ws.x.data() + t0 * E, E, ws.h.data() + t0 * E, E, L.attn_norm, t1 - t0, E, c.eps);
  });
  ws.prof.mark(Stage::Norms);

  // q = Wq h, k = Wk h, v = Wv h  (one parallel region)
  const ops::MatmulJob qkv[3] = {
      {L.wq, ws.h.data(), E, n, ws.q.data(), q_dim},
      {L.wk, ws.h.data(), E, n, ws.k.data(), kv_dim},
      {L.wv, ws.h.data(), E, n, ws.v.data(), kv_dim},
  };
  ops::matmul(qkv, pool);
  ws.prof.mark(Stage::QKV);

  // per token: biases (qwen2), QK-norm (qwen3), RoPE, K and V into the f16 cache
  parallel_rows(pool, n, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* qt = ws.q.data() + t * q_dim;
      float* kt = ws.k.data() + t * kv_dim;
      float* vt = ws.v.data() + t * kv_dim;
      if (L.bq) {  // qwen2: projection biases
        ops::add(qt, L.bq, q_dim);
        ops::add(kt, L.bk, kv_dim);
        ops::add(vt, L.bv, kv_dim);
      }
      if (L.q_norm) {  // qwen3: QK-norm, rmsnorm of each head
        ops::rmsnorm(qt, hd, qt, hd, L.q_norm, c.n_head, hd, c.eps);
        ops::rmsnorm(kt, hd, kt, hd, L.k_norm, c.n_head_kv, hd, c.eps);
      }
      // RoPE, NEOX pairs (i, i + hd/2), at the token's position
      const float* cs = ws.rope_cos.data() + t * (hd / 2);
      const float* sn = ws.rope_sin.data() + t * (hd / 2);
      ops::rope_neox(qt, c.n_head, hd, cs, sn);
      ops::rope_neox(kt, c.n_head_kv, hd, cs, sn);
      kv.store(layer, b.block_table[t], b.pos[t], kt, vt);
    }
  });
  ws.prof.mark(Stage::RopeKV);

  // attn = softmax(q k^T / sqrt(hd), causal) v, query head h on KV head h / (n_head / n_head_kv)
  ops::AttentionArgs a;
  a.n_tokens = n;
  a.n_head = static_cast<int>(c.n_head);
  a.n_head_kv = static_cast<int>(c.n_head_kv);
  a.head_dim = static_cast<int>(hd);
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.q = ws.q.data();
  a.q_stride = q_dim;
  a.out = ws.attn.data();
  a.out_stride = q_dim;
  a.pos = b.pos;
  a.block_table = b.block_table;
  a.k_cache = kv.k_layer(layer);
  a.v_cache = kv.v_layer(layer);
  a.block_elems = kv.head_block_elems();
  a.head_stride = kv.head_stride();
  ops::attention(a, pool);
  ws.prof.mark(Stage::Attention);

  // x = x + Wo attn
  ops::matmul(ops::MatmulJob{L.wo, ws.attn.data(), q_dim, n, ws.h.data(), E}, pool);
  parallel_rows(pool, n, 64, [&](int64_t t0, int64_t t1) { ops::add(ws.x.data() + t0 * E, ws.h.data() + t0 * E, (t1 - t0) * E); });
  ws.prof.mark(Stage::AttnOut);
}

void dense_ffn_block(const Model& m, int layer, const Batch& b, Workspace& ws, ThreadPool& pool) {
  const ModelConfig& c = m.config();
  const LayerWeights& L = m.weights().layers[static_cast<size_t>(layer)];
  const int64_t n = b.n_tokens, E = c.n_embd, F = c.n_ff;

  // h = rmsnorm(x) * ffn_norm
  parallel_rows(pool, n, 32, [&](int64_t t0, int64_t t1) {
    ops::rmsnorm(ws.x.data() + t0 * E, E, ws.h.data() + t0 * E, E, L.ffn_norm, t1 - t0, E, c.eps);
  });
  // g = Wgate h, u = Wup h
  const ops::MatmulJob gate_up[2] = {
      {L.ffn_gate, ws.h.data(), E, n, ws.ffn_gate.data(), F},
      {L.ffn_up, ws.h.data(), E, n, ws.ffn_up.data(), F},
  };
  ops::matmul(gate_up, pool);
  // g = silu(g) * u
  parallel_rows(pool, n, 16, [&](int64_t t0, int64_t t1) {
    ops::swiglu(ws.ffn_gate.data() + t0 * F, ws.ffn_up.data() + t0 * F, (t1 - t0) * F);
  });
  // x = x + Wdown g
  ops::matmul(ops::MatmulJob{L.ffn_down, ws.ffn_gate.data(), F, n, ws.h.data(), E}, pool);
  parallel_rows(pool, n, 64, [&](int64_t t0, int64_t t1) { ops::add(ws.x.data() + t0 * E, ws.h.data() + t0 * E, (t1 - t0) * E); });
  ws.prof.mark(Stage::FFN);
}

void output_head(const Model& m, const Batch& b, Workspace& ws, ThreadPool& pool) {
  if (b.n_out <= 0) return;
  const ModelConfig& c = m.config();
  const ModelWeights& W = m.weights();
  const int64_t E = c.n_embd, V = c.n_vocab;
  // out_h = rmsnorm(x[row]) * output_norm for the requested rows
  for (int64_t i = 0; i < b.n_out; ++i)
    ops::rmsnorm(ws.x.data() + static_cast<int64_t>(b.out_rows[i]) * E, E, ws.out_h.data() + i * E, E,
                 W.output_norm, 1, E, c.eps);
  // logits = Wout out_h
  ops::matmul(ops::MatmulJob{W.output, ws.out_h.data(), E, b.n_out, b.logits, V}, pool);
  if (W.output_bias)
    for (int64_t i = 0; i < b.n_out; ++i) ops::add(b.logits + i * V, W.output_bias, V);
  ws.prof.mark(Stage::Output);
}

void StageProfile::print() const {
  static const char* names[] = {"embed",         "norms",        "qkv matmul",  "rope+kv store", "attention",
                                "attn out",      "router",       "routing",     "experts gate+up", "experts down",
                                "experts sum",   "dense ffn",    "output head"};
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
