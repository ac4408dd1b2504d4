// Per-thread scratch memory for CPU kernels (64-byte aligned, grown on demand, kept for the thread's
// life). Lives in a baseline-ISA translation unit so SIMD files need no library code.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tessera::ops {

// Scratch for the calling thread; slot 0..3 are independent buffers.
uint8_t* cpu_kernel_scratch(int slot, size_t bytes);

}  // namespace tessera::ops
