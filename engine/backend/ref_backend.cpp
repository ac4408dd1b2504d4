// The reference backend (`--backend ref`): every op as a plain scalar loop in double precision on one
// thread, the registry's `_ref` matmul kernels, its own simple KV layout, and MoE token by token. Slow
// and obviously correct: the twin every other backend's ops are compared with, and the proof that the
// forward pass depends on the Backend interface only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "engine/backend/host.h"
#include "engine/model/model.h"
#include "gguf/codecs.h"
#include "gguf/half.h"
#include "kernels/ref/act_quant.h"

namespace tessera::engine {

namespace {

// f16 K and V, [layer][block][slot][kv head][head_dim]: a token's keys lie together.
class RefKv final : public KvStore {
 public:
  explicit RefKv(const KvShape& s) : s_(s) {
    if (s.n_layer <= 0 || s.n_head_kv <= 0 || s.head_dim <= 0 || s.n_blocks <= 0)
      throw_error("KV cache: bad shape (layers {}, kv heads {}, head dim {}, blocks {})", s.n_layer, s.n_head_kv,
                  s.head_dim, s.n_blocks);
    const size_t n = static_cast<size_t>(s.n_layer) * s.n_blocks * ops::kKvBlock * s.n_head_kv * s.head_dim;
    k_.assign(n, 0);
    v_.assign(n, 0);
  }
  uint64_t bytes() const override { return (k_.size() + v_.size()) * sizeof(uint16_t); }
  // Index of (layer, block, slot, head, 0).
  size_t at(int layer, int block, int slot, int head) const {
    return (((static_cast<size_t>(layer) * s_.n_blocks + block) * ops::kKvBlock + slot) * s_.n_head_kv + head) *
           s_.head_dim;
  }
  std::vector<uint16_t> k_, v_;

 private:
  KvShape s_;
};

// y = W x for `rows` rows with the kernel bound for that many tokens (activations prepared as it wants).
void ref_matmul(const ops::WeightView& w, const ops::BoundMatmul& bound, const float* x, int64_t rows, float* y) {
  const ops::MatmulKernel& k = bound.for_tokens(rows);
  const int64_t n = w.n_in;
  const size_t nv = static_cast<size_t>(rows * n);
  std::vector<int8_t> qs(nv);
  std::vector<float> d(nv / 32 + 1);
  std::vector<int32_t> s(nv / 16 + 1), s32(nv / 32 + 1);
  std::vector<uint16_t> h16(nv);
  ops::PreparedActs p;
  p.type = k.act;
  p.n_tokens = rows;
  p.n_in = n;
  if (k.act == ops::ActType::F32) {
    p.f32 = x;
    p.f32_stride = n;
  } else {
    ops::quantize_activations(k.act, x, n, n, 0, rows, qs.data(), d.data(), s.data(), s32.data(), h16.data());
    p.qs = qs.data();
    p.d = d.data();
    p.s = s.data();
    p.s32 = s32.data();
    p.h16 = h16.data();
  }
  ops::MatmulArgs a;
  a.w = &w;
  a.x = &p;
  a.y = y;
  a.y_stride = w.n_out;
  a.row_begin = 0;
  a.row_end = w.n_out;
  k.run(a);
}

double silu(double a) { return a / (1.0 + std::exp(-a)); }

class RefStream final : public Stream {
 public:
  explicit RefStream(const ModelConfig& c) : c_(c) {}

  void begin(const Batch& b) override { b_ = b; }

  void embed(const Table& table, Buffer& x) override {
    const gguf::TensorInfo& emb = *table.tensor;
    for (int64_t t = 0; t < b_.n_tokens; ++t) {
      const int32_t id = b_.tokens[t];
      if (id < 0 || id >= c_.n_vocab) throw_error("token id {} is out of range (vocabulary of {})", id, c_.n_vocab);
      dequantize_row(emb.type, emb.data + static_cast<size_t>(id) * emb.row_bytes(), f32(x) + t * c_.n_embd, c_.n_embd);
    }
  }

  void rmsnorm(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) override {
    const int64_t n = w.n;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = f32(x) + r * n;
      float* yr = f32(y) + r * n;
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + c_.eps);
      for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<float>(xr[i] * scale * w.host[i]);
    }
  }

  void rope(Buffer& x, int64_t n_head) override {
    const int64_t hd = c_.head_dim, half = hd / 2;
    const bool neox = c_.rope_type == ops::RopeType::Neox;
    for (int64_t t = 0; t < b_.n_tokens; ++t)
      for (int64_t h = 0; h < n_head; ++h) {
        float* a = f32(x) + (t * n_head + h) * hd;
        for (int64_t i = 0; i < half; ++i) {
          double theta = c_.rope_freq_scale * b_.pos[t] *
                         std::pow(c_.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
          if (!c_.rope_freq_factors.empty()) theta /= c_.rope_freq_factors[static_cast<size_t>(i)];
          // NEOX pairs (i, i + hd/2); NORM (llama) adjacent pairs (2i, 2i + 1)
          const int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
          const double x0 = a[i0], x1 = a[i1];
          a[i0] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
          a[i1] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
        }
      }
  }

  void kv_store(KvStore& kv, int layer, const Buffer& k, const Buffer& v) override {
    auto& s = static_cast<RefKv&>(kv);
    const int64_t hd = c_.head_dim;
    for (int64_t t = 0; t < b_.n_tokens; ++t) {
      const int pos = b_.pos[t];
      const int blk = b_.block_table[t][pos / ops::kKvBlock];
      for (int h = 0; h < c_.n_head_kv; ++h) {
        const size_t o = s.at(layer, blk, pos % ops::kKvBlock, h);
        const float* kr = f32(k) + (t * c_.n_head_kv + h) * hd;
        const float* vr = f32(v) + (t * c_.n_head_kv + h) * hd;
        for (int64_t d = 0; d < hd; ++d) {
          s.k_[o + d] = fp32_to_fp16(kr[d]);
          s.v_[o + d] = fp32_to_fp16(vr[d]);
        }
      }
    }
  }

  void kv_copy(KvStore& kv, int dst, int src) override {
    auto& s = static_cast<RefKv&>(kv);
    const size_t n = s.at(0, 0, ops::kKvBlock, 0);  // one block of one layer
    for (int layer = 0; layer < c_.n_layer; ++layer) {
      const size_t d = s.at(layer, dst, 0, 0), o = s.at(layer, src, 0, 0);
      std::copy_n(s.k_.begin() + static_cast<std::ptrdiff_t>(o), n, s.k_.begin() + static_cast<std::ptrdiff_t>(d));
      std::copy_n(s.v_.begin() + static_cast<std::ptrdiff_t>(o), n, s.v_.begin() + static_cast<std::ptrdiff_t>(d));
    }
  }

  void attention(KvStore& kv, int layer, const Buffer& q, Buffer& out) override {
    const auto& s = static_cast<const RefKv&>(kv);
    const int64_t hd = c_.head_dim, group = c_.n_head / c_.n_head_kv;
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    std::vector<double> p, o(static_cast<size_t>(hd));
    for (int64_t t = 0; t < b_.n_tokens; ++t)
      for (int64_t h = 0; h < c_.n_head; ++h) {
        const float* qr = f32(q) + (t * c_.n_head + h) * hd;
        const int kvh = static_cast<int>(h / group);
        const int n_keys = b_.pos[t] + 1;
        p.assign(static_cast<size_t>(n_keys), 0.0);
        double mx = -INFINITY;
        for (int j = 0; j < n_keys; ++j) {
          const size_t off = s.at(layer, b_.block_table[t][j / ops::kKvBlock], j % ops::kKvBlock, kvh);
          double acc = 0;
          for (int64_t d = 0; d < hd; ++d) acc += static_cast<double>(qr[d]) * fp16_to_fp32(s.k_[off + d]);
          p[j] = acc * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (double& v : p) sum += (v = std::exp(v - mx));
        std::fill(o.begin(), o.end(), 0.0);
        for (int j = 0; j < n_keys; ++j) {
          const size_t off = s.at(layer, b_.block_table[t][j / ops::kKvBlock], j % ops::kKvBlock, kvh);
          for (int64_t d = 0; d < hd; ++d) o[d] += p[j] * fp16_to_fp32(s.v_[off + d]);
        }
        float* dst = f32(out) + (t * c_.n_head + h) * hd;
        for (int64_t d = 0; d < hd; ++d) dst[d] = static_cast<float>(o[d] / sum);
      }
  }

  void matmul(std::span<const MatmulCall> calls) override {
    for (const MatmulCall& c : calls)
      ref_matmul(c.w->view, c.w->kernels, f32(*c.x), c.rows < 0 ? b_.n_tokens : c.rows, f32(*c.y));
  }

  void add_bias(Buffer& y, const Vector& b, int64_t rows) override {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < b.n; ++i) f32(y)[r * b.n + i] += b.host[i];
  }

  void add(Buffer& y, const Buffer& x, int64_t n) override {
    for (int64_t i = 0; i < b_.n_tokens * n; ++i) f32(y)[i] += f32(x)[i];
  }

  void swiglu(Buffer& g, const Buffer& u, int64_t n) override {
    for (int64_t i = 0; i < b_.n_tokens * n; ++i) f32(g)[i] = static_cast<float>(silu(f32(g)[i]) * f32(u)[i]);
  }

  // p = softmax(r), the k largest (lower index first on ties), w_j = p_j / max(sum p_sel, 6.1035e-5)
  void route(const Buffer& logits, Buffer& ids, Buffer& w) override {
    const int64_t X = c_.n_expert, K = c_.n_expert_used;
    std::vector<double> p(static_cast<size_t>(X));
    std::vector<int32_t> order(static_cast<size_t>(X));
    for (int64_t t = 0; t < b_.n_tokens; ++t) {
      const float* r = f32(logits) + t * X;
      const double mx = *std::max_element(r, r + X);
      double sum = 0;
      for (int64_t e = 0; e < X; ++e) sum += (p[e] = std::exp(r[e] - mx));
      for (double& v : p) v /= sum;
      for (int64_t e = 0; e < X; ++e) order[e] = static_cast<int32_t>(e);
      // largest first, lower index first on ties (std::sort with the tie-break: libstdc++ 12's
      // stable_sort uses get_temporary_buffer, deprecated under clang 19 and fatal with -Werror)
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
      double sel = 0;
      for (int64_t j = 0; j < K; ++j) sel += p[order[j]];
      sel = std::max(sel, 6.1035e-5);
      for (int64_t j = 0; j < K; ++j) {
        i32(ids)[t * K + j] = order[j];
        f32(w)[t * K + j] = static_cast<float>(p[order[j]] / sel);
      }
    }
  }

  void moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
           const Buffer& w, Buffer& x) override {
    const int64_t E = c_.n_embd, F = c_.n_ff_exp, K = c_.n_expert_used;
    std::vector<float> g(static_cast<size_t>(F)), u(g.size()), y(static_cast<size_t>(E));
    std::vector<double> acc(static_cast<size_t>(E));
    for (int64_t t = 0; t < b_.n_tokens; ++t) {
      const float* ht = f32(h) + t * E;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < K; ++j) {
        const int32_t e = i32(ids)[t * K + j];
        ref_matmul(gate.mat(e), gate.kernels, ht, 1, g.data());
        ref_matmul(up.mat(e), up.kernels, ht, 1, u.data());
        for (int64_t i = 0; i < F; ++i) g[i] = static_cast<float>(silu(g[i]) * u[i]);
        ref_matmul(down.mat(e), down.kernels, g.data(), 1, y.data());
        const double wj = f32(w)[t * K + j];
        for (int64_t i = 0; i < E; ++i) acc[i] += wj * y[i];
      }
      for (int64_t i = 0; i < E; ++i) f32(x)[t * E + i] = static_cast<float>(f32(x)[t * E + i] + acc[i]);
    }
  }

  void gather_out_rows(const Buffer& x, Buffer& out) override {
    const int64_t E = c_.n_embd;
    for (int64_t i = 0; i < b_.n_out; ++i)
      std::memcpy(f32(out) + i * E, f32(x) + static_cast<int64_t>(b_.out_rows[i]) * E, static_cast<size_t>(E) * sizeof(float));
  }

  void logits(const Matrix& w, const Vector& bias, const Buffer& h, float* host) override {
    ref_matmul(w.view, w.kernels, f32(h), b_.n_out, host);
    if (bias)
      for (int64_t r = 0; r < b_.n_out; ++r)
        for (int64_t i = 0; i < c_.n_vocab; ++i) host[r * c_.n_vocab + i] += bias.host[i];
  }

  void sync() override {}

 private:
  const ModelConfig& c_;
  Batch b_;
};

class RefBackend final : public HostBackend {
 public:
  RefBackend() : HostBackend(ops::Backend::Ref) {}
  std::unique_ptr<KvStore> create_kv(const KvShape& shape) override { return std::make_unique<RefKv>(shape); }
  std::unique_ptr<Stream> create_stream(const ModelConfig& c, const StreamOptions&) override {
    return std::make_unique<RefStream>(c);
  }
};

}  // namespace

std::shared_ptr<Backend> make_ref_backend() { return std::make_shared<RefBackend>(); }

}  // namespace tessera::engine
