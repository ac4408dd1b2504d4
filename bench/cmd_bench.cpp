// tessera bench: llama-bench compatible model benchmark. Same flags (-m repeatable, -p, -n, -pg, -d,
// -r, -t, -b, -ub, -o md|csv|json|jsonl), same tests (ppN: an N-token prompt of random tokens in
// batches on a cleared KV; tgN: N single-token decodes; ppN+tgM both; "@ dD" after D untimed tokens),
// one warm-up then r timed repetitions, t/s as mean ± sample stddev, and the same table and fields,
// so results line up with llama.cpp's. Extra: --backend and --kernel overrides (the kernel registry).
#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/context.h"
#include "core/error.h"
#include "engine/model/model.h"
#include "kernels/registry.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/tool_util.h"

#ifndef TESSERA_BUILD_COMMIT
#define TESSERA_BUILD_COMMIT "unknown"
#endif

namespace tessera::cli {

namespace {

using json = nlohmann::ordered_json;

enum class OutputFormat { Markdown, Csv, Json, Jsonl };

struct BenchParams {
  std::vector<std::string> models;
  std::vector<int> n_prompt, n_gen, n_depth, n_threads, n_batch, n_ubatch;
  std::vector<std::pair<int, int>> pg;  // -pg pp,tg
  int reps = 5;
  OutputFormat output = OutputFormat::Markdown;
  engine::LoadOptions load;  // backend and kernel overrides
  bool progress = false;
};

// One timed test: a prompt of n_prompt tokens and/or n_gen single-token decodes, at depth n_depth.
struct TestCase {
  int n_prompt = 0, n_gen = 0, n_depth = 0;
  std::string name() const {
    std::string s;
    if (n_prompt > 0) s = "pp" + std::to_string(n_prompt);
    if (n_gen > 0) s += (s.empty() ? "tg" : "+tg") + std::to_string(n_gen);
    if (n_depth > 0) s += " @ d" + std::to_string(n_depth);
    return s;
  }
};

struct Result {
  std::string model_filename, model_type;
  uint64_t model_size = 0, model_n_params = 0;
  bool use_mmap = true;  // the weights were mapped (false: copied, --weights)
  int n_batch = 0, n_ubatch = 0, n_threads = 0;
  TestCase test;
  std::string test_time;
  std::vector<uint64_t> samples_ns;

  double tokens() const { return test.n_prompt + test.n_gen; }
  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (uint64_t ns : samples_ns) ts.push_back(tokens() * 1e9 / static_cast<double>(std::max<uint64_t>(ns, 1)));
    return ts;
  }
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

double sample_stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

std::vector<double> to_double(const std::vector<uint64_t>& v) { return {v.begin(), v.end()}; }

// ---- environment -------------------------------------------------------------------------------

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(' '));
        return name;
      }
    }
  utsname u{};
  return uname(&u) == 0 ? std::string(u.machine) : "unknown cpu";
}

std::string iso_time_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string backend_label(const std::string& backend) {
  if (backend == "ref") return "CPU (ref)";
  if (backend == "vulkan") return "Vulkan";
  if (backend == "hip") return "ROCm";  // llama-bench's name for its HIP backend
  if (backend == "hip-emu") return "ROCm (emu)";
  return "CPU";
}

// ---- argument parsing --------------------------------------------------------------------------

// One integer of a list flag, in [min_value, max_value]; never truncated.
int list_item(std::string_view name, const std::string& item, const std::string& whole, int64_t min_value,
              int64_t max_value) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
  if (ec == std::errc::result_out_of_range && p == item.data() + item.size())
    throw_error("{}: {} is out of range [{}, {}]", name, item, min_value, max_value);
  if (item.empty() || ec != std::errc() || p != item.data() + item.size())
    throw_error("bench: option {} expects integers, got '{}'", name, whole);
  if (v < min_value || v > max_value) throw_error("{}: {} is out of range [{}, {}]", name, v, min_value, max_value);
  return static_cast<int>(v);
}

std::vector<int> split_ints(std::string_view name, const std::string& s, int64_t min_value, int64_t max_value) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    out.push_back(list_item(name, s.substr(pos, end - pos), s, min_value, max_value));
    pos = end + 1;
  }
  return out;
}

// A repeatable comma-list flag such as -p 512,1024 -p 2048.
std::vector<int> int_list(Args& args, std::initializer_list<std::string_view> names, std::vector<int> fallback,
                          int64_t min_value, int64_t max_value) {
  std::vector<std::string> given = args.values(names);
  if (given.empty()) return fallback;
  std::vector<int> out;
  for (const std::string& s : given)
    for (int v : split_ints(*names.begin(), s, min_value, max_value)) out.push_back(v);
  return out;
}

void usage() {
  std::printf(
      "usage: tessera bench [options]   (llama-bench compatible)\n"
      "  -m,  --model FILE          model (repeatable)\n"
      "  -p,  --n-prompt N[,N]      prompt tokens (default 512; 0 = no pp test)\n"
      "  -n,  --n-gen N[,N]         generated tokens (default 128; 0 = no tg test)\n"
      "  -pg  PP,TG                 prompt then generation as one test (repeatable)\n"
      "  -d,  --n-depth N[,N]       context depth filled (untimed) before each test (default 0)\n"
      "  -r,  --repetitions N       timed repetitions after one warm-up (default 5)\n"
      "  -t,  --threads N[,N]       threads (default: all cores)\n"
      "  -b,  --batch-size N        logical batch (default 2048)\n"
      "  -ub, --ubatch-size N       tokens per forward pass (default 512)\n"
      "  -o,  --output md|csv|json|jsonl   output format (default md)\n"
      "  --backend cpu|ref|vulkan|hip|hip-emu   cpu: best kernels for this CPU; ref: scalar reference kernels;\n"
      "                             vulkan: compute shaders; hip: HIP kernels (ROCm); hip-emu: them on the\n"
      "                             CPU emulator (tests); --device N picks the device\n"
      "  --kernel OPKEY=NAME        force a kernel (name or variant), e.g. gemv_q4_K=avx2 (repeatable)\n"
      "  --weights auto|mmap|copy   copy: weights in huge-page memory (auto's choice on the cpu backend when\n"
      "                             they fit); mmap: zero-copy, as llama-bench's default (use_mmap in the rows)\n"
      "  --profile                  per test, to stderr: per-shader device times, dispatches and bytes per\n"
      "                             decoded token (vulkan); the forward pass's stages (cpu, ref)\n"
      "  --progress                 print progress to stderr\n");
}

BenchParams parse(Args& args) {
  BenchParams p;
  p.models = args.values({"-m", "--model"});
  p.n_prompt = int_list(args, {"-p", "--n-prompt"}, {512}, 0, kMaxTokens);
  p.n_gen = int_list(args, {"-n", "--n-gen"}, {128}, 0, kMaxTokens);
  p.n_depth = int_list(args, {"-d", "--n-depth"}, {0}, 0, kMaxTokens);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  try {
    p.n_threads = int_list(args, {"-t", "--threads"}, {hw}, 1, max_threads());
  } catch (const Error& e) {
    throw_error("{} ({})", e.what(), threads_hint());
  }
  p.n_batch = int_list(args, {"-b", "--batch-size"}, {2048}, 1, kMaxTokens);
  p.n_ubatch = int_list(args, {"-ub", "--ubatch-size"}, {512}, 1, kMaxTokens);
  for (const std::string& s : args.values({"-pg"})) {
    const std::vector<int> v = split_ints("-pg", s, 0, kMaxTokens);
    if (v.size() != 2) throw_error("bench: -pg expects PP,TG (e.g. 512,128), got '{}'", s);
    p.pg.push_back({v[0], v[1]});
  }
  p.reps = static_cast<int>(args.get_int({"-r", "--repetitions"}, 5, 1, 10000));
  const std::string out = args.get({"-o", "--output"}, "md");
  if (out == "md") p.output = OutputFormat::Markdown;
  else if (out == "csv") p.output = OutputFormat::Csv;
  else if (out == "json") p.output = OutputFormat::Json;
  else if (out == "jsonl") p.output = OutputFormat::Jsonl;
  else throw_error("bench: -o must be md, csv, json or jsonl, got '{}'", out);
  p.load = load_options(args);  // --backend, --kernel
  p.progress = args.flag({"--progress"});
  if (p.models.empty()) throw_error("bench: no model given (-m FILE)");
  return p;
}

// ---- output ------------------------------------------------------------------------------------

std::string params_string(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  return buf;
}

std::string size_string(uint64_t bytes) {
  char buf[32];
  const double gib = static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0);
  if (gib >= 1.0) std::snprintf(buf, sizeof buf, "%.2f GiB", gib);  // llama-bench: MiB below 1 GiB
  else std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

class Printer {
 public:
  Printer(const BenchParams& p) : p_(p), device_(cpu_name()) {
    kernels_ = p.load.kernels.describe();
    // Like llama-bench, the markdown table shows n_batch / n_ubatch only when not the default.
    show_batch_ = p.n_batch != std::vector<int>{2048};
    show_ubatch_ = p.n_ubatch != std::vector<int>{512};
  }

  void begin() {
    if (p_.output == OutputFormat::Markdown) {
      std::string h = "| model                          |       size |     params | backend    | threads |";
      std::string s = "| ------------------------------ | ---------: | ---------: | ---------- | ------: |";
      if (show_batch_) h += " n_batch |", s += " ------: |";
      if (show_ubatch_) h += " n_ubatch |", s += " -------: |";
      h += "            test |                  t/s |";
      s += " --------------: | -------------------: |";
      std::printf("%s\n%s\n", h.c_str(), s.c_str());
    } else if (p_.output == OutputFormat::Csv) {
      bool first = true;
      const json header = row_json(Result{});
      for (auto& [key, value] : header.items()) {
        std::printf("%s%s", first ? "" : ",", key.c_str());
        first = false;
      }
      std::printf("\n");
    } else if (p_.output == OutputFormat::Json) {
      std::printf("[\n");
    }
    std::fflush(stdout);
  }

  void row(const Result& r) {
    const std::vector<double> ts = r.samples_ts();
    switch (p_.output) {
      case OutputFormat::Markdown: {
        char tps[64];
        std::snprintf(tps, sizeof tps, "%.2f ± %.2f", mean(ts), sample_stddev(ts));
        std::string line = fmt::format("| {:<30} | {:>10} | {:>10} | {:<10} | {:>7} |", r.model_type,
                                       size_string(r.model_size), params_string(r.model_n_params),
                                       backend_label(p_.load.backend), r.n_threads);
        if (show_batch_) line += fmt::format(" {:>7} |", r.n_batch);
        if (show_ubatch_) line += fmt::format(" {:>8} |", r.n_ubatch);
        // "±" is 2 bytes but one column: pad as llama-bench does (by characters).
        line += fmt::format(" {:>15} | {:>21} |", r.test.name(), tps);
        std::printf("%s\n", line.c_str());
        break;
      }
      case OutputFormat::Csv: {
        bool first = true;
        const json fields = row_json(r);
        for (auto& [key, value] : fields.items()) {
          std::string cell;
          if (value.is_string()) cell = value.get<std::string>();
          else if (value.is_array()) {
            for (auto& x : value) cell += (cell.empty() ? "" : " ") + x.dump();
          } else cell = value.dump();
          std::string quoted = "\"";
          for (char c : cell) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
          std::printf("%s%s\"", first ? "" : ",", quoted.c_str());
          first = false;
        }
        std::printf("\n");
        break;
      }
      case OutputFormat::Json:
        std::printf("%s%s", n_rows_ ? ",\n" : "", indent(row_json(r).dump(2)).c_str());
        break;
      case OutputFormat::Jsonl:
        std::printf("%s\n", row_json(r).dump().c_str());
        break;
    }
    ++n_rows_;
    std::fflush(stdout);
  }

  void end() {
    if (p_.output == OutputFormat::Markdown) std::printf("\nbuild: %s\n", TESSERA_BUILD_COMMIT);
    else if (p_.output == OutputFormat::Json) std::printf("%s]\n", n_rows_ ? "\n" : "");
    std::fflush(stdout);
  }

 private:
  static std::string indent(const std::string& s) {
    std::string out = "  ";
    for (char c : s) {
      out += c;
      if (c == '\n') out += "  ";
    }
    return out;
  }

  json row_json(const Result& r) const {
    const std::vector<double> ts = r.samples_ts(), ns = to_double(r.samples_ns);
    json j;
    j["build_commit"] = TESSERA_BUILD_COMMIT;
    j["build_number"] = 0;
    j["cpu_info"] = device_;
    j["gpu_info"] = "";
    j["backends"] = backend_label(p_.load.backend);
    j["backend"] = p_.load.backend;
    j["device"] = device_;
    j["kernels"] = kernels_;
    j["model_filename"] = r.model_filename;
    j["model_type"] = r.model_type;
    j["model_size"] = r.model_size;
    j["model_n_params"] = r.model_n_params;
    j["n_batch"] = r.n_batch;
    j["n_ubatch"] = r.n_ubatch;
    j["n_threads"] = r.n_threads;
    j["type_k"] = "f16";
    j["type_v"] = "f16";
    j["n_gpu_layers"] = 0;
    j["flash_attn"] = true;
    j["use_mmap"] = r.use_mmap;  // false: weights copied into huge-page memory (--weights)
    j["n_prompt"] = r.test.n_prompt;
    j["n_gen"] = r.test.n_gen;
    j["n_depth"] = r.test.n_depth;
    j["test_time"] = r.test_time;
    j["avg_ns"] = static_cast<uint64_t>(std::llround(mean(ns)));
    j["stddev_ns"] = static_cast<uint64_t>(std::llround(sample_stddev(ns)));
    j["avg_ts"] = mean(ts);
    j["stddev_ts"] = sample_stddev(ts);
    j["samples_ns"] = r.samples_ns;
    j["samples_ts"] = ts;
    return j;
  }

  const BenchParams& p_;
  std::string device_, kernels_;
  bool show_batch_ = false, show_ubatch_ = false;
  int n_rows_ = 0;
};

// ---- running -----------------------------------------------------------------------------------

std::vector<int32_t> random_tokens(std::mt19937& rng, int n, int n_vocab) {
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = pick(rng);
  return t;
}

// One run of a test on a sequence that holds exactly `depth` tokens; returns nanoseconds.
uint64_t run_once(engine::Context& ctx, const TestCase& t, std::mt19937& rng, int n_vocab) {
  const std::vector<int32_t> prompt = random_tokens(rng, t.n_prompt, n_vocab);
  const std::vector<int32_t> gen = random_tokens(rng, t.n_gen, n_vocab);
  const auto start = std::chrono::steady_clock::now();
  if (t.n_prompt > 0) ctx.eval(prompt);
  for (int i = 0; i < t.n_gen; ++i) ctx.eval(std::span<const int32_t>(&gen[i], 1));
  const auto stop = std::chrono::steady_clock::now();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count());
}

std::vector<TestCase> tests_at_depth(const BenchParams& p, int depth) {
  std::vector<TestCase> tests;
  for (int n : p.n_prompt)
    if (n > 0) tests.push_back({n, 0, depth});
  for (int n : p.n_gen)
    if (n > 0) tests.push_back({0, n, depth});
  for (auto [pp, tg] : p.pg)
    if (pp + tg > 0) tests.push_back({pp, tg, depth});
  return tests;
}

void bench_model(const std::string& path, const BenchParams& p, Printer& printer) {
  engine::LoadOptions lo;
  lo.print_plan = false;
  lo.backend = p.load.backend;
  lo.device = p.load.device;    // --device N
  lo.profile = p.load.profile;  // --profile: reported when each test's context ends
  lo.kernels = p.load.kernels;
  lo.weights = p.load.weights;  // --weights
  std::shared_ptr<engine::Model> model = engine::Model::load(path, lo);
  const int n_vocab = static_cast<int>(model->config().n_vocab);
  std::mt19937 rng(1234);

  int longest = 0;  // KV positions one test needs beyond its depth
  for (const TestCase& t : tests_at_depth(p, 0)) longest = std::max(longest, t.n_prompt + t.n_gen);
  const int max_depth = *std::max_element(p.n_depth.begin(), p.n_depth.end());

  for (int threads : p.n_threads)
    for (int n_batch : p.n_batch)
      for (int n_ubatch : p.n_ubatch) {
        engine::ContextOptions co;
        co.n_ctx = std::max(1, max_depth + longest);
        co.n_threads = threads;
        co.n_batch = std::min(n_batch, n_ubatch);  // tokens per forward pass
        co.print_plan = false;
        engine::Context ctx(model, co);
        for (int depth : p.n_depth) {
          // Fill the depth once (untimed); every run then truncates back to it.
          ctx.clear(0);
          if (depth > 0) {
            if (p.progress) std::fprintf(stderr, "bench: %s: filling depth %d\n", path.c_str(), depth);
            ctx.eval(random_tokens(rng, depth, n_vocab));
          }
          for (const TestCase& t : tests_at_depth(p, depth)) {
            Result r;
            r.model_filename = path;
            r.model_type = model->type_description();
            r.model_size = model->weight_bytes();
            r.use_mmap = model->file().residency() == gguf::Residency::Mapped;
            r.model_n_params = model->n_params();
            r.n_batch = n_batch;
            r.n_ubatch = n_ubatch;
            r.n_threads = threads;
            r.test = t;
            r.test_time = iso_time_now();
            // Warm-up: the prompt once, or one decode step, as llama-bench does.
            if (p.progress) std::fprintf(stderr, "bench: %s: %s warm-up\n", path.c_str(), t.name().c_str());
            run_once(ctx, {t.n_prompt, t.n_prompt > 0 ? 0 : 1, depth}, rng, n_vocab);
            for (int rep = 0; rep < p.reps; ++rep) {
              ctx.truncate(0, depth);
              if (p.progress)
                std::fprintf(stderr, "bench: %s: %s rep %d/%d\n", path.c_str(), t.name().c_str(), rep + 1, p.reps);
              r.samples_ns.push_back(run_once(ctx, t, rng, n_vocab));
            }
            ctx.truncate(0, depth);
            printer.row(r);
          }
        }
      }
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    usage();
    return 0;
  }
  const BenchParams p = parse(args);
  args.finish();


  Printer printer(p);
  printer.begin();
  for (const std::string& m : p.models) bench_model(m, p, printer);
  printer.end();
  return 0;
}

}  // namespace tessera::cli
