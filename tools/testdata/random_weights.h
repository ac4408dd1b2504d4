// Random weight matrices of any matmul type for tests and benchmarks: random block bytes with sane
// scale fields, so every bit pattern of the quant codes is exercised without depending on an encoder.
#pragma once
#include <cstdint>
#include <vector>

#include "gguf/ggml_types.h"

namespace tessera::ops {

// n_out rows of n_in values of type t (n_in a multiple of the block size): [n_out][row_bytes(t, n_in)].
std::vector<uint8_t> random_weight_rows(GgmlType t, int64_t n_out, int64_t n_in, uint64_t seed);

// n values uniform in [-1, 1) with a few larger outliers, as activations look.
std::vector<float> random_activations(int64_t n, uint64_t seed);

}  // namespace tessera::ops
