// The HIP dialect of kernels/hip/*.hip, for two compilers. Device: clang -x hip -nogpuinc (no ROCm
// headers), so the few HIP names the kernels use are defined here on clang's amdgcn builtins. Host:
// the same sources compile as C++ against the HIP-on-CPU emulator (kernels/hip/emu/hip_emu.h), where
// work-items are fibers with real barriers and wave32 cross-lane operations.
// Math: the __builtin_ forms (expf, sqrtf, fabsf, fmaxf) on both compilers.
// Kernels use: __global__, __device__, __shared__, HIP_DYNAMIC_SHARED, threadIdx/blockIdx/blockDim/
// gridDim, __syncthreads, __lane_id, __shfl/__shfl_xor/__shfl_down, __ballot, __reduce_*_sync,
// atomicAdd/atomicMax/atomicCAS/atomicExch, __builtin_amdgcn_sudot4, and (gfx12 only)
// __builtin_amdgcn_wmma_f32_16x16x16_f16_w32_gfx12. Wave size is 32 (RDNA, -mwavefrontsize32 default).
#pragma once
#include <stdint.h>

#if defined(__HIP_DEVICE_COMPILE__)

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define HIP_DYNAMIC_SHARED(type, name) extern __shared__ type name[];
#define TESSERA_HIP_DEVICE 1
// A kernel: one argument struct by value (kernels/hip/hip_args.h), C linkage so the code object's
// symbol is the kernel's name.
#define TESSERA_KERNEL(name, Args) extern "C" __global__ void name(const Args a)

struct hip_dim3 {
  uint32_t x, y, z;
};
#define threadIdx \
  (hip_dim3{__builtin_amdgcn_workitem_id_x(), __builtin_amdgcn_workitem_id_y(), __builtin_amdgcn_workitem_id_z()})
#define blockIdx \
  (hip_dim3{__builtin_amdgcn_workgroup_id_x(), __builtin_amdgcn_workgroup_id_y(), __builtin_amdgcn_workgroup_id_z()})
#define blockDim                                                                                       \
  (hip_dim3{(uint32_t)__builtin_amdgcn_workgroup_size_x(), (uint32_t)__builtin_amdgcn_workgroup_size_y(), \
            (uint32_t)__builtin_amdgcn_workgroup_size_z()})
#define gridDim                                                                  \
  (hip_dim3{__builtin_amdgcn_grid_size_x() / __builtin_amdgcn_workgroup_size_x(), \
            __builtin_amdgcn_grid_size_y() / __builtin_amdgcn_workgroup_size_y(), \
            __builtin_amdgcn_grid_size_z() / __builtin_amdgcn_workgroup_size_z()})

constexpr int warpSize = 32;

__device__ inline void __syncthreads() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
__device__ inline unsigned __lane_id() { return __builtin_amdgcn_mbcnt_lo(~0u, 0u); }

// Cross-lane reads through ds_bpermute (byte addresses); width as HIP's: lanes grouped by width.
__device__ inline int __hip_bperm(int v, int src) { return __builtin_amdgcn_ds_bpermute(src << 2, v); }
__device__ inline int __shfl(int v, int src, int width = 32) {
  const int lane = (int)__lane_id();
  return __hip_bperm(v, (lane & ~(width - 1)) + (src & (width - 1)));
}
__device__ inline float __shfl(float v, int src, int width = 32) {
  return __builtin_bit_cast(float, __shfl(__builtin_bit_cast(int, v), src, width));
}
__device__ inline unsigned __shfl(unsigned v, int src, int width = 32) { return (unsigned)__shfl((int)v, src, width); }
template <class T>
__device__ inline T __shfl_xor(T v, int mask, int width = 32) {
  return __shfl(v, (int)__lane_id() ^ mask, width);
}
template <class T>
__device__ inline T __shfl_down(T v, unsigned delta, int width = 32) {
  const int lane = (int)__lane_id(), src = (lane & (width - 1)) + (int)delta;
  return src < width ? __shfl(v, (lane & ~(width - 1)) + src, width) : v;
}
__device__ inline unsigned long long __ballot(int pred) { return __builtin_amdgcn_ballot_w32(pred != 0); }
// Wave reductions (the lanes of mask must all be active; every kernel passes the full wave).
__device__ inline int __reduce_add_sync(unsigned long long, int v) {
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor(v, m);
  return v;
}
__device__ inline int __reduce_max_sync(unsigned long long, int v) {
  for (int m = 16; m > 0; m >>= 1) v = __builtin_elementwise_max(v, __shfl_xor(v, m));
  return v;
}
__device__ inline int __reduce_min_sync(unsigned long long, int v) {
  for (int m = 16; m > 0; m >>= 1) v = __builtin_elementwise_min(v, __shfl_xor(v, m));
  return v;
}

// Device-scope ordering of global memory (release before, acquire after an atomic that hands work over).
__device__ inline void __threadfence() { __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "agent"); }

__device__ inline float atomicAdd(float* p, float v) {
  return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ inline int atomicAdd(int* p, int v) { return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT); }
__device__ inline unsigned atomicAdd(unsigned* p, unsigned v) {
  return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ inline int atomicMax(int* p, int v) { return __hip_atomic_fetch_max(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT); }
__device__ inline int atomicExch(int* p, int v) { return __hip_atomic_exchange(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT); }
__device__ inline int atomicCAS(int* p, int cmp, int v) {
  __hip_atomic_compare_exchange_strong(p, &cmp, v, __ATOMIC_RELAXED, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
  return cmp;
}

#else  // host: the emulator

#include "kernels/hip/emu/hip_emu.h"
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif

// f16 vectors of the WMMA builtins (the same ext_vector types on both compilers).
typedef _Float16 hip_half8 __attribute__((ext_vector_type(8)));
typedef float hip_float8 __attribute__((ext_vector_type(8)));

// Signed 8-bit dot product of four packed bytes plus c: sudot4 with both operands signed (gfx11 and
// gfx12 have v_dot4_i32_iu8; sdot4 is a gfx9 instruction).
__device__ inline int hip_dot4_i8(int a, int b, int c) { return __builtin_amdgcn_sudot4(true, a, true, b, c, false); }
