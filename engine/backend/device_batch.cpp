#include "engine/backend/device_batch.h"

#include <algorithm>
#include <cmath>

#include "engine/model/model.h"

namespace tessera::engine {

std::vector<uint32_t> device_batch_words(const Batch& b) {
  const int64_t n = b.n_tokens;
  std::vector<uint32_t> w(static_cast<size_t>(3 * n + b.n_out));
  for (int64_t t = 0; t < n; ++t) {
    w[t] = static_cast<uint32_t>(b.tokens ? b.tokens[t] : 0);
    w[n + t] = static_cast<uint32_t>(b.pos[t]);
    w[2 * n + t] = static_cast<uint32_t>(w.size());
    if (b.block_table)
      for (int i = 0; i <= b.pos[t] / ops::kKvBlock; ++i) w.push_back(static_cast<uint32_t>(b.block_table[t][i]));
  }
  for (int64_t i = 0; i < b.n_out; ++i) w[3 * n + i] = static_cast<uint32_t>(b.out_rows[i]);
  return w;
}

std::vector<float> rope_cos_sin(const ModelConfig& c, const Batch& b) {
  const int64_t n = b.n_tokens, half = c.head_dim / 2;
  std::vector<float> cs(static_cast<size_t>(std::max<int64_t>(n * half * 2, 1)));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < half; ++i) {
      double th = c.rope_freq_scale * b.pos[t] *
                  std::pow(c.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
      if (!c.rope_freq_factors.empty()) th /= c.rope_freq_factors[static_cast<size_t>(i)];
      cs[(t * half + i) * 2] = static_cast<float>(std::cos(th));
      cs[(t * half + i) * 2 + 1] = static_cast<float>(std::sin(th));
    }
  return cs;
}

Matrix device_matrix(const gguf::TensorInfo& t, std::shared_ptr<void> device) {
  Matrix m;
  m.view = ops::WeightView{t.type, t.data, t.ne[0], t.ne[1], t.row_bytes()};
  m.n_mat = t.n_dims >= 3 ? t.ne[2] : 1;
  m.mat_stride = static_cast<size_t>(t.ne[1]) * t.row_bytes();
  m.device = std::move(device);
  return m;
}

}  // namespace tessera::engine
