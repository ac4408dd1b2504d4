// The HIP backends' Stream: every op is one or a few kernel launches (kernels/hip/*.hip) on the device
// (hip_device.h), in order; host results (logits) are copied at sync(). Batches: one wave per output
// row for the products, one wave per (head, token) for attention (per range of keys and head when a few
// tokens read a long context), the MoE as gate, up, swiglu, down and a weighted sum over all (token,
// expert) pairs with the router's ids on the device.
// Batches of >= 8 tokens on gfx12 (and the emulator): products on the matrix cores (matmul_wmma), the
// MoE expert-grouped (use_wmma / moe_wmma below).
// Decode (one token): some ops wait for the next one to launch together (kernels/hip/fused.hip):
// a row's rmsnorm with the GEMVs that read it, GEMVs with their biases, a GEMV with the residual add or
// the router's top-k after it, a dense FFN's gate and up with the SwiGLU, QK-norms and RoPEs with the
// KV store, the output row's gather and norm with the head; the MoE in two launches. A layer of
// qwen3moe is 7 launches, of a dense model 6. Any other op first launches what waits (settle).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/backend/device_batch.h"
#include "engine/backend/hip/hip_backend.h"
#include "engine/model/model.h"
#include "kernels/hip/hip_args.h"

namespace tessera::engine {

namespace {

using hip::BatchView;

uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }
int32_t i32v(int64_t v) { return static_cast<int32_t>(v); }

bool has_matmul_kernel(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::IQ4_NL: case GgmlType::Q4_K:
    case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_XS: case GgmlType::MXFP4:
      return true;
    default: return false;
  }
}
bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

void* dev_of(const std::shared_ptr<void>& p, const char* what) {
  if (!p) throw_error("hip: {} was not uploaded to this backend", what);
  return static_cast<hipdev::Mem*>(p.get())->ptr;
}

class HipStream final : public Stream {
 public:
  // TESSERA_HIP_UNFUSED=1: one launch per op also in decode (the fused kernels' A/B reference).
  HipStream(std::shared_ptr<hipdev::Device> d, const ModelConfig& c)
      : d_(std::move(d)), c_(c), fuse_(!std::getenv("TESSERA_HIP_UNFUSED")) {
    if (const char* v = std::getenv("TESSERA_HIP_WMMA_MIN_TOKENS"); v && *v) wmma_min_tokens_ = std::atoll(v);
  }

  void begin(const Batch& b) override {
    sync();  // settles
    b_ = b;
    const int64_t n = b.n_tokens;
    const std::vector<uint32_t> w = device_batch_words(b);
    view_ = {nullptr, u32(n), u32(n), u32(2 * n), u32(3 * n)};
    view_.words = static_cast<const uint32_t*>(put(batch_, w.data(), w.size() * 4));
    const std::vector<float> cs = rope_cos_sin(c_, b);
    rope_cs_ = static_cast<const float*>(put(rope_, cs.data(), cs.size() * 4));
  }

  void embed(const Table& table, Buffer& x) override {
    const gguf::TensorInfo& t = *table.tensor;
    for (int64_t i = 0; i < b_.n_tokens; ++i)
      if (b_.tokens[i] < 0 || b_.tokens[i] >= t.ne[1])
        throw_error("token id {} is out of range (vocabulary of {})", b_.tokens[i], t.ne[1]);
    check_type(t.type, "embedding table");
    if (b_.n_tokens == 0) return;
    settle();
    hip::EmbedArgs a{static_cast<const uint8_t*>(dev_of(table.device, "the embedding table")), hf32(x), view_,
                     static_cast<int64_t>(t.row_bytes()), i32v(t.ne[0]), static_cast<int32_t>(t.type)};
    launch("embed_rows", {u32(b_.n_tokens), 1}, 256, a, b_.n_tokens * t.row_bytes(), b_.n_tokens * t.ne[0] * 4);
  }

  void rmsnorm(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) override {
    if (rows <= 0) return;
    const int64_t n = b_.n_tokens;
    if (!fuse_) {
      rmsnorm_now(x, y, w, rows);
      return;
    }
    if (gather_ && gather_->out == &x && &x == &y && rows == 1 && act_ok(GgmlType::F32, w.n)) {  // the output row
      norm_ = NormOp{gather_->x, &y, w, true};
      gather_.reset();
      return;
    }
    if (&x == &y && w.n == c_.head_dim && c_.head_dim <= 256 && n > 0 && rows % n == 0) {  // a QK-norm
      HeadOp& h = head_slot(&y, true);  // waits for its rope and the KV store
      h.norm = w;
      h.n_head = rows / n;
      return;
    }
    settle();
    if (rows == 1 && n == 1 && &x != &y && act_ok(GgmlType::F32, w.n)) {  // waits for the GEMVs of its row
      norm_ = NormOp{&x, &y, w, false};
      return;
    }
    rmsnorm_now(x, y, w, rows);
  }

  void rmsnorm_now(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) {
    hip::RmsnormArgs a{hf32(x), hf32(y), static_cast<const float*>(dev_of(w.device, "a norm weight")), i32v(w.n),
                       static_cast<float>(c_.eps)};
    launch("rmsnorm_f32", {u32(rows), 1}, 32, a, (rows + 1) * w.n * 4, rows * w.n * 4);
  }

  void rope(Buffer& x, int64_t n_head) override {
    if (b_.n_tokens == 0) return;
    if (fuse_ && c_.head_dim <= 256 && c_.head_dim % 2 == 0) {  // waits for the KV store (or the next op)
      HeadOp& h = head_slot(&x, false);
      if (!h.norm || h.n_head == n_head) {
        h.rope = true;
        h.n_head = n_head;
        return;
      }
    }
    settle();
    rope_now(x, n_head);
  }

  void rope_now(Buffer& x, int64_t n_head) {
    hip::RopeArgs a{hf32(x), rope_cs_, i32v(n_head), i32v(c_.head_dim), c_.rope_type == ops::RopeType::Neox ? 1 : 0};
    const uint64_t bytes = static_cast<uint64_t>(b_.n_tokens * n_head * c_.head_dim * 4);
    launch("rope_f32", {u32(n_head), u32(b_.n_tokens)}, u32(std::max<int64_t>(c_.head_dim / 2, 1)), a, bytes, bytes);
  }

  void kv_store(KvStore& kv, int layer, const Buffer& k, const Buffer& v) override {
    auto& s = static_cast<HipKv&>(kv);
    if (b_.n_tokens == 0) return;
    const HeadOp* hk = head_op(&k);
    if (hk && hk->rope && hk->n_head == s.shape.n_head_kv && s.shape.head_dim == c_.head_dim && !head_op(&v)) {
      heads_now(s, layer, k, v);  // with k's (and q's) QK-norm and RoPE
      return;
    }
    settle();
    hip::KvStoreArgs a{hf32(k), hf32(v), static_cast<uint16_t*>(s.k->ptr), static_cast<uint16_t*>(s.v->ptr), view_,
                       s.shape.n_head_kv, s.shape.head_dim, s.shape.n_blocks, layer, ops::kKvBlock};
    const uint64_t n = static_cast<uint64_t>(b_.n_tokens * s.shape.n_head_kv * s.shape.head_dim);
    launch("kv_store_f16", {u32(b_.n_tokens), 1}, 256, a, 2 * n * 4, 2 * n * 2);
  }

  void kv_copy(KvStore& kv, int dst, int src) override {
    settle();
    auto& s = static_cast<HipKv&>(kv);
    const size_t blk = static_cast<size_t>(ops::kKvBlock) * s.shape.n_head_kv * s.shape.head_dim * 2;
    for (int l = 0; l < s.shape.n_layer; ++l)
      for (const auto& m : {s.k, s.v}) {
        uint8_t* base = static_cast<uint8_t*>(m->ptr);
        d_->copy(base + (static_cast<size_t>(l) * s.shape.n_blocks + dst) * blk,
                 base + (static_cast<size_t>(l) * s.shape.n_blocks + src) * blk, blk);
      }
  }

  void attention(KvStore& kv, int layer, const Buffer& q, Buffer& out) override {
    auto& s = static_cast<HipKv&>(kv);
    if (b_.n_tokens == 0) return;
    settle();
    hip::AttentionArgs a{hf32(q), hf32(out), static_cast<const uint16_t*>(s.k->ptr), static_cast<const uint16_t*>(s.v->ptr),
                         view_, i32v(c_.n_head), s.shape.n_head_kv, s.shape.head_dim, s.shape.n_blocks, layer,
                         ops::kKvBlock, static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.shape.head_dim))),
                         nullptr, nullptr, 1, 0};
    uint64_t keys = 0;
    int64_t ctx = 0;
    for (int64_t t = 0; t < b_.n_tokens; ++t) {
      keys += static_cast<uint64_t>(b_.pos[t] + 1);
      ctx = std::max<int64_t>(ctx, b_.pos[t] + 1);
    }
    const uint64_t row = static_cast<uint64_t>(c_.n_head * s.shape.head_dim * 4);
    // K and V of each key once per KV head group (a device cache serves the heads that share them)
    const uint64_t rd = b_.n_tokens * row + keys * 2 * s.shape.n_head_kv * s.shape.head_dim * 2;
    // decode over a long context: a block per range of keys (kSplitKeys, at most kMaxSplit ranges)
    constexpr int64_t kSplitMinKeys = 512, kSplitKeys = 256, kMaxSplit = 64, kMaxSplitTokens = 4;
    if (b_.n_tokens > kMaxSplitTokens || ctx < kSplitMinKeys) {
      launch("attention_f16", {u32(c_.n_head), u32(b_.n_tokens)}, 32, a, rd, b_.n_tokens * row);
      return;
    }
    const int64_t n_split = std::min((ctx + kSplitKeys - 1) / kSplitKeys, kMaxSplit);
    a.n_split = i32v(n_split);
    a.range = i32v(((ctx + n_split - 1) / n_split + hip::kWave - 1) / hip::kWave * hip::kWave);
    const int64_t heads = b_.n_tokens * c_.n_head, part = heads * n_split * (s.shape.head_dim + 2);
    a.part = scratch_f32(part);
    if (!attn_counter_ || attn_counter_->bytes < static_cast<size_t>(heads) * 4)
      attn_counter_ = std::make_shared<hipdev::Mem>(d_, static_cast<size_t>(heads) * 4);  // zeroed
    a.counter = static_cast<uint32_t*>(attn_counter_->ptr);
    launch("attention_split_f16", {u32(n_split * c_.n_head), u32(b_.n_tokens)}, 32, a, rd + part * 4,
           b_.n_tokens * row + part * 4);
  }

  void matmul(std::span<const MatmulCall> calls) override {
    // a batch the WMMA kernels take (TESSERA_HIP_WMMA_MIN_TOKENS can force 1 token) is not a fused decode
    const bool any_wmma = std::any_of(calls.begin(), calls.end(), [&](const MatmulCall& c) {
      return use_wmma(*c.w, c.rows < 0 ? b_.n_tokens : c.rows);
    });
    if (fuse_ && !any_wmma && decode_gemvs(calls)) return;
    settle();
    const Buffer* last_x = nullptr;  // q, k and v often share x: quantize it once
    int last_act = -1;
    Acts acts;
    for (const MatmulCall& c : calls) {
      const int64_t rows = c.rows < 0 ? b_.n_tokens : c.rows;
      if (rows == 0) continue;
      if (use_wmma(*c.w, rows)) {
        wmma(*c.w, hf32(*c.x), hf32(*c.y), rows);
        continue;
      }
      const int act = act_kind(c.w->view.type);
      if (c.x != last_x || act != last_act) acts = activations(*c.w, hf32(*c.x), rows);
      last_x = c.x;
      last_act = act;
      gemv(*c.w, acts, hf32(*c.y), rows, nullptr, 1);
    }
  }

  void add_bias(Buffer& y, const Vector& b, int64_t rows) override {
    for (GemvOp& g : gemvs_)
      if (g.y == &y && !g.bias && rows == 1 && b.n == g.w->view.n_out) {  // qwen2's q, k, v biases
        g.bias = b;
        return;
      }
    settle();
    elementwise("add_f32", hf32(y), static_cast<const float*>(dev_of(b.device, "a bias")), rows * b.n, b.n);
  }
  void add(Buffer& y, const Buffer& x, int64_t n) override {
    const GemvOp* p = gemvs_.size() == 1 ? &gemvs_[0] : nullptr;
    if (p && p->y == &x && b_.n_tokens == 1 && n == p->w->view.n_out && &y != p->x && &y != p->y && !(p->norm && p->norm->x == &y)) {
      const GemvOp g = *p;  // y += W x' in one launch
      gemvs_.clear();
      gemv_now({&g, 1}, hf32(y));
      return;
    }
    settle();
    elementwise("add_f32", hf32(y), hf32(x), b_.n_tokens * n, b_.n_tokens * n);
  }
  void swiglu(Buffer& g, const Buffer& u, int64_t n) override {
    if (gemvs_.size() == 2 && gemvs_[0].y == &g && gemvs_[1].y == &u && n == gemvs_[0].w->view.n_out &&
        n == gemvs_[1].w->view.n_out) {  // a dense FFN's gate and up: with their GEMVs
      std::vector<GemvOp> gu;
      gu.swap(gemvs_);
      gemv_now(gu, nullptr, nullptr, nullptr, true);
      return;
    }
    settle();
    elementwise("swiglu_f32", hf32(g), hf32(u), b_.n_tokens * n, b_.n_tokens * n);
  }

  void route(const Buffer& logits, Buffer& ids, Buffer& w) override {
    if (c_.n_expert > 512 || c_.n_expert_used > c_.n_expert)
      throw_error("hip: route of {} of {} experts (at most 512)", c_.n_expert_used, c_.n_expert);
    if (b_.n_tokens == 0) return;
    if (gemvs_.size() == 1 && gemvs_[0].y == &logits && b_.n_tokens == 1 && gemvs_[0].w->view.n_out == c_.n_expert) {
      const GemvOp g = gemvs_[0];  // with the router GEMV
      gemvs_.clear();
      gemv_now({&g, 1}, nullptr, static_cast<int32_t*>(hptr(ids)), hf32(w));
      return;
    }
    settle();
    hip::RouteArgs a{hf32(logits), static_cast<int32_t*>(hptr(ids)), hf32(w), i32v(c_.n_expert), i32v(c_.n_expert_used)};
    launch("route_topk", {u32(b_.n_tokens), 1}, 32, a, b_.n_tokens * c_.n_expert * 4, b_.n_tokens * c_.n_expert_used * 8);
  }

  void moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
           const Buffer& w, Buffer& x) override {
    const int64_t n = b_.n_tokens, K = c_.n_expert_used, pairs = n * K, E = down.view.n_out, F = gate.view.n_out;
    if (n == 0) return;
    settle();
    if (moe_wmma(gate, up, down, h, ids, w, x)) return;
    if (fuse_ && n == 1 && moe_decode(gate, up, down, h, ids, w, x)) return;
    float* g = scratch_f32(pairs * F);
    float* u = scratch_f32(pairs * F);
    float* y = scratch_f32(pairs * E);
    const int32_t* id = static_cast<const int32_t*>(hptr(ids));
    Acts hq = activations(gate, hf32(h), n);
    gemv(gate, hq, g, pairs, id, K);
    if (act_kind(up.view.type) != act_kind(gate.view.type)) hq = activations(up, hf32(h), n);
    gemv(up, hq, u, pairs, id, K);
    elementwise("swiglu_f32", g, u, pairs * F, pairs * F);
    gemv(down, activations(down, g, pairs), y, pairs, id, 1);
    hip::MoeSumArgs a{hf32(x), y, hf32(w), n * E, i32v(E), i32v(K)};
    launch("moe_sum_f32", grid((n * E + 255) / 256), 256, a, (pairs + n) * E * 4 + pairs * 4, n * E * 4);
  }

  void gather_out_rows(const Buffer& x, Buffer& out) override {
    if (b_.n_out == 0) return;
    settle();
    if (fuse_ && b_.n_out == 1 && &x != &out) {  // waits for the output norm and head
      gather_ = GatherOp{&x, &out};
      return;
    }
    gather_now(x, out);
  }

  void gather_now(const Buffer& x, Buffer& out) {
    hip::GatherArgs a{hf32(x), hf32(out), view_, i32v(c_.n_embd), i32v(b_.n_out)};
    launch("gather_rows_f32", {u32(b_.n_out), 1}, 256, a, b_.n_out * c_.n_embd * 4, b_.n_out * c_.n_embd * 4);
  }

  void logits(const Matrix& w, const Vector& bias, const Buffer& h, float* host) override {
    if (b_.n_out == 0) return;
    const int64_t n = b_.n_out * w.view.n_out;
    float* out = scratch_f32(n);
    std::optional<NormOp> norm;
    if (norm_ && norm_->y == &h) norm.swap(norm_);
    settle();
    if (fuse_ && b_.n_out == 1 && !use_wmma(w, 1) && act_ok(w.view.type, w.view.n_in)) {
      GemvOp g{&w, &h, nullptr, norm, out};
      gemv_now({&g, 1});
    } else {
      if (norm) emit_norm(*norm);
      if (use_wmma(w, b_.n_out))
        wmma(w, hf32(h), out, b_.n_out);
      else
        gemv(w, activations(w, hf32(h), b_.n_out), out, b_.n_out, nullptr, 1);
    }
    if (bias) elementwise("add_f32", out, static_cast<const float*>(dev_of(bias.device, "the output bias")), n, bias.n);
    after_sync_.push_back({out, host, static_cast<size_t>(n) * sizeof(float)});
  }

  void sync() override {
    settle();
    d_->sync();
    for (const HostCopy& c : after_sync_) d_->download(c.dst, c.src, c.bytes);
    after_sync_.clear();
    scratch_used_ = 0;
  }

 private:
  struct HostCopy {
    const float* src;
    float* dst;
    size_t bytes;
  };
  struct Grid {
    uint32_t x, y;
  };
  // Activations as a weight type's kernel reads them.
  struct Acts {
    const int8_t* xq = nullptr;
    const float* xd = nullptr;
    const float* xf = nullptr;
    uint64_t bytes = 0;  // per row
  };

  // n blocks as x * y (x <= 65535); kernels compute their flat index from both.
  static Grid grid(int64_t n) {
    const int64_t x = std::min<int64_t>(std::max<int64_t>(n, 1), 65535);
    return {u32(x), u32((n + x - 1) / x)};
  }

  static void check_type(GgmlType t, const char* what) {
    if (!has_matmul_kernel(t))
      throw_error("hip: {} of type {} has no kernel yet (supported: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl q4_K q5_K q6_K)",
                  what, type_name(t));
  }

  // 0 Q8_0 (also for Q8_1 kernels: the block sums are not needed), 1 Q8_K, 2 F16, 3 BF16, 4 F32.
  static int act_kind(GgmlType t) {
    switch (ops::activation_type_for(t)) {
      case ops::ActType::Q8_0: case ops::ActType::Q8_1: return 0;
      case ops::ActType::Q8_K: return 1;
      case ops::ActType::F16: return 2;
      case ops::ActType::BF16: return 3;
      default: return 4;
    }
  }

  // x's `rows` rows of w.n_in values as w's kernel wants them (quantize_act; f32: x itself).
  Acts activations(const Matrix& w, const float* x, int64_t rows) {
    check_type(w.view.type, "a weight");
    const int act = act_kind(w.view.type);
    const int64_t n_in = w.view.n_in;
    Acts r;
    if (act == 4) {
      r.xf = x;
      r.bytes = static_cast<uint64_t>(n_in * 4);
      return r;
    }
    const int64_t bs = act == 1 ? 256 : 32;
    if (n_in % bs)
      throw_error("hip: rows of {} values cannot be quantized to {} (blocks of {})", n_in,
                  ops::act_type_name(ops::activation_type_for(w.view.type)), bs);
    hip::QuantizeArgs a{x, nullptr, nullptr, nullptr, i32v(n_in), act};
    if (act <= 1) {
      a.xq = static_cast<int8_t*>(scratch(static_cast<size_t>(rows * n_in)));
      a.xd = scratch_f32(rows * n_in / 32);
      r = {a.xq, a.xd, nullptr, static_cast<uint64_t>(n_in + n_in / 8)};
    } else {
      a.xf = scratch_f32(rows * n_in);
      r = {nullptr, nullptr, a.xf, static_cast<uint64_t>(n_in * 4)};
    }
    const int64_t blocks = n_in / bs;
    launch("quantize_act", {u32((blocks + 63) / 64), u32(rows)}, 64, a, rows * n_in * 4, rows * r.bytes);
    return r;
  }

  // y[z] = W_ids[z] x[z / x_div] for z < n_z (ids null: W itself).
  void gemv(const Matrix& w, const Acts& x, float* y, int64_t n_z, const int32_t* ids, int64_t x_div) {
    check_type(w.view.type, "a weight");
    hip::MatmulArgs a{static_cast<const uint8_t*>(dev_of(w.device, "a weight")), ids, x.xq, x.xd, x.xf, y,
                      static_cast<int64_t>(w.view.row_bytes), static_cast<int64_t>(w.mat_stride), i32v(w.view.n_in),
                      i32v(w.view.n_out), i32v(x_div), static_cast<int32_t>(w.view.type)};
    const uint64_t wbytes = static_cast<uint64_t>(w.view.n_out) * w.view.row_bytes;
    // weights once per matrix used (a plain product reads W once for all rows; an expert product once per pair)
    const uint64_t rd = (ids ? n_z : 1) * wbytes + static_cast<uint64_t>(n_z / x_div) * x.bytes;
    launch(is_float(w.view.type) ? "matmul_f" : "matmul_q8", {u32((w.view.n_out + 31) / 32), u32(n_z)}, 256, a, rd,
           n_z * w.view.n_out * 4);
  }

  // Batches of at least wmma_min_tokens_ rows go to the matrix cores where the device has gfx12 WMMA
  // (quantized weights; matmul_wmma.hip). 8 by default: the GEMV decodes every weight chunk again for
  // each token and reads the matrix once per token, the WMMA kernel once per 64 tokens; below 8 tokens
  // a 16-token tile is mostly padding and the GEMV's extra reads are few (a judgement, not measured on a
  // GPU). TESSERA_HIP_WMMA_MIN_TOKENS overrides it (tests force 1; a huge value turns WMMA off).
  bool use_wmma(const Matrix& w, int64_t rows) const { return rows >= wmma_min_tokens_ && wmma_type(w); }
  bool wmma_type(const Matrix& w) const {
    return d_->has_wmma_gfx12() && !is_float(w.view.type) && w.view.n_in % 32 == 0;
  }

  // MoE of a batch of at least wmma_min_tokens_ tokens on the matrix cores: the (token, slot) pairs
  // sorted by expert on the device (moe_group), then gate, up and down as expert-grouped WMMA products
  // (each used expert's matrix read once per 64 of its pairs instead of once per pair). False: not
  // applicable (few tokens, no gfx12, a float or odd-sized matrix), the caller's per-pair path runs.
  bool moe_wmma(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
                const Buffer& w, Buffer& x) {
    const int64_t n = b_.n_tokens, K = c_.n_expert_used, pairs = n * K, E = down.view.n_out, F = gate.view.n_out;
    const int64_t n_exp = c_.n_expert, tiles = (n + 63) / 64;  // an expert has at most n pairs (one per token)
    if (n < wmma_min_tokens_ || !wmma_type(gate) || !wmma_type(up) || !wmma_type(down)) return false;
    if (n_exp > 512 || n_exp * tiles > 65535) return false;  // moe_group's counts; grid.y
    hip::MoeGroupArgs ga{static_cast<const int32_t*>(hptr(ids)), static_cast<int32_t*>(scratch(static_cast<size_t>(pairs) * 4)),
                         static_cast<int32_t*>(scratch(static_cast<size_t>(n_exp + 1) * 4)), i32v(pairs), i32v(n_exp)};
    launch("moe_group", {1, 1}, 256, ga, pairs * 4, (pairs + n_exp + 1) * 4);
    float* g = scratch_f32(pairs * F);
    float* u = scratch_f32(pairs * F);
    float* y = scratch_f32(pairs * E);
    wmma_grouped(gate, hf32(h), g, ga, K, tiles);
    wmma_grouped(up, hf32(h), u, ga, K, tiles);
    elementwise("swiglu_f32", g, u, pairs * F, pairs * F);
    wmma_grouped(down, g, y, ga, 1, tiles);
    hip::MoeSumArgs a{hf32(x), y, hf32(w), n * E, i32v(E), i32v(K)};
    launch("moe_sum_f32", grid((n * E + 255) / 256), 256, a, (pairs + n) * E * 4 + pairs * 4, n * E * 4);
    return true;
  }

  // y[z] = W_e x[z / x_div] over the grouped pairs z of every expert e.
  void wmma_grouped(const Matrix& w, const float* x, float* y, const hip::MoeGroupArgs& g, int64_t x_div, int64_t tiles) {
    check_type(w.view.type, "a weight");
    hip::WmmaMatmulArgs a{static_cast<const uint8_t*>(dev_of(w.device, "a weight")), x, y, g.pairs, g.starts,
                          static_cast<int64_t>(w.view.row_bytes), static_cast<int64_t>(w.mat_stride), i32v(w.view.n_in),
                          i32v(w.view.n_out), g.n_pairs, static_cast<int32_t>(w.view.type), i32v(x_div), i32v(tiles)};
    const Grid gr{u32((w.view.n_out + 63) / 64), u32(g.n_expert * tiles)};
    // the used experts' matrices about once (a bound: every expert's), x once per 64 output rows
    const uint64_t wbytes = static_cast<uint64_t>(w.view.n_out) * w.view.row_bytes;
    const uint64_t rd = std::min<uint64_t>(static_cast<uint64_t>(g.n_pairs), static_cast<uint64_t>(g.n_expert)) * wbytes +
                        gr.x * static_cast<uint64_t>(g.n_pairs / x_div * w.view.n_in) * 4 + static_cast<uint64_t>(g.n_pairs) * 4;
    launch("matmul_wmma", gr, 128, a, rd, static_cast<uint64_t>(g.n_pairs) * w.view.n_out * 4);
  }

  // y[t] = W x[t] for t < rows with f16 operands and f32 sums (x rounded to f16, W dequantized to f16).
  void wmma(const Matrix& w, const float* x, float* y, int64_t rows) {
    check_type(w.view.type, "a weight");
    hip::WmmaMatmulArgs a{static_cast<const uint8_t*>(dev_of(w.device, "a weight")), x, y, nullptr, nullptr,
                          static_cast<int64_t>(w.view.row_bytes), 0, i32v(w.view.n_in), i32v(w.view.n_out), i32v(rows),
                          static_cast<int32_t>(w.view.type), 1, 1};
    const Grid g{u32((w.view.n_out + 63) / 64), u32((rows + 63) / 64)};
    // W once per 64 tokens, x once per 64 output rows (staged tiles)
    const uint64_t rd = g.y * static_cast<uint64_t>(w.view.n_out) * w.view.row_bytes +
                        g.x * static_cast<uint64_t>(rows * w.view.n_in) * 4;
    launch("matmul_wmma", g, 128, a, rd, rows * w.view.n_out * 4);
  }

  void elementwise(const char* k, float* y, const float* x, int64_t n, int64_t bn) {
    if (n <= 0) return;
    hip::EltArgs a{y, x, n, bn};
    launch(k, grid((n + 255) / 256), 256, a, static_cast<uint64_t>(n + std::min(n, bn)) * 4, n * 4);
  }

  template <class A, class R, class W>
  void launch(const char* kernel, Grid g, uint32_t block, const A& args, R rd, W wr, uint32_t shared = 0) {
    hipdev::Launch l;
    l.kernel = kernel;
    l.grid[0] = g.x;
    l.grid[1] = g.y;
    l.block[0] = block;
    l.args = &args;
    l.args_bytes = sizeof(A);
    l.shared_bytes = shared;
    l.bytes_read = static_cast<uint64_t>(rd);
    l.bytes_written = static_cast<uint64_t>(wr);
    d_->launch(l);
  }

  // Scratch device memory of at least n bytes for this step (reused after the next sync).
  void* scratch(size_t n) {
    if (scratch_used_ == scratch_.size()) scratch_.push_back(nullptr);
    auto& s = scratch_[scratch_used_++];
    if (!s || s->bytes < n) s = std::make_shared<hipdev::Mem>(d_, std::max<size_t>(n, 256));
    return s->ptr;
  }
  float* scratch_f32(int64_t n) { return static_cast<float*>(scratch(static_cast<size_t>(n) * sizeof(float))); }

  // Host data into a device buffer, grown when too small (begin() synced before).
  const void* put(std::shared_ptr<hipdev::Mem>& b, const void* src, size_t n) {
    if (!b || b->bytes < n) b = std::make_shared<hipdev::Mem>(d_, std::max<size_t>(2 * n, 4096));
    d_->upload(b->ptr, src, n);
    return b->ptr;
  }

  std::shared_ptr<hipdev::Device> d_;
  const ModelConfig& c_;
  Batch b_;
  BatchView view_{};
  const float* rope_cs_ = nullptr;
  std::shared_ptr<hipdev::Mem> batch_, rope_;
  std::vector<std::shared_ptr<hipdev::Mem>> scratch_;
  size_t scratch_used_ = 0;
  std::vector<HostCopy> after_sync_;
  int64_t wmma_min_tokens_ = 8;
  const bool fuse_;
  std::shared_ptr<hipdev::Mem> counter_;  // gemv_fused's router: blocks done (0 between launches)
  std::shared_ptr<hipdev::Mem> attn_counter_;  // attention_split_f16: blocks done per head (0 between launches)

  // ---- decode fusions (kernels/hip/fused.hip) ----
  // Dynamic shared memory a fused block may use for its activation regions (RDNA: 64 KiB per block).
  static constexpr uint32_t kMaxShared = 48 * 1024;

  struct NormOp {  // y = rmsnorm(x) * w of one row (gathered: x's batch output row, y = the gathered row)
    const Buffer* x;
    Buffer* y;
    Vector w;
    bool gathered;
  };
  struct GemvOp {  // y = W x (+ bias) (x rmsnorm'ed first when norm is set); out: y's memory when y is null
    const Matrix* w;
    const Buffer* x;
    Buffer* y;
    std::optional<NormOp> norm;
    float* out = nullptr;
    Vector bias = {};
  };
  struct GatherOp {
    const Buffer* x;
    Buffer* out;
  };
  struct HeadOp {  // QK-norm and / or RoPE of one buffer of heads
    Buffer* x;
    Vector norm;
    bool rope;
    int64_t n_head;
  };

  static uint32_t act_bytes(GgmlType t, int64_t n) { return hip::act_region_bytes(act_kind(t), u32(n)); }
  // A row of n values a fused kernel can prepare as t's activations.
  static bool act_ok(GgmlType t, int64_t n) {
    const int a = act_kind(t);
    const int64_t bs = a == 1 ? 256 : a == 0 ? 32 : 1;
    return has_matmul_kernel(t) && n > 0 && n % bs == 0 && n % 16 == 0 && act_bytes(t, n) <= kMaxShared;
  }

  HeadOp* head_op(const Buffer* x) {
    for (HeadOp& h : heads_)
      if (h.x == x) return &h;
    return nullptr;
  }
  // The pending head op of x that can still take a norm (or a rope); others pending go first.
  HeadOp& head_slot(Buffer* x, bool for_norm) {
    settle(false);
    HeadOp* h = head_op(x);
    if (h && (h->rope || (for_norm && h->norm))) {
      settle();
      h = nullptr;
    }
    if (!h) {
      if (heads_.size() == 2) settle();
      heads_.push_back({x, {}, false, 0});
      h = &heads_.back();
    }
    return *h;
  }

  // Launches what waits, in program order (only one kind waits at a time; heads: false keeps them).
  void settle(bool heads = true) {
    if (gather_) {
      const GatherOp g = *gather_;
      gather_.reset();
      gather_now(*g.x, *g.out);
    }
    if (norm_) {
      const NormOp n = *norm_;
      norm_.reset();
      emit_norm(n);
    }
    if (!gemvs_.empty()) {
      std::vector<GemvOp> g;
      g.swap(gemvs_);
      gemv_now(g);
    }
    if (!heads) return;
    std::vector<HeadOp> hs;
    hs.swap(heads_);
    for (const HeadOp& h : hs) {
      if (h.norm) rmsnorm_now(*h.x, *h.x, h.norm, b_.n_tokens * h.n_head);
      if (h.rope) rope_now(*h.x, h.n_head);
    }
  }

  void emit_norm(const NormOp& n) {
    if (n.gathered) {
      gather_now(*n.x, *n.y);
      rmsnorm_now(*n.y, *n.y, n.w, 1);
    } else {
      rmsnorm_now(*n.x, *n.y, n.w, 1);
    }
  }

  // Decode GEMVs of one row (q, k, v; gate, up; o; the router), the pending norm of their row taken in:
  // they wait for their biases, or (a single one) an add or route that may join them. False: not fusable.
  bool decode_gemvs(std::span<const MatmulCall> calls) {
    if (b_.n_tokens != 1 || calls.empty() || calls.size() > 3) return false;
    const Buffer* x = calls[0].x;
    const int64_t n_in = calls[0].w->view.n_in;
    std::vector<int> acts;
    uint32_t shared = 0;
    for (const MatmulCall& c : calls) {
      if ((c.rows >= 0 && c.rows != 1) || c.x != x || c.w->view.n_in != n_in || !act_ok(c.w->view.type, n_in) ||
          c.y == x)
        return false;
      const int act = act_kind(c.w->view.type);
      if (std::find(acts.begin(), acts.end(), act) == acts.end()) {
        acts.push_back(act);
        shared += act_bytes(c.w->view.type, n_in);
      }
    }
    if (shared > kMaxShared) return false;
    std::optional<NormOp> norm;
    if (norm_ && norm_->y == x && norm_->w.n == n_in) {
      bool ok = true;  // no block may write the row the others norm
      for (const MatmulCall& c : calls) ok &= c.y != norm_->x;
      if (ok) norm.swap(norm_);
    }
    settle();
    std::vector<GemvOp> g;
    for (const MatmulCall& c : calls) g.push_back({c.w, c.x, c.y, norm});
    gemvs_ = std::move(g);
    return true;
  }

  // gemv_fused over up to 3 GEMVs of one row (their common norm in g[0]); res: res += y of g[0];
  // ids: the router's top-k of g[0]'s y into ids / rw; glu: g[0] = silu(g[0]) * g[1] (gate, up).
  void gemv_now(std::span<const GemvOp> g, float* res = nullptr, int32_t* ids = nullptr, float* rw = nullptr, bool glu = false) {
    hip::GemvFusedArgs a{};
    const int64_t n_in = g[0].w->view.n_in;
    uint32_t shared = 0, blocks = 0;
    uint64_t rd = 0, wr = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const ops::WeightView& v = g[i].w->view;
      check_type(v.type, "a weight");
      int slot = 0;
      while (slot < a.n_slots && a.slot_act[slot] != act_kind(v.type)) ++slot;
      if (slot == a.n_slots) {
        a.slot_act[a.n_slots++] = act_kind(v.type);
        shared += act_bytes(v.type, n_in);
      }
      a.m[i] = {static_cast<const uint8_t*>(dev_of(g[i].w->device, "a weight")), g[i].out ? g[i].out : hf32(*g[i].y),
                g[i].bias ? static_cast<const float*>(dev_of(g[i].bias.device, "a bias")) : nullptr,
                static_cast<int64_t>(v.row_bytes), i32v(v.n_out), static_cast<int32_t>(v.type), slot, i32v(blocks)};
      if (g[i].bias) rd += static_cast<uint64_t>(v.n_out) * 4;
      blocks += u32((v.n_out + 31) / 32);
      rd += static_cast<uint64_t>(v.n_out) * v.row_bytes;
      wr += static_cast<uint64_t>(v.n_out) * 4;
    }
    a.n_mat = i32v(static_cast<int64_t>(g.size()));
    if (glu) {
      a.glu = 1;
      blocks = u32((g[0].w->view.n_out + 31) / 32);
    }
    a.n_in = i32v(n_in);
    rd += static_cast<uint64_t>(n_in) * 4;
    const std::optional<NormOp>& n = g[0].norm;
    if (n) {
      a.x = hf32(*n->x);
      if (n->gathered) a.x_row = view_.words + view_.off_out;
      a.norm = static_cast<const float*>(dev_of(n->w.device, "a norm weight"));
      a.norm_y = hf32(*n->y);
      rd += static_cast<uint64_t>(n_in) * 4;
      wr += static_cast<uint64_t>(n_in) * 4;
    } else {
      a.x = hf32(*g[0].x);
    }
    a.eps = static_cast<float>(c_.eps);
    if (res) {
      a.res = res;
      rd += static_cast<uint64_t>(g[0].w->view.n_out) * 4;
      wr += static_cast<uint64_t>(g[0].w->view.n_out) * 4;
    }
    if (ids) {
      if (!counter_) counter_ = std::make_shared<hipdev::Mem>(d_, 256);
      a.ids = ids;
      a.rw = rw;
      a.counter = static_cast<uint32_t*>(counter_->ptr);
      a.k = i32v(c_.n_expert_used);
      wr += static_cast<uint64_t>(c_.n_expert_used) * 8;
    }
    launch("gemv_fused", {blocks, 1}, 256, a, rd, wr, shared);
  }

  // QK-norm + RoPE of the pending heads (k's and maybe q's) and the KV store of k and v, in one launch.
  void heads_now(HipKv& kv, int layer, const Buffer& k, const Buffer& v) {
    hip::HeadsArgs a{};
    const int64_t n = b_.n_tokens, hd = c_.head_dim;
    uint64_t rd = 0, wr = 0;
    for (const HeadOp& h : heads_) {
      const bool is_b = h.x == &k;
      float* x = hf32(*h.x);
      const float* w = h.norm ? static_cast<const float*>(dev_of(h.norm.device, "a norm weight")) : nullptr;
      if (is_b) {
        a.xb = x, a.norm_b = w, a.n_head_b = i32v(h.n_head), a.rope_b = h.rope ? 1 : 0;
      } else {
        a.xa = x, a.norm_a = w, a.n_head_a = i32v(h.n_head), a.rope_a = h.rope ? 1 : 0;
      }
      const uint64_t bytes = static_cast<uint64_t>(n * h.n_head * hd) * 4;
      rd += bytes + (h.norm ? static_cast<uint64_t>(hd) * 4 : 0);
      wr += bytes;
    }
    heads_.clear();
    rd += static_cast<uint64_t>(n * hd / 2) * 8;  // cos, sin
    a.v = hf32(v);
    a.kc = static_cast<uint16_t*>(kv.k->ptr);
    a.vc = static_cast<uint16_t*>(kv.v->ptr);
    a.n_blocks = kv.shape.n_blocks;
    a.layer = layer;
    a.block_tokens = ops::kKvBlock;
    const uint64_t kvn = static_cast<uint64_t>(n * kv.shape.n_head_kv * hd);
    rd += kvn * 4;
    wr += 2 * kvn * 2;
    a.cs = rope_cs_;
    a.b = view_;
    a.head_dim = i32v(hd);
    a.neox = c_.rope_type == ops::RopeType::Neox ? 1 : 0;
    a.eps = static_cast<float>(c_.eps);
    launch("heads_fused", {u32(a.n_head_a + a.n_head_b), u32(n)}, 32, a, rd, wr);
  }

  // The MoE of one token in two launches: gate + up + SiLU of its experts, then down weighted into x.
  bool moe_decode(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
                  const Buffer& w, Buffer& x) {
    const int64_t K = c_.n_expert_used, E = down.view.n_out, F = gate.view.n_out, D = gate.view.n_in;
    const GgmlType gt = gate.view.type, ut = up.view.type, dt = down.view.type;
    if (!act_ok(gt, D) || !act_ok(ut, D) || !act_ok(dt, F) || !act_ok(dt, K * F) || up.view.n_out != F || up.view.n_in != D ||
        down.view.n_in != F || E != D)
      return false;
    const bool up_slot = act_kind(ut) != act_kind(gt);
    const uint32_t sh_gu = act_bytes(gt, D) + (up_slot ? act_bytes(ut, D) : 0);
    if (sh_gu > kMaxShared) return false;
    float* g = scratch_f32(K * F);
    const int32_t* id = static_cast<const int32_t*>(hptr(ids));
    hip::MoeGateUpArgs gu{static_cast<const uint8_t*>(dev_of(gate.device, "an expert stack")),
                          static_cast<const uint8_t*>(dev_of(up.device, "an expert stack")), id, hf32(h), g,
                          static_cast<int64_t>(gate.view.row_bytes), static_cast<int64_t>(gate.mat_stride),
                          static_cast<int64_t>(up.view.row_bytes), static_cast<int64_t>(up.mat_stride), static_cast<int32_t>(gt),
                          static_cast<int32_t>(ut), act_kind(gt), act_kind(ut), up_slot ? 1 : 0, i32v(D), i32v(F), i32v(K)};
    // each selected expert's gate and up rows once (distinct experts per token)
    launch("moe_gate_up_fused", {u32((F + 31) / 32), u32(K)}, 256, gu,
           static_cast<uint64_t>(K * F) * (gate.view.row_bytes + up.view.row_bytes) + static_cast<uint64_t>(D * 4 + K * 4),
           K * F * 4, sh_gu);
    hip::MoeDownArgs dn{static_cast<const uint8_t*>(dev_of(down.device, "an expert stack")), id, hf32(w), g, hf32(x),
                        static_cast<int64_t>(down.view.row_bytes), static_cast<int64_t>(down.mat_stride), static_cast<int32_t>(dt),
                        act_kind(dt), i32v(F), i32v(E), i32v(K)};
    launch("moe_down_fused", {u32((E + 31) / 32), 1}, 256, dn,
           static_cast<uint64_t>(K * E) * down.view.row_bytes + static_cast<uint64_t>(K * F * 4 + E * 4 + K * 8), E * 4,
           act_bytes(dt, K * F));
    return true;
  }

  std::optional<GatherOp> gather_;
  std::optional<NormOp> norm_;
  std::vector<GemvOp> gemvs_;
  std::vector<HeadOp> heads_;
};

}  // namespace

std::unique_ptr<Stream> make_hip_stream(std::shared_ptr<hipdev::Device> dev, const ModelConfig& c, const StreamOptions&) {
  return std::make_unique<HipStream>(std::move(dev), c);
}

}  // namespace tessera::engine
