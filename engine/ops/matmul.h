// Matrix products with weights as stored in GGUF (any supported ggml type), the engine's hot op.
// The model calls only these; dispatch picks a registered kernel (see kernels/registry.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "gguf/ggml_types.h"
#include "kernels/kernel_args.h"

namespace tessera::ops {

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
