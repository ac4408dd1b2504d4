// Kernel micro-benchmarks: every registered matmul kernel (forced by name through ops::matmul) on real
// Qwen3-30B-A3B shapes, reporting weight GB/s, % of a memcpy bandwidth measured in the same run, and
// GMAC/s. Shapes:
//   expert  one 2048->768 expert matrix, one token (decode GEMV)
//   moe8    8 experts' gate+up (16 jobs of 2048->768, one input) as one call, one token
//   down8   8 experts' down (8 jobs of 768->2048), one token
//   head    the 151669x2048 output head (Q6_K and Q8_0 kernels only), one token
//   prefill 512 tokens x 2048->768 (GEMM kernels)
//   moe_prefill 16 experts x 32 tokens each, 2048->768 (GEMM kernels: how MoE prefill groups tokens)
// Single-token cases rotate through 64 weight slices (more than the L3) so weights come from DRAM.
// The smaller ops' kernels, by name, on Qwen3-30B-A3B shapes (32 query / 4 KV heads of 128):
//   attention_f16_*/decode_depth4096   one token over 4097 keys, rotating over 8 layers' KV (DRAM);
//                                      GB/s = K and V bytes the token reads
//   attention_f16_*/prefill_512tok     a 512-token tile at positions 0..511 (causal); GB/s = K and V
//                                      bytes of the tile's 512 positions, GFLOP/s = 4*head_dim per (row, key)
//   quantize_*/decode_2048, prefill_512x2048   activation rows prepared for matmul; GB/s = f32 bytes read
// Threads: TESSERA_BENCH_THREADS (default 2). Other processes on the machine make numbers noisy: use
// --benchmark_repetitions and take the best.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/cpu_kv.h"
#include "engine/backend/cpu_matmul.h"
#include "kernels/cpu/attention.h"
#include "kernels/registry.h"
#include "tools/testdata/random_weights.h"

using namespace tessera;
using namespace tessera::ops;

namespace {

int bench_threads() {
  const char* e = std::getenv("TESSERA_BENCH_THREADS");
  return e ? std::max(1, std::atoi(e)) : 2;
}

ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Copy bandwidth (bytes read + bytes written per second) with the pool's threads on 256 MiB: the best
// seen in this run (start-up measurement, then every iteration of the memcpy benchmark, which runs first).
double& best_memcpy_gbps() {
  static double gbps = 0;
  return gbps;
}

double copy_once(std::vector<uint8_t>& a, std::vector<uint8_t>& b) {
  const size_t n = a.size();
  const int nt = pool().size();
  const auto t0 = std::chrono::steady_clock::now();
  pool().run([&](int t) {
    const size_t chunk = n / nt;
    std::memcpy(b.data() + t * chunk, a.data() + t * chunk, chunk);
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gbps = 2.0 * static_cast<double>(n) / s / 1e9;
  best_memcpy_gbps() = std::max(best_memcpy_gbps(), gbps);
  return gbps;
}

double memcpy_gbps() {
  static const bool measured = [] {
    std::vector<uint8_t> a(size_t(256) << 20, 1), b(size_t(256) << 20, 2);
    for (int rep = 0; rep < 5; ++rep) copy_once(a, b);
    return true;
  }();
  (void)measured;
  return best_memcpy_gbps();
}

// Random weights per (type, rows, cols), made once.
const std::vector<uint8_t>& weights(GgmlType t, int64_t n_out, int64_t n_in) {
  static std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<std::vector<uint8_t>>> cache;
  auto& slot = cache[{static_cast<int>(t), n_out, n_in}];
  if (!slot) slot = std::make_unique<std::vector<uint8_t>>(random_weight_rows(t, n_out, n_in, 42));
  return *slot;
}

struct Case {
  const char* name;
  int64_t n_in, n_out, n_tokens;
  int n_jobs;         // jobs in one call, each its own expert slice
  bool shared_input;  // all jobs read the same x
};

// Decode cases rotate through a pool of weight slices larger than the 32 MiB L3, so every call reads
// its weights from DRAM as a real decode step does (each token visits other experts / layers).
constexpr int kSlicePool = 64;

void run_case(benchmark::State& state, const MatmulKernel* k, Case c) {
  const GgmlType t = k->wtype;
  const size_t rb = row_bytes(t, c.n_in);
  const bool rotate = c.n_tokens == 1 && static_cast<double>(rb) * c.n_out * c.n_jobs < 64e6;
  const int pool_slices = rotate ? std::max(kSlicePool, c.n_jobs) : c.n_jobs;
  const auto& w = weights(t, c.n_out * pool_slices, c.n_in);
  const auto x = random_activations(c.n_in * c.n_tokens * (c.shared_input ? 1 : c.n_jobs), 7);
  std::vector<float> y(static_cast<size_t>(c.n_out * c.n_tokens * c.n_jobs));
  std::vector<MatmulJob> jobs(static_cast<size_t>(c.n_jobs));
  int64_t next_slice = 0;
  auto set_jobs = [&] {
    for (int j = 0; j < c.n_jobs; ++j) {
      MatmulJob& job = jobs[static_cast<size_t>(j)];
      const int64_t slice = (next_slice + j) % pool_slices;
      job.w = WeightView{t, w.data() + static_cast<size_t>(slice) * c.n_out * rb, c.n_in, c.n_out, rb};
      job.x = x.data() + (c.shared_input ? 0 : j * c.n_in * c.n_tokens);
      job.x_stride = c.n_in;
      job.n_tokens = c.n_tokens;
      job.y = y.data() + static_cast<size_t>(j) * c.n_out * c.n_tokens;
      job.y_stride = c.n_out;
      job.kernel = k;
    }
    next_slice = (next_slice + c.n_jobs) % pool_slices;
  };
  set_jobs();
  matmul(jobs, pool());  // warm-up (and the weights into whatever cache level they fit)
  const double cpu0 = process_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (rotate) set_jobs();
    matmul(jobs, pool());
    benchmark::DoNotOptimize(y.data());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_secs = process_cpu_seconds() - cpu0;
  const double iters = static_cast<double>(state.iterations());
  const double bytes = static_cast<double>(rb) * c.n_out * c.n_jobs;  // weight bytes per call
  const double macs = static_cast<double>(c.n_in) * c.n_out * c.n_jobs * c.n_tokens;
  const double gbps = bytes * iters / secs / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["GMAC/s"] = macs * iters / secs / 1e9;
  // weight bytes per second against the best copy traffic (read + write) per second seen in this run
  state.counters["pct_memcpy"] = 100.0 * gbps / memcpy_gbps();
  // per second of CPU time of all threads: what the kernel does with the cores it actually got (the
  // machine is shared, so wall-clock rates undercount when other processes run)
  state.counters["GMAC/cpu_s"] = macs * iters / cpu_secs / 1e9;
  state.counters["GB/cpu_s"] = bytes * iters / cpu_secs / 1e9;
  state.counters["threads"] = pool().size();
  state.counters["dram"] = rotate || bytes > 64e6 ? 1 : 0;  // 1: weights come from DRAM each call
  state.SetLabel(std::string(backend_name(k->backend)));
}

void bm_memcpy(benchmark::State& state) {
  std::vector<uint8_t> a(size_t(256) << 20, 1), b(size_t(256) << 20, 2);
  for (auto _ : state) {
    copy_once(a, b);
    benchmark::DoNotOptimize(b.data());
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * static_cast<double>(a.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["best_GB/s"] = best_memcpy_gbps();
}

// Attention of n_tokens tokens at positions depth.. over the f16 paged KV of Qwen3-30B-A3B (one
// sequence). Decode rotates over kLayers layers so each call reads its K and V from DRAM.
void run_attention(benchmark::State& state, const OpKernel* k, int depth, int n_tokens) {
  constexpr int kHeads = 32, kHeadsKv = 4, kHeadDim = 128, kLayers = 8;
  const int n_pos = depth + n_tokens, n_blocks = (n_pos + kKvBlock - 1) / kKvBlock;
  const int layers = n_tokens == 1 ? kLayers : 1;
  engine::CpuKv kv(engine::KvShape{layers, kHeadsKv, kHeadDim, n_blocks});
  std::vector<int32_t> blocks(static_cast<size_t>(n_blocks));
  for (int b = 0; b < n_blocks; ++b) blocks[b] = b;
  const auto kvals = random_activations(static_cast<int64_t>(kHeadsKv) * kHeadDim, 3);
  for (int l = 0; l < layers; ++l)
    for (int p = 0; p < n_pos; ++p) kv.store(l, blocks.data(), p, kvals.data(), kvals.data());
  const auto q = random_activations(static_cast<int64_t>(n_tokens) * kHeads * kHeadDim, 4);
  std::vector<float> out(q.size());
  std::vector<int32_t> pos(static_cast<size_t>(n_tokens));
  std::vector<const int32_t*> tables(static_cast<size_t>(n_tokens), blocks.data());
  for (int t = 0; t < n_tokens; ++t) pos[t] = depth + t;
  AttentionArgs a;
  a.n_tokens = n_tokens;
  a.n_head = kHeads;
  a.n_head_kv = kHeadsKv;
  a.head_dim = kHeadDim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  a.q = q.data();
  a.q_stride = kHeads * kHeadDim;
  a.out = out.data();
  a.out_stride = kHeads * kHeadDim;
  a.pos = pos.data();
  a.block_table = tables.data();
  a.block_elems = kv.head_block_elems();
  a.head_stride = kv.head_stride();
  const AttendRowsFn fn = k->fn<AttendRowsFn>();
  int layer = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    a.k_cache = kv.k_layer(layer);
    a.v_cache = kv.v_layer(layer);
    layer = (layer + 1) % layers;
    attention(a, pool(), fn);
    benchmark::DoNotOptimize(out.data());
  }
  const double per_s = static_cast<double>(state.iterations()) /
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // K and V bytes of the positions the tokens see (each read once by an ideal kernel)
  const double kv_bytes = 2.0 * kHeadsKv * kHeadDim * sizeof(uint16_t) * n_pos;
  double pairs = 0;  // (query row, key) pairs
  for (int t = 0; t < n_tokens; ++t) pairs += static_cast<double>(kHeads) * (pos[t] + 1);
  state.counters["GB/s"] = kv_bytes * per_s / 1e9;
  state.counters["GFLOP/s"] = pairs * 4 * kHeadDim * per_s / 1e9;
  state.counters["threads"] = pool().size();
  state.SetLabel(std::string(backend_name(k->backend)));
}

// Activation preparation of n_tokens rows of n_in values (on the calling thread, as decode runs it;
// prefill splits tokens over the pool like ops::matmul).
void run_quantize(benchmark::State& state, const OpKernel* k, ActType act, int64_t n_in, int64_t n_tokens) {
  const auto x = random_activations(n_in * n_tokens, 5);
  const size_t n = static_cast<size_t>(n_in * n_tokens);
  std::vector<int8_t> qs(n);
  std::vector<float> d(n / 32 + 1);
  std::vector<int32_t> s(n / 16 + 1), s32(n / 32 + 1);
  std::vector<uint16_t> h16(n);
  const QuantizeFn fn = k->fn<QuantizeFn>();
  constexpr int64_t kTokensPerTask = 8;
  const int64_t n_tasks = (n_tokens + kTokensPerTask - 1) / kTokensPerTask;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (n_tasks == 1) {
      fn(act, x.data(), n_in, n_in, 0, n_tokens, qs.data(), d.data(), s.data(), s32.data(), h16.data());
    } else {
      pool().parallel_for(n_tasks, [&](int64_t t, int) {
        fn(act, x.data(), n_in, n_in, t * kTokensPerTask, std::min(n_tokens, (t + 1) * kTokensPerTask), qs.data(),
           d.data(), s.data(), s32.data(), h16.data());
      });
    }
    benchmark::DoNotOptimize(qs.data());
    benchmark::DoNotOptimize(h16.data());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["GB/s"] = static_cast<double>(n) * sizeof(float) * static_cast<double>(state.iterations()) / secs / 1e9;
  state.counters["threads"] = n_tasks == 1 ? 1 : pool().size();
  state.SetLabel(std::string(backend_name(k->backend)));
}

void register_op_benchmarks(const DeviceCaps& caps) {
  for (const OpKernel& k : op_kernels()) {
    if (k.op == "attention_f16") {
      if (!op_kernel_supports(k, caps, 128)) continue;
      benchmark::RegisterBenchmark((k.name + "/decode_depth4096").c_str(),
                                   [&k](benchmark::State& st) { run_attention(st, &k, 4096, 1); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark((k.name + "/prefill_512tok").c_str(),
                                   [&k](benchmark::State& st) { run_attention(st, &k, 0, 512); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    } else if (k.op.starts_with("quantize_")) {
      if (!op_kernel_supports(k, caps)) continue;
      ActType act = ActType::F32;
      for (ActType a : {ActType::F16, ActType::BF16, ActType::Q8_0, ActType::Q8_1, ActType::Q8_K})
        if (quantize_op_key(a) == k.op) act = a;
      benchmark::RegisterBenchmark((k.name + "/decode_2048").c_str(),
                                   [&k, act](benchmark::State& st) { run_quantize(st, &k, act, 2048, 1); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark((k.name + "/prefill_512x2048").c_str(),
                                   [&k, act](benchmark::State& st) { run_quantize(st, &k, act, 2048, 512); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const DeviceCaps caps = host_caps();
  std::printf("memcpy bandwidth at start-up (read + write, %d threads, best of 5): %.1f GB/s\n", pool().size(), memcpy_gbps());
  benchmark::RegisterBenchmark("memcpy_256MiB (read+write bytes)", bm_memcpy)->Unit(benchmark::kMillisecond);
  const Case expert{"expert_2048x768", 2048, 768, 1, 1, true};
  const Case moe8{"moe8_gate_up_16x2048x768", 2048, 768, 1, 16, true};
  const Case down8{"down8_8x768x2048", 768, 2048, 1, 8, false};
  const Case head{"head_151669x2048", 2048, 151669, 1, 1, true};
  const Case prefill{"prefill_512x2048x768", 2048, 768, 512, 1, true};
  // MoE prefill: 512 tokens x top-8 over 128 experts = 32 tokens per expert on average
  const Case moe_prefill{"moe_prefill_16x32tok_2048x768", 2048, 768, 32, 16, false};
  const Case router{"router_128x2048", 2048, 128, 1, 1, true};
  const Case tiny{"tiny_16x256", 256, 16, 1, 1, true};  // dispatch + thread wake-up overhead
  for (const MatmulKernel& k : matmul_kernels()) {
    std::vector<Case> cases;
    const bool slow = k.backend == Backend::Ref || k.variant == "scalar";
    if (k.op == Op::Gemv) {
      cases = {expert, moe8, down8, tiny};
      if (k.wtype == GgmlType::F32) cases.push_back(router);
      if (!slow && (k.wtype == GgmlType::Q6_K || k.wtype == GgmlType::Q8_0)) cases.push_back(head);
    } else {
      if (k.backend == Backend::Ref) cases = {Case{"prefill_16x2048x768", 2048, 768, 16, 1, true}};
      else cases = {prefill, moe_prefill, Case{"few_4tok_2048x768", 2048, 768, 4, 1, true}};
    }
    for (const Case& c : cases) {
      const MatmulShape s{k.wtype, c.n_in, c.n_out, c.n_tokens};
      if (!kernel_supports(k, s, caps)) continue;
      const std::string name = k.name + "/" + c.name;
      benchmark::RegisterBenchmark(name.c_str(), [&k, c](benchmark::State& st) { run_case(st, &k, c); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  register_op_benchmarks(caps);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_features", caps.describe());
  benchmark::AddCustomContext("threads", std::to_string(pool().size()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
