// The HIP-on-CPU emulator (`--backend hip-emu`, and the tests of every HIP kernel): the host side of
// kernels/hip/hip_compat.h. A launch runs its blocks one after another on the calling thread; the
// work-items of a block are fibers (Boost.Context) that switch only where a GPU lane would wait for
// others: __syncthreads (all work-items of the block) and the wave32 cross-lane operations (the 32
// lanes of a wave exchange values through a wave barrier). Blocks' __shared__ variables are
// thread_local statics (one block runs at a time per thread), dynamic shared memory is a per-block
// buffer. Every launch is counted, with the global-memory bytes its launcher declares.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace hip_emu {

struct dim3 {
  uint32_t x = 1, y = 1, z = 1;
};
constexpr int kWave = 32;
constexpr size_t kSlot = 64;  // bytes one lane contributes to a wave exchange (a WMMA A and B fragment)

struct ItemCtx {
  dim3 tid;
  uint32_t linear = 0, lane = 0, wave = 0;
};
struct BlockCtx {
  dim3 idx, dim, grid;
  void* dynamic_shared = nullptr;
};
// The work-item running now and its block (valid inside a kernel only).
extern thread_local ItemCtx* g_item;
extern thread_local BlockCtx* g_block;

// A barrier of every work-item of the block.
void syncthreads();
// A wave exchange: the calling lane publishes `bytes` (<= kSlot) and waits until every live lane of its
// wave has; returns the wave's slots (lane i at i * kSlot) and, in *mask, the lanes that took part.
// Every lane must call exchange_done() after reading, before the next exchange.
const uint8_t* exchange_begin(const void* mine, size_t bytes, uint32_t* mask);
void exchange_done();

template <class T>
T slot_value(const uint8_t* slots, int lane) {
  T v;
  std::memcpy(&v, slots + static_cast<size_t>(lane) * kSlot, sizeof(T));
  return v;
}

// ---- launches and what they are counted as ----
struct Launch {
  std::string name;
  dim3 grid, block;
  size_t dynamic_shared = 0;            // bytes of HIP_DYNAMIC_SHARED memory per block
  uint64_t bytes_read = 0, bytes_written = 0;  // global memory, as the launcher declares it
};
// Runs body() in every work-item of every block (kernel launches are synchronous here).
void launch(const Launch& l, const std::function<void()>& body);

struct Stats {
  uint64_t launches = 0, bytes_read = 0, bytes_written = 0;
};
Stats stats();  // since the last reset (all threads)
void reset_stats();

// ---- kernels compiled for the host, by name (TESSERA_KERNEL registers them) ----
using KernelFn = void (*)(const void* args);
struct Registrar {
  Registrar(const char* name, KernelFn fn);
};
KernelFn find_kernel(const std::string& name);  // null when there is none

// ---- the dot and matrix builtins, as functions ----
// v_dot4_i32_iu8: sum of the four byte products (each operand's bytes signed or unsigned) plus c;
// clamp saturates the sum to int32 instead of wrapping.
int sudot4(bool a_signed, int a, bool b_signed, int b, int c, bool clamp);
// v_dot4_i32_i8 (gfx9): both operands signed.
inline int sdot4(int a, int b, int c, bool clamp) { return sudot4(true, a, true, b, c, clamp); }

typedef _Float16 half8 __attribute__((ext_vector_type(8)));
typedef float float8 __attribute__((ext_vector_type(8)));
// v_wmma_f32_16x16x16_f16 on gfx12, wave32: D = A B + C for 16x16 tiles held across the wave's lanes in
// the RDNA 4 layout (hip_emu.cpp says which lane holds what). A wave operation: every lane calls it.
float8 wmma_f32_16x16x16_f16_w32_gfx12(half8 a, half8 b, float8 c);

}  // namespace hip_emu

// ---- the HIP names the kernels use, on the host ----
#define __global__
#define __device__
#define __host__
#define __shared__ static thread_local
#define TESSERA_KERNEL(name, Args)                                                                   \
  void name(const Args a);                                                                         \
  static const ::hip_emu::Registrar name##_emu_registrar(#name, [](const void* p) { name(*static_cast<const Args*>(p)); }); \
  void name(const Args a)
#define HIP_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::hip_emu::g_block->dynamic_shared);
#define threadIdx (::hip_emu::g_item->tid)
#define blockIdx (::hip_emu::g_block->idx)
#define blockDim (::hip_emu::g_block->dim)
#define gridDim (::hip_emu::g_block->grid)
#define __builtin_amdgcn_sudot4 ::hip_emu::sudot4
#define __builtin_amdgcn_sdot4 ::hip_emu::sdot4
#define __builtin_amdgcn_wmma_f32_16x16x16_f16_w32_gfx12 ::hip_emu::wmma_f32_16x16x16_f16_w32_gfx12

constexpr int warpSize = hip_emu::kWave;

inline void __syncthreads() { hip_emu::syncthreads(); }
inline unsigned __lane_id() { return hip_emu::g_item->lane; }

// Lane src of the caller's group of `width` lanes (src taken modulo width, as HIP does).
template <class T>
T __shfl(T v, int src, int width = 32) {
  const int lane = static_cast<int>(hip_emu::g_item->lane);
  const uint8_t* s = hip_emu::exchange_begin(&v, sizeof(T), nullptr);
  const T r = hip_emu::slot_value<T>(s, (lane & ~(width - 1)) + (src & (width - 1)));
  hip_emu::exchange_done();
  return r;
}
template <class T>
T __shfl_xor(T v, int mask, int width = 32) {
  return __shfl(v, static_cast<int>(hip_emu::g_item->lane) ^ mask, width);
}
template <class T>
T __shfl_down(T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(hip_emu::g_item->lane), src = (lane & (width - 1)) + static_cast<int>(delta);
  const T r = __shfl(v, src < width ? src : lane, width);  // every lane takes part in the exchange
  return src < width ? r : v;
}
// Bit i: lane i is live and its predicate is true.
inline unsigned long long __ballot(int pred) {
  const int p = pred != 0;
  uint32_t live = 0;
  const uint8_t* s = hip_emu::exchange_begin(&p, sizeof p, &live);
  unsigned long long m = 0;
  for (int l = 0; l < hip_emu::kWave; ++l)
    if ((live >> l & 1u) && hip_emu::slot_value<int>(s, l)) m |= 1ull << l;
  hip_emu::exchange_done();
  return m;
}
// Reductions over the live lanes of the wave (the mask names them; every kernel passes the full wave).
template <class F>
int hip_emu_reduce(int v, F f) {
  uint32_t live = 0;
  const uint8_t* s = hip_emu::exchange_begin(&v, sizeof v, &live);
  bool first = true;
  int r = 0;
  for (int l = 0; l < hip_emu::kWave; ++l)
    if (live >> l & 1u) {
      const int x = hip_emu::slot_value<int>(s, l);
      r = first ? x : f(r, x);
      first = false;
    }
  hip_emu::exchange_done();
  return r;
}
inline int __reduce_add_sync(unsigned long long, int v) {
  return hip_emu_reduce(v, [](int a, int b) { return static_cast<int>(static_cast<unsigned>(a) + static_cast<unsigned>(b)); });
}
inline int __reduce_max_sync(unsigned long long, int v) { return hip_emu_reduce(v, [](int a, int b) { return a > b ? a : b; }); }
inline int __reduce_min_sync(unsigned long long, int v) { return hip_emu_reduce(v, [](int a, int b) { return a < b ? a : b; }); }

// Atomics: fibers of a block never interleave between two barriers, but blocks may one day run on
// several threads, so these are real atomics.
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline float atomicAdd(float* p, float v) {
  uint32_t* u = reinterpret_cast<uint32_t*>(p);
  uint32_t old = __atomic_load_n(u, __ATOMIC_RELAXED), want;
  do {
    float f;
    std::memcpy(&f, &old, 4);
    f += v;
    std::memcpy(&want, &f, 4);
  } while (!__atomic_compare_exchange_n(u, &old, want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  float r;
  std::memcpy(&r, &old, 4);
  return r;
}
inline int atomicMax(int* p, int v) {
  int old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline int atomicCAS(int* p, int cmp, int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}
