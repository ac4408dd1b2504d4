// The HIP backends' Stream: every op is one or a few kernel launches (kernels/hip/*.hip) on the device
// (hip_device.h), in order; host results (logits) are copied at sync(). Simple kernels for now: one
// wave per output row for the products, one wave per (head, token) for attention, the MoE as gate,
// up, swiglu, down and a weighted sum over all (token, expert) pairs with the router's ids on the device.
// Batches of >= 8 tokens on gfx12 (and the emulator): products on the matrix cores (matmul_wmma), the
// MoE expert-grouped (use_wmma / moe_wmma below).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
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
    case GgmlType::Q5_K: case GgmlType::Q6_K:
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
  HipStream(std::shared_ptr<hipdev::Device> d, const ModelConfig& c) : d_(std::move(d)), c_(c) {
    if (const char* v = std::getenv("TESSERA_HIP_WMMA_MIN_TOKENS"); v && *v) wmma_min_tokens_ = std::atoll(v);
  }

  void begin(const Batch& b) override {
    sync();
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
    hip::EmbedArgs a{static_cast<const uint8_t*>(dev_of(table.device, "the embedding table")), hf32(x), view_,
                     static_cast<int64_t>(t.row_bytes()), i32v(t.ne[0]), static_cast<int32_t>(t.type)};
    launch("embed_rows", {u32(b_.n_tokens), 1}, 256, a, b_.n_tokens * t.row_bytes(), b_.n_tokens * t.ne[0] * 4);
  }

  void rmsnorm(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) override {
    if (rows <= 0) return;
    hip::RmsnormArgs a{hf32(x), hf32(y), static_cast<const float*>(dev_of(w.device, "a norm weight")), i32v(w.n),
                       static_cast<float>(c_.eps)};
    launch("rmsnorm_f32", {u32(rows), 1}, 32, a, (rows + 1) * w.n * 4, rows * w.n * 4);
  }

  void rope(Buffer& x, int64_t n_head) override {
    if (b_.n_tokens == 0) return;
    hip::RopeArgs a{hf32(x), rope_cs_, i32v(n_head), i32v(c_.head_dim), c_.rope_type == ops::RopeType::Neox ? 1 : 0};
    const uint64_t bytes = static_cast<uint64_t>(b_.n_tokens * n_head * c_.head_dim * 4);
    launch("rope_f32", {u32(n_head), u32(b_.n_tokens)}, u32(std::max<int64_t>(c_.head_dim / 2, 1)), a, bytes, bytes);
  }

  void kv_store(KvStore& kv, int layer, const Buffer& k, const Buffer& v) override {
    auto& s = static_cast<HipKv&>(kv);
    if (b_.n_tokens == 0) return;
    hip::KvStoreArgs a{hf32(k), hf32(v), static_cast<uint16_t*>(s.k->ptr), static_cast<uint16_t*>(s.v->ptr), view_,
                       s.shape.n_head_kv, s.shape.head_dim, s.shape.n_blocks, layer, ops::kKvBlock};
    const uint64_t n = static_cast<uint64_t>(b_.n_tokens * s.shape.n_head_kv * s.shape.head_dim);
    launch("kv_store_f16", {u32(b_.n_tokens), 1}, 256, a, 2 * n * 4, 2 * n * 2);
  }

  void kv_copy(KvStore& kv, int dst, int src) override {
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
    hip::AttentionArgs a{hf32(q), hf32(out), static_cast<const uint16_t*>(s.k->ptr), static_cast<const uint16_t*>(s.v->ptr),
                         view_, i32v(c_.n_head), s.shape.n_head_kv, s.shape.head_dim, s.shape.n_blocks, layer,
                         ops::kKvBlock, static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.shape.head_dim)))};
    uint64_t keys = 0;
    for (int64_t t = 0; t < b_.n_tokens; ++t) keys += static_cast<uint64_t>(b_.pos[t] + 1);
    const uint64_t row = static_cast<uint64_t>(c_.n_head * s.shape.head_dim * 4);
    // K and V of each key once per KV head group (a device cache serves the heads that share them)
    launch("attention_f16", {u32(c_.n_head), u32(b_.n_tokens)}, 32, a,
           b_.n_tokens * row + keys * 2 * s.shape.n_head_kv * s.shape.head_dim * 2, b_.n_tokens * row);
  }

  void matmul(std::span<const MatmulCall> calls) override {
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
    elementwise("add_f32", hf32(y), static_cast<const float*>(dev_of(b.device, "a bias")), rows * b.n, b.n);
  }
  void add(Buffer& y, const Buffer& x, int64_t n) override { elementwise("add_f32", hf32(y), hf32(x), b_.n_tokens * n, b_.n_tokens * n); }
  void swiglu(Buffer& g, const Buffer& u, int64_t n) override {
    elementwise("swiglu_f32", hf32(g), hf32(u), b_.n_tokens * n, b_.n_tokens * n);
  }

  void route(const Buffer& logits, Buffer& ids, Buffer& w) override {
    if (c_.n_expert > 512 || c_.n_expert_used > c_.n_expert)
      throw_error("hip: route of {} of {} experts (at most 512)", c_.n_expert_used, c_.n_expert);
    if (b_.n_tokens == 0) return;
    hip::RouteArgs a{hf32(logits), static_cast<int32_t*>(hptr(ids)), hf32(w), i32v(c_.n_expert), i32v(c_.n_expert_used)};
    launch("route_topk", {u32(b_.n_tokens), 1}, 32, a, b_.n_tokens * c_.n_expert * 4, b_.n_tokens * c_.n_expert_used * 8);
  }

  void moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
           const Buffer& w, Buffer& x) override {
    const int64_t n = b_.n_tokens, K = c_.n_expert_used, pairs = n * K, E = down.view.n_out, F = gate.view.n_out;
    if (n == 0) return;
    if (moe_wmma(gate, up, down, h, ids, w, x)) return;
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
    hip::GatherArgs a{hf32(x), hf32(out), view_, i32v(c_.n_embd), i32v(b_.n_out)};
    launch("gather_rows_f32", {u32(b_.n_out), 1}, 256, a, b_.n_out * c_.n_embd * 4, b_.n_out * c_.n_embd * 4);
  }

  void logits(const Matrix& w, const Vector& bias, const Buffer& h, float* host) override {
    if (b_.n_out == 0) return;
    const int64_t n = b_.n_out * w.view.n_out;
    float* out = scratch_f32(n);
    if (use_wmma(w, b_.n_out))
      wmma(w, hf32(h), out, b_.n_out);
    else
      gemv(w, activations(w, hf32(h), b_.n_out), out, b_.n_out, nullptr, 1);
    if (bias) elementwise("add_f32", out, static_cast<const float*>(dev_of(bias.device, "the output bias")), n, bias.n);
    after_sync_.push_back({out, host, static_cast<size_t>(n) * sizeof(float)});
  }

  void sync() override {
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
  void launch(const char* kernel, Grid g, uint32_t block, const A& args, R rd, W wr) {
    hipdev::Launch l;
    l.kernel = kernel;
    l.grid[0] = g.x;
    l.grid[1] = g.y;
    l.block[0] = block;
    l.args = &args;
    l.args_bytes = sizeof(A);
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
};

}  // namespace

std::unique_ptr<Stream> make_hip_stream(std::shared_ptr<hipdev::Device> dev, const ModelConfig& c, const StreamOptions&) {
  return std::make_unique<HipStream>(std::move(dev), c);
}

}  // namespace tessera::engine
