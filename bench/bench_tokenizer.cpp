// Tokenizer throughput: encodes several MB of real source code (C headers from /usr/include and
// Python files from /usr/lib/python3*) on one thread and reports MB/s; loading is not timed.
// Usage: bench_tokenizer [--benchmark_...] ; env TESSERA_TOK_MODEL (default: the golden Qwen3
// vocabulary), TESSERA_TOK_MB (MB of each kind of source, default 4).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

std::string model_path() {
  const char* env = std::getenv("TESSERA_TOK_MODEL");
  return env ? env : TESSERA_GOLDEN_DIR "/models/vocab-qwen3.gguf";
}

// Files under `roots` whose name ends with `ext`, in sorted order, until `budget` bytes.
void collect(const std::vector<fs::path>& roots, const std::string& ext, size_t budget, std::vector<std::string>& out) {
  std::vector<fs::path> paths;
  for (const auto& root : roots) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) && it->path().extension() == ext) paths.push_back(it->path());
    }
  }
  std::sort(paths.begin(), paths.end());
  size_t total = 0;
  for (const auto& p : paths) {
    if (total >= budget) break;
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    if (s.empty()) continue;
    total += s.size();
    out.push_back(std::move(s));
  }
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> files = [] {
    const char* mb_env = std::getenv("TESSERA_TOK_MB");
    const size_t budget = static_cast<size_t>((mb_env ? std::atof(mb_env) : 4.0) * 1e6);
    std::vector<std::string> f;
    collect({"/usr/include"}, ".h", budget, f);
    std::vector<fs::path> py;
    for (const auto& e : fs::directory_iterator("/usr/lib"))
      if (e.path().filename().string().rfind("python3", 0) == 0) py.push_back(e.path());
    std::sort(py.begin(), py.end());
    collect(py, ".py", budget, f);
    return f;
  }();
  return files;
}

size_t corpus_bytes() {
  size_t n = 0;
  for (const auto& s : corpus()) n += s.size();
  return n;
}

void run(benchmark::State& state, bool fresh_tokenizer) {
  const auto file = tessera::gguf::File::open(model_path());
  auto tok = std::make_unique<tessera::tok::Tokenizer>(tessera::tok::Tokenizer::from_gguf(file));
  const auto& files = corpus();
  size_t tokens = 0;
  for (auto _ : state) {
    if (fresh_tokenizer) {  // empty piece cache, load not timed
      state.PauseTiming();
      tok = std::make_unique<tessera::tok::Tokenizer>(tessera::tok::Tokenizer::from_gguf(file));
      state.ResumeTiming();
    }
    tokens = 0;
    for (const auto& s : files) tokens += tok->encode(s, false).size();
    benchmark::DoNotOptimize(tokens);
  }
  const double bytes = static_cast<double>(corpus_bytes());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["corpus_MB"] = bytes / 1e6;
  state.counters["MB"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsIterationInvariantRate);  // decimal MB
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

// Each iteration starts with an empty piece cache (what one large request sees).
void BM_EncodeSourceCold(benchmark::State& state) { run(state, true); }
// The piece cache is warm from earlier iterations (what a server sees after a while).
void BM_EncodeSourceWarm(benchmark::State& state) { run(state, false); }

BENCHMARK(BM_EncodeSourceCold)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK(BM_EncodeSourceWarm)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
