// Registration of the SIMD CPU kernels (this file is compiled for baseline x86-64; the kernels it
// names live in *_avx2.cpp / *_avx512.cpp / *_scalar.cpp and are only called when supports() says so).
#include "engine/ops/registry.h"

namespace tessera::ops {

void register_cpu_kernels(KernelRegistry&) {}

}  // namespace tessera::ops
