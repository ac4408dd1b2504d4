// Matrix products with weights as stored in GGUF (any supported ggml type), the engine's hot op.
// The model calls only these; dispatch picks a registered kernel (see engine/ops/registry.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/core/thread_pool.h"
#include "gguf/ggml_types.h"

namespace tessera::ops {

// A weight matrix: n_out rows of n_in values (ggml ne[0] = n_in, ne[1] = n_out), rows contiguous.
// An expert of a 3-D tensor is a WeightView whose data starts at e * n_out * row_bytes.
struct WeightView {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;  // [n_out][row_bytes]
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_bytes = 0;
};

// One product: y[t][o] = sum_i W[o][i] * x[t][i] for t < n_tokens.
struct MatmulJob {
  WeightView w;
  const float* x = nullptr;  // [n_tokens][x_stride], first n_in used
  int64_t x_stride = 0;
  int64_t n_tokens = 0;
  float* y = nullptr;        // [n_tokens][y_stride], first n_out written
  int64_t y_stride = 0;
};

// Runs all jobs in one parallel region (e.g. the 8 experts' gate and up projections of a step):
// activations are quantized once per job as the weight type requires (Q8_0 / Q8_K / F16 / BF16),
// then threads share the weight rows of all jobs, each weight byte read once per call.
void matmul(std::span<const MatmulJob> jobs, ThreadPool& pool);

inline void matmul(const MatmulJob& job, ThreadPool& pool) { matmul(std::span<const MatmulJob>(&job, 1), pool); }

}  // namespace tessera::ops
