// The CPU backend's matrix products with weights as stored in GGUF (any supported ggml type): jobs
// carry the kernel bound to their weight at load (see kernels/registry.h), the pool runs them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "gguf/ggml_types.h"
#include "kernels/kernel_args.h"
#include "kernels/registry.h"

namespace tessera::ops {

// One product: y[t][o] = sum_i W[o][i] * x[t][i] for t < n_tokens.
struct MatmulJob {
  WeightView w;
  const float* x = nullptr;  // [n_tokens][x_stride], first n_in used
  int64_t x_stride = 0;
  int64_t n_tokens = 0;
  float* y = nullptr;        // [n_tokens][y_stride], first n_out written
  int64_t y_stride = 0;
  // The kernels bound to w at load; null: chosen per call by the default policy on this CPU (tests, tools)
  const BoundMatmul* kernels = nullptr;
  const MatmulKernel* kernel = nullptr;  // forces one kernel (tests and micro-benchmarks)
};

// Runs all jobs in one parallel region (e.g. the 8 experts' gate and up projections of a step):
// activations are quantized once per job as the weight type requires (Q8_0 / Q8_K / F16 / BF16),
// then threads share the weight rows of all jobs, each weight byte read once per call.
void matmul(std::span<const MatmulJob> jobs, ThreadPool& pool);

inline void matmul(const MatmulJob& job, ThreadPool& pool) { matmul(std::span<const MatmulJob>(&job, 1), pool); }

}  // namespace tessera::ops
