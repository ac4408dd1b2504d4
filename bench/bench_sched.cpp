// tessera_bench_sched: scheduler benchmarks. (a) FIM workload: a long prompt edited near its end and
// resent R times as an editor would (each request waits for the previous one's tokens): the share of
// prompt tokens served from the prefix cache and the time to first token with and without the cache.
// (b) Throughput: aggregate decode tokens/s with 1, 4, 16 ... sequences decoding together.
// Usage: tessera_bench_sched -m MODEL [-t 2] [--fim-prompt 1500] [--fim-requests 20] [--gen 16]
//        [--no-cache-requests K] [--seqs 1,4,16] [--decode-steps 32] [--only fim|tput]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
#include "engine/model/model.h"
#include "engine/sched/scheduler.h"
#include "tools/cli/args.h"

using namespace tessera;
using namespace tessera::engine;

namespace {

constexpr const char* kUsage =
    "usage: tessera_bench_sched -m MODEL [options]\n"
    "  -t, --threads N          (default 2)\n"
    "  --only fim|tput          run one of the two benchmarks\n"
    "  --fim-prompt N           FIM prompt tokens (default 1500)\n"
    "  --fim-requests R         successive edited requests (default 20)\n"
    "  --fim-window W           edits land in the last W tokens (default 48)\n"
    "  --gen N                  tokens generated per FIM request (default 16)\n"
    "  --no-cache-requests K    requests timed without the prefix cache (default: R)\n"
    "  --seqs LIST              concurrent sequences for the throughput benchmark (default 1,4,16)\n"
    "  --tput-prompt N          prompt tokens per sequence there (default 32)\n"
    "  --decode-steps N         timed decode steps per sequence count (default 32)\n";

std::vector<int32_t> random_tokens(int n, int32_t n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> d(0, std::min<int32_t>(n_vocab, 100000) - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

void row(const char* bench, const std::string& what, const std::string& value) {
  std::printf("| %-5s | %-72s | %14s |\n", bench, what.c_str(), value.c_str());
  std::fflush(stdout);
}

std::string fmt_f(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

GenerateParams greedy(int n) {
  GenerateParams p;
  p.max_tokens = n;
  p.sampler.temperature = 0.0f;
  p.stop_at_eog = false;
  return p;
}

struct FimRun {
  std::vector<double> ttft_ms;  // per request
  std::vector<int> n_prompt, n_cached;
};

// R successive requests, each the previous prompt with 1-3 tokens inserted or replaced near its end.
FimRun run_fim(const std::shared_ptr<Model>& model, int threads, bool prefix_cache, int n_prompt, int n_requests,
               int window, int n_gen) {
  const int32_t V = static_cast<int32_t>(model->config().n_vocab);
  std::mt19937 rng(2024);  // the same edits with and without the cache
  std::vector<int32_t> prompt = random_tokens(n_prompt, V, rng);
  ContextOptions co;
  co.n_threads = threads;
  co.n_seq_max = 1;
  co.n_ctx = n_prompt + 4 * n_requests + n_gen + 64;
  co.kv_tokens = 4 * co.n_ctx;  // room for the cached blocks of earlier versions
  co.n_batch = 512;
  co.prefix_cache = prefix_cache;
  co.print_plan = false;
  Context ctx(model, co);
  Scheduler sched(ctx);
  FimRun out;
  std::uniform_int_distribution<int32_t> tok(0, std::min<int32_t>(V, 100000) - 1);
  for (int r = 0; r < n_requests; ++r) {
    if (r > 0) {  // the user typed: 1-3 tokens inserted or replaced in the last `window` tokens
      const int k = 1 + static_cast<int>(rng() % 3);
      const int at = static_cast<int>(prompt.size()) - 1 - static_cast<int>(rng() % static_cast<uint32_t>(window));
      for (int j = 0; j < k; ++j) {
        if (rng() % 2) prompt.insert(prompt.begin() + at, tok(rng));
        else prompt[std::min(static_cast<size_t>(at + j), prompt.size() - 1)] = tok(rng);
      }
    }
    const int id = sched.submit(prompt, greedy(n_gen));
    sched.run_until_idle();
    const GenerateResult& res = sched.request(id)->result();
    if (res.finish == FinishReason::Error) throw_error("fim request {}: {}", r, res.error);
    out.ttft_ms.push_back(res.ttft_ms);
    out.n_prompt.push_back(res.n_prompt);
    out.n_cached.push_back(res.n_prompt_cached);
    sched.forget(id);
  }
  return out;
}

double mean_from(const std::vector<double>& v, size_t from) {
  double s = 0;
  for (size_t i = from; i < v.size(); ++i) s += v[i];
  return v.size() > from ? s / static_cast<double>(v.size() - from) : 0.0;
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

struct Tput {
  double mean_tps = 0, median_tps = 0;  // aggregate decode tokens/s from the mean / median step time
  double median_step_ms = 0;
  double cpu_share = 0;  // process CPU time / (wall time x threads) over the timed steps: < 1 when cores are shared
};

// N sequences with short prompts decode together; times the steps where all N decode (no prefill).
Tput decode_throughput(const std::shared_ptr<Model>& model, int threads, int n_seq, int n_prompt, int steps) {
  const int32_t V = static_cast<int32_t>(model->config().n_vocab);
  std::mt19937 rng(7 + static_cast<uint32_t>(n_seq));
  ContextOptions co;
  co.n_threads = threads;
  co.n_seq_max = n_seq;
  co.n_ctx = n_prompt + steps + 40;
  co.n_batch = std::max(512, n_seq * n_prompt);
  co.print_plan = false;
  Context ctx(model, co);
  Scheduler sched(ctx);
  for (int i = 0; i < n_seq; ++i) sched.submit(random_tokens(n_prompt, V, rng), greedy(steps + 2));
  std::vector<double> step_ms;
  double cpu_ms = 0;
  bool warm = false;  // skip the first all-decode step (first touch of the scratch)
  StepStats st;
  for (;;) {
    const double c0 = process_cpu_ms();
    if (!sched.step(&st)) break;
    const double c1 = process_cpu_ms();
    if (st.n_prefill != 0 || st.n_decode != n_seq) continue;
    if (!warm) {
      warm = true;
      continue;
    }
    step_ms.push_back(st.ms);
    cpu_ms += c1 - c0;
  }
  Tput t;
  if (step_ms.empty()) return t;
  double total = 0;
  for (double m : step_ms) total += m;
  std::sort(step_ms.begin(), step_ms.end());
  t.median_step_ms = step_ms[step_ms.size() / 2];
  t.mean_tps = n_seq * 1000.0 * static_cast<double>(step_ms.size()) / total;
  t.median_tps = n_seq * 1000.0 / t.median_step_ms;
  t.cpu_share = cpu_ms / (total * threads);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    cli::Args args(argc, argv);
    if (args.flag({"-h", "--help"})) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    const std::string model_path = args.require({"-m", "--model"});
    const int threads = args.get_threads({"-t", "--threads"}, 2);
    const std::string only = args.get({"--only"}, "");
    const int fim_prompt = static_cast<int>(args.get_int({"--fim-prompt"}, 1500, 2, 1 << 20));
    const int fim_requests = static_cast<int>(args.get_int({"--fim-requests"}, 20, 1, 100000));
    const int fim_window = static_cast<int>(args.get_int({"--fim-window"}, 48, 4, 1 << 20));
    const int gen = static_cast<int>(args.get_int({"--gen"}, 16, 1, 1 << 20));
    const int no_cache_requests =
        static_cast<int>(args.get_int({"--no-cache-requests"}, fim_requests, 1, fim_requests));
    const std::string seqs_arg = args.get({"--seqs"}, "1,4,16");
    const int tput_prompt = static_cast<int>(args.get_int({"--tput-prompt"}, 32, 1, 1 << 16));
    const int decode_steps = static_cast<int>(args.get_int({"--decode-steps"}, 32, 2, 1 << 16));
    args.finish();
    if (!only.empty() && only != "fim" && only != "tput") throw_error("--only: fim or tput, not '{}'", only);
    if (fim_window >= fim_prompt) throw_error("--fim-window must be below --fim-prompt");
    std::vector<int> seqs;
    for (size_t p = 0; p < seqs_arg.size();) {
      const size_t q = std::min(seqs_arg.find(',', p), seqs_arg.size());
      const int n = std::atoi(seqs_arg.substr(p, q - p).c_str());
      if (n < 1 || n > 1024) throw_error("--seqs: '{}' is not a sequence count in [1, 1024]", seqs_arg.substr(p, q - p));
      seqs.push_back(n);
      p = q + 1;
    }

    LoadOptions lo;
    lo.print_plan = false;
    auto model = Model::load(model_path, lo);
    std::printf("tessera_bench_sched: model %s, %d threads\n\n", model_path.c_str(), threads);
    std::printf("| bench | %-72s | %14s |\n|-------|%s|%s|\n", "measured", "value", std::string(74, '-').c_str(),
                std::string(16, '-').c_str());

    if (only.empty() || only == "fim") {
      const FimRun with = run_fim(model, threads, true, fim_prompt, fim_requests, fim_window, gen);
      int64_t p = 0, c = 0;
      for (size_t i = 1; i < with.n_prompt.size(); ++i) {
        p += with.n_prompt[i];
        c += with.n_cached[i];
      }
      row("fim", fmt_f("requests (prompt ~%.0f tokens edited in its last ", fim_prompt) + std::to_string(fim_window) +
                     ", " + std::to_string(gen) + " generated each)",
          std::to_string(fim_requests));
      if (fim_requests > 1) {
        row("fim", "prompt tokens served from the prefix cache, requests 2..R", fmt_f("%.1f %%", 100.0 * c / std::max<int64_t>(p, 1)));
      }
      row("fim", "TTFT of request 1 (cold cache), ms", fmt_f("%.1f", with.ttft_ms[0]));
      const double ttft_with = mean_from(with.ttft_ms, fim_requests > 1 ? 1 : 0);
      row("fim", "TTFT with the prefix cache, mean of requests 2..R, ms", fmt_f("%.1f", ttft_with));
      const FimRun without = run_fim(model, threads, false, fim_prompt, no_cache_requests, fim_window, gen);
      const double ttft_without = mean_from(without.ttft_ms, no_cache_requests > 1 ? 1 : 0);
      row("fim", "TTFT without the prefix cache, mean of requests 2.." + std::to_string(no_cache_requests) + ", ms",
          fmt_f("%.1f", ttft_without));
      row("fim", "TTFT speedup from the prefix cache (without / with)", fmt_f("%.1fx", ttft_without / std::max(ttft_with, 1e-9)));
    }
    if (only.empty() || only == "tput") {
      double single = 0;
      for (int n : seqs) {
        const Tput t = decode_throughput(model, threads, n, tput_prompt, decode_steps);
        if (n == seqs.front()) single = t.median_tps;
        const std::string what = std::to_string(n) + (n == 1 ? " sequence" : " sequences");
        row("tput", "aggregate decode tok/s, " + what + ", from the median step (" + fmt_f("%.1f ms)", t.median_step_ms),
            fmt_f("%.2f", t.median_tps));
        row("tput", "aggregate decode tok/s, " + what + ", from the mean step; CPU share " + fmt_f("%.0f %%", 100 * t.cpu_share),
            fmt_f("%.2f", t.mean_tps));
        if (n != seqs.front())
          row("tput", "  median vs " + std::to_string(seqs.front()) + " sequence(s)", fmt_f("%.2fx", t.median_tps / std::max(single, 1e-9)));
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera_bench_sched: %s\n", e.what());
    return 1;
  }
}
