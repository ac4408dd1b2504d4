// Attention over the block KV cache: the default kernel (attention_f16_avx512 where the CPU has it) against
// the portable one and against a float64 softmax(q k^T) v over the same f16 keys and values, for
// several head groupings, head dims, batch shapes and depths that cross many blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/backend/cpu_kv.h"
#include "engine/kv/kv_cache.h"
#include "kernels/cpu/attention.h"
#include "kernels/registry.h"
#include "gguf/half.h"

using namespace tessera;
using namespace tessera::engine;

namespace {

struct Case {
  int n_head, n_head_kv, head_dim, depth, n_tokens;
};

class AttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTest, MatchesFloat64) {
  const Case c = GetParam();
  const int n_pos = c.depth + c.n_tokens;
  const int n_blocks = (n_pos + kKvBlock - 1) / kKvBlock;
  CpuKv kv(KvShape{1, c.n_head_kv, c.head_dim, n_blocks + 3});
  KvCache free_blocks(n_blocks + 3);
  std::vector<int32_t> blocks;
  for (int b = 0; b < n_blocks; ++b) blocks.push_back(free_blocks.alloc());
  std::swap(blocks.front(), blocks.back());  // non-contiguous block order

  std::mt19937 rng(c.head_dim * 31 + c.depth);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int kv_dim = c.n_head_kv * c.head_dim, q_dim = c.n_head * c.head_dim;
  std::vector<float> K(static_cast<size_t>(n_pos) * kv_dim), Vv(K.size());
  for (float& x : K) x = nd(rng) * 2.0f;
  for (float& x : Vv) x = nd(rng);
  for (int p = 0; p < n_pos; ++p) kv.store(0, blocks.data(), p, K.data() + p * kv_dim, Vv.data() + p * kv_dim);

  std::vector<float> q(static_cast<size_t>(c.n_tokens) * q_dim);
  for (float& x : q) x = nd(rng) * 2.0f;
  std::vector<int32_t> pos(c.n_tokens);
  std::vector<const int32_t*> tables(c.n_tokens, blocks.data());
  for (int t = 0; t < c.n_tokens; ++t) pos[t] = c.depth + t;

  ops::AttentionArgs a;
  a.n_tokens = c.n_tokens;
  a.n_head = c.n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  a.q = q.data();
  a.q_stride = q_dim;
  std::vector<float> out(q.size(), NAN), out_generic(q.size(), NAN);
  a.out = out.data();
  a.out_stride = q_dim;
  a.pos = pos.data();
  a.block_table = tables.data();
  a.k_cache = kv.k_layer(0);
  a.v_cache = kv.v_layer(0);
  a.block_elems = kv.head_block_elems(); a.head_stride = kv.head_stride();
  ThreadPool pool(2);
  const ops::AttendRowsFn kernel = ops::BoundOps::bind(ops::KernelPolicy(), ops::host_caps(), c.head_dim).attention;
  ops::attention(a, pool, kernel);
  // more threads than KV heads: a single token's keys are split into ranges and merged
  std::vector<float> out_split(q.size(), NAN);
  a.out = out_split.data();
  ThreadPool wide(12);
  ops::attention(a, wide, kernel);
  a.out = out.data();

  const int group = c.n_head / c.n_head_kv;
  double worst = 0, worst_generic = 0, worst_split = 0;
  for (int t = 0; t < c.n_tokens; ++t) {
    for (int h = 0; h < c.n_head; ++h) {
      const int g = h / group;
      const float* qr = q.data() + t * q_dim + h * c.head_dim;
      // float64 reference on the f16-rounded q, k, v
      std::vector<double> s(pos[t] + 1), o(c.head_dim, 0.0);
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j <= pos[t]; ++j) {
        double acc = 0;
        for (int d = 0; d < c.head_dim; ++d)
          acc += double(fp16_to_fp32(fp32_to_fp16(qr[d]))) * fp16_to_fp32(fp32_to_fp16(K[j * kv_dim + g * c.head_dim + d]));
        s[j] = acc * a.scale;
        mx = std::max(mx, s[j]);
      }
      for (int j = 0; j <= pos[t]; ++j) sum += s[j] = std::exp(s[j] - mx);
      for (int j = 0; j <= pos[t]; ++j)
        for (int d = 0; d < c.head_dim; ++d) o[d] += s[j] / sum * fp16_to_fp32(fp32_to_fp16(Vv[j * kv_dim + g * c.head_dim + d]));

      ops::detail::AttnRows rows;
      rows.n_rows = 1;
      rows.q[0] = qr;
      rows.out[0] = out_generic.data() + t * q_dim + h * c.head_dim;
      rows.last[0] = pos[t];
      rows.blocks = blocks.data();
      rows.kv_head = g;
      ops::detail::attend_rows_generic(a, rows);

      double num = 0, num_g = 0, num_s = 0, den = 0;
      for (int d = 0; d < c.head_dim; ++d) {
        const size_t i = static_cast<size_t>(t * q_dim + h * c.head_dim + d);
        const double got = out[i], gen = rows.out[0][d], split = out_split[i];
        num += (got - o[d]) * (got - o[d]);
        num_g += (gen - o[d]) * (gen - o[d]);
        num_s += (split - o[d]) * (split - o[d]);
        den += o[d] * o[d];
      }
      worst = std::max(worst, num / den);
      worst_generic = std::max(worst_generic, num_g / den);
      worst_split = std::max(worst_split, num_s / den);
    }
  }
  EXPECT_LE(worst, 1e-9) << "default kernel";
  EXPECT_LE(worst_generic, 1e-9) << "generic kernel";
  EXPECT_LE(worst_split, 1e-9) << "12 threads (split keys for one token)";
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(Case{32, 4, 128, 0, 1}, Case{32, 4, 128, 300, 1}, Case{32, 4, 128, 70, 9},
                                           Case{8, 2, 64, 0, 37}, Case{8, 2, 64, 100, 5}, Case{4, 2, 64, 33, 17},
                                           Case{4, 4, 128, 5, 3}, Case{24, 1, 64, 40, 3}, Case{6, 2, 80, 20, 4},
                                           Case{2, 1, 32, 64, 64}, Case{32, 4, 128, 1200, 1},
                                           Case{8, 2, 64, 1000, 1}));

}  // namespace
