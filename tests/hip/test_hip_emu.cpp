// The HIP-on-CPU emulator against scalar definitions: barriers, dynamic shared memory, every wave32
// cross-lane operation, atomics, the dot-product builtins and the gfx12 WMMA builtin (random inputs;
// the WMMA tile against a float64 product built from the documented lane layout), launch counting,
// and the errors (divergent barriers, exceptions from a work-item).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/hip/hip_compat.h"

namespace {

using hip_emu::dim3;

template <class F>
void run(dim3 grid, dim3 block, F&& body, size_t dyn = 0) {
  hip_emu::Launch l;
  l.name = "test";
  l.grid = grid;
  l.block = block;
  l.dynamic_shared = dyn;
  hip_emu::launch(l, body);
}

// ---- kernels (the HIP dialect of kernels/hip) ----
__global__ void rotate_shared(const int* in, int* out) {
  __shared__ int s[256];
  const unsigned t = threadIdx.x, n = blockDim.x;
  s[t] = in[blockIdx.x * n + t];
  __syncthreads();
  const int v = s[(t + 1) % n];  // written by another work-item, maybe of another wave
  __syncthreads();
  s[t] = v * 2;
  __syncthreads();
  out[blockIdx.x * n + t] = s[(t + n - 1) % n];
}

__global__ void tree_sum_dynamic(const float* in, float* out) {
  HIP_DYNAMIC_SHARED(float, s)
  const unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
    if (t < h) s[t] += s[t + h];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

TEST(HipEmu, SyncthreadsIsABarrierAcrossWaves) {
  for (unsigned n : {32u, 64u, 256u}) {
    std::vector<int> in(3 * n), out(3 * n);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i * 7 + 3);
    run({3, 1, 1}, {n, 1, 1}, [&] { rotate_shared(in.data(), out.data()); });
    for (unsigned b = 0; b < 3; ++b)
      for (unsigned t = 0; t < n; ++t) EXPECT_EQ(out[b * n + t], 2 * in[b * n + t]) << "block " << b << " item " << t;
  }
}

TEST(HipEmu, DynamicSharedTreeReduction) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  const unsigned n = 128;
  std::vector<float> in(5 * n), out(5);
  for (float& v : in) v = u(rng);
  run({5, 1, 1}, {n, 1, 1}, [&] { tree_sum_dynamic(in.data(), out.data()); }, n * sizeof(float));
  for (int b = 0; b < 5; ++b) {
    double want = 0;
    for (unsigned i = 0; i < n; ++i) want += in[b * n + i];
    EXPECT_NEAR(out[b], want, 1e-4);
  }
}

TEST(HipEmu, IndicesOf3dGridsAndBlocks) {
  const dim3 g{2, 3, 2}, b{4, 2, 3};
  const unsigned nb = b.x * b.y * b.z;
  std::vector<int> seen(g.x * g.y * g.z * nb, 0);
  run(g, b, [&] {
    EXPECT_EQ(gridDim.x, 2u);
    EXPECT_EQ(blockDim.z, 3u);
    const unsigned blk = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    EXPECT_EQ(__lane_id(), t % 32);
    seen[blk * nb + t] += 1;
  });
  for (int s : seen) EXPECT_EQ(s, 1);
}

// ---- wave operations against their scalar definitions ----
TEST(HipEmu, ShufflesMatchScalarDefinition) {
  std::mt19937 rng(2);
  const unsigned n = 96;  // three waves
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(rng() % 1000);
  for (int width : {32, 16, 8, 4, 2}) {
    std::vector<float> sx(n), xr(n), dn(n);
    std::vector<int> src(n);
    for (int& s : src) s = static_cast<int>(rng() % 64);
    const int mask = static_cast<int>(rng() % static_cast<unsigned>(width)) | 1, delta = static_cast<int>(rng() % static_cast<unsigned>(width));
    run({1, 1, 1}, {n, 1, 1}, [&] {
      const unsigned t = threadIdx.x;
      sx[t] = __shfl(x[t], src[t], width);
      xr[t] = __shfl_xor(x[t], mask, width);
      dn[t] = __shfl_down(x[t], static_cast<unsigned>(delta), width);
    });
    for (unsigned t = 0; t < n; ++t) {
      const unsigned wave = t / 32 * 32, lane = t % 32, group = lane / static_cast<unsigned>(width) * static_cast<unsigned>(width);
      EXPECT_EQ(sx[t], x[wave + group + static_cast<unsigned>(src[t] % width)]) << "shfl w" << width << " t" << t;
      EXPECT_EQ(xr[t], x[wave + (lane ^ static_cast<unsigned>(mask))]) << "xor w" << width << " t" << t;
      const unsigned in_group = lane - group;
      EXPECT_EQ(dn[t], in_group + static_cast<unsigned>(delta) < static_cast<unsigned>(width) ? x[t + static_cast<unsigned>(delta)] : x[t])
          << "down w" << width << " t" << t;
    }
  }
}

TEST(HipEmu, BallotAndReductionsOverLiveLanes) {
  std::mt19937 rng(3);
  const unsigned n = 80;  // the last wave has 16 live lanes
  std::vector<int> v(n), sum(n), mx(n), mn(n);
  std::vector<unsigned long long> bal(n);
  for (int& a : v) a = static_cast<int>(rng() % 2001) - 1000;
  run({1, 1, 1}, {n, 1, 1}, [&] {
    const unsigned t = threadIdx.x;
    bal[t] = __ballot(v[t] > 0);
    sum[t] = __reduce_add_sync(~0ull, v[t]);
    mx[t] = __reduce_max_sync(~0ull, v[t]);
    mn[t] = __reduce_min_sync(~0ull, v[t]);
  });
  for (unsigned w = 0; w * 32 < n; ++w) {
    unsigned long long b = 0;
    int s = 0, hi = INT32_MIN, lo = INT32_MAX;
    for (unsigned l = 0; l < 32 && w * 32 + l < n; ++l) {
      const int a = v[w * 32 + l];
      if (a > 0) b |= 1ull << l;
      s += a;
      hi = std::max(hi, a);
      lo = std::min(lo, a);
    }
    for (unsigned l = 0; l < 32 && w * 32 + l < n; ++l) {
      EXPECT_EQ(bal[w * 32 + l], b);
      EXPECT_EQ(sum[w * 32 + l], s);
      EXPECT_EQ(mx[w * 32 + l], hi);
      EXPECT_EQ(mn[w * 32 + l], lo);
    }
  }
}

TEST(HipEmu, EarlyExitedLanesCountAsArrived) {
  std::vector<int> out(64, -1);
  run({1, 1, 1}, {64, 1, 1}, [&] {
    const unsigned t = threadIdx.x;
    if (t % 32 >= 20) return;  // lanes 20..31 of each wave leave
    __syncthreads();
    out[t] = static_cast<int>(__ballot(1));
  });
  for (unsigned t = 0; t < 64; ++t) EXPECT_EQ(out[t], t % 32 < 20 ? (1 << 20) - 1 : -1);
}

TEST(HipEmu, AtomicsAcrossBlocks) {
  float fsum = 0;
  int isum = 0, imax = INT32_MIN, cas_winner = -1;
  unsigned usum = 0;
  run({7, 1, 1}, {64, 1, 1}, [&] {
    const int id = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(&fsum, 0.5f);
    atomicAdd(&isum, id);
    atomicAdd(&usum, 1u);
    atomicMax(&imax, (id * 37) % 401);
    atomicCAS(&cas_winner, -1, id);
  });
  int want_max = INT32_MIN;
  for (int id = 0; id < 448; ++id) want_max = std::max(want_max, (id * 37) % 401);
  EXPECT_EQ(fsum, 224.0f);
  EXPECT_EQ(isum, 447 * 448 / 2);
  EXPECT_EQ(usum, 448u);
  EXPECT_EQ(imax, want_max);
  EXPECT_EQ(cas_winner, 0);  // blocks and work-items start in order here
}

// ---- dot products ----
TEST(HipEmu, Dot4MatchesScalarDefinition) {
  std::mt19937 rng(4);
  for (int iter = 0; iter < 20000; ++iter) {
    const int a = static_cast<int>(rng()), b = static_cast<int>(rng());
    const int c = iter % 3 == 0 ? INT32_MAX - static_cast<int>(rng() % 100000) : static_cast<int>(rng() % 2000000) - 1000000;
    const bool as = rng() & 1, bs = rng() & 1, clamp = rng() & 1;
    int64_t s = c;
    for (int i = 0; i < 4; ++i) {
      const uint8_t ba = static_cast<uint8_t>(static_cast<uint32_t>(a) >> (8 * i)), bb = static_cast<uint8_t>(static_cast<uint32_t>(b) >> (8 * i));
      s += (as ? static_cast<int64_t>(static_cast<int8_t>(ba)) : ba) * (bs ? static_cast<int64_t>(static_cast<int8_t>(bb)) : bb);
    }
    const int want = clamp ? static_cast<int>(std::clamp<int64_t>(s, INT32_MIN, INT32_MAX)) : static_cast<int>(static_cast<uint32_t>(s));
    ASSERT_EQ(__builtin_amdgcn_sudot4(as, a, bs, b, c, clamp), want) << a << " " << b << " " << c;
    if (as && bs) ASSERT_EQ(__builtin_amdgcn_sdot4(a, b, c, clamp), want);
  }
  EXPECT_EQ(hip_dot4_i8(static_cast<int>(0x80ff7f01u), static_cast<int>(0x80ff7f01u), 5), 5 + 1 + 127 * 127 + 1 + 128 * 128);
}

// ---- WMMA (gfx12, wave32) ----
TEST(HipEmu, WmmaF32F16MatchesFloat64Product) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2, 2);
  for (int rep = 0; rep < 4; ++rep) {
    float A[16][16], B[16][16], C[16][16], D[16][16];
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        A[i][j] = static_cast<float>(static_cast<_Float16>(u(rng)));
        B[i][j] = static_cast<float>(static_cast<_Float16>(u(rng)));
        C[i][j] = u(rng);
      }
    run({1, 1, 1}, {64, 1, 1}, [&] {  // two waves, each computing the same tile
      const int l = static_cast<int>(__lane_id()), half = l / 16, mn = l % 16;
      hip_half8 a, b;
      hip_float8 c;
      for (int i = 0; i < 8; ++i) {
        a[i] = static_cast<_Float16>(A[mn][8 * half + i]);
        b[i] = static_cast<_Float16>(B[8 * half + i][mn]);
        c[i] = C[8 * half + i][mn];
      }
      const hip_float8 d = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32_gfx12(a, b, c);
      if (threadIdx.x < 32)
        for (int i = 0; i < 8; ++i) D[8 * half + i][mn] = d[i];
    });
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 16; ++n) {
        double want = C[m][n];
        for (int k = 0; k < 16; ++k) want += static_cast<double>(A[m][k]) * B[k][n];
        EXPECT_NEAR(D[m][n], want, 1e-5 * (1 + std::fabs(want))) << m << "," << n;
      }
  }
}

TEST(HipEmu, WmmaNeedsTheFullWave) {
  EXPECT_THROW(run({1, 1, 1}, {16, 1, 1}, [&] {
                 hip_half8 a{};
                 hip_float8 c{};
                 (void)__builtin_amdgcn_wmma_f32_16x16x16_f16_w32_gfx12(a, a, c);
               }),
               std::logic_error);
}

// ---- errors and counting ----
TEST(HipEmu, DivergentBarrierIsAnError) {
  EXPECT_THROW(run({1, 1, 1}, {64, 1, 1}, [&] {
                 if (threadIdx.x < 8) __syncthreads();
                 else (void)__shfl_xor(1, 1);
               }),
               std::runtime_error);
}

TEST(HipEmu, ExceptionOfAWorkItemReachesTheLauncher) {
  EXPECT_THROW(run({2, 1, 1}, {64, 1, 1}, [&] {
                 __syncthreads();
                 if (blockIdx.x == 1 && threadIdx.x == 40) throw std::runtime_error("boom");
                 __syncthreads();
               }),
               std::runtime_error);
  // the emulator is usable afterwards
  int n = 0;
  run({1, 1, 1}, {32, 1, 1}, [&] { atomicAdd(&n, 1); });
  EXPECT_EQ(n, 32);
}

TEST(HipEmu, CountsLaunchesAndDeclaredBytes) {
  hip_emu::reset_stats();
  for (int i = 0; i < 3; ++i) {
    hip_emu::Launch l;
    l.name = "count";
    l.block = {32, 1, 1};
    l.bytes_read = 100;
    l.bytes_written = 10;
    hip_emu::launch(l, [] {});
  }
  const hip_emu::Stats s = hip_emu::stats();
  EXPECT_EQ(s.launches, 3u);
  EXPECT_EQ(s.bytes_read, 300u);
  EXPECT_EQ(s.bytes_written, 30u);
}

}  // namespace
