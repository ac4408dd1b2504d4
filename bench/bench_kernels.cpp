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
// Threads: TESSERA_BENCH_THREADS (default 2). Other processes on the machine make numbers noisy: use
// --benchmark_repetitions and take the best.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/cpu_matmul.h"
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_features", caps.describe());
  benchmark::AddCustomContext("threads", std::to_string(pool().size()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
