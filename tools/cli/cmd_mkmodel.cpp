// tessera mkmodel: writes a random-weight model of a preset shape (qwen3moe, qwen3, qwen2) with a
// tokenizer copied from another GGUF, quantized with our encoders under a scheme's per-tensor rules.
// Values are deterministic for a seed: every fixed-size chunk of rows of every tensor has its own
// seed (seed, tensor name, chunk index), so the thread count never changes a byte.
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/gguf.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_presets.h"
#include "tools/cli/quant_rules.h"
#include "tools/cli/tool_util.h"

namespace tessera::cli {

namespace {

constexpr int64_t kChunkValues = int64_t{1} << 16;  // values per random-generation task

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// xoshiro256+ seeded through splitmix64: fast, and plenty random for weights.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) w = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return result;
  }
  // Uniform in (0, 1): 24 random bits, offset by half a step so 0 never occurs.
  float uniform() { return (static_cast<float>(next() >> 40) + 0.5f) * (1.0f / 16777216.0f); }

 private:
  uint64_t s_[4];
};

// out[i] = mean + std * N(0, 1), Box-Muller in pairs.
void fill_normal(Rng& rng, float* out, int64_t n, float mean, float std) {
  constexpr float kTwoPi = 6.28318530717958647692f;
  for (int64_t i = 0; i < n; i += 2) {
    const float r = std::sqrt(-2.0f * std::log(rng.uniform()));
    const float theta = kTwoPi * rng.uniform();
    out[i] = mean + std * r * std::cos(theta);
    if (i + 1 < n) out[i + 1] = mean + std * r * std::sin(theta);
  }
}

struct PlannedTensor {
  TensorSpec spec;
  GgmlType type;
  uint64_t bytes;
};

std::string shape_string(const std::vector<int64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

void print_plan(const ModelPreset& p, const QuantScheme& scheme, int64_t n_vocab,
                const std::vector<PlannedTensor>& plan) {
  uint64_t params = 0, bytes = 0;
  std::printf("# %s (%s), %lld layers, %s, n_vocab %lld\n", std::string(p.name).c_str(),
              std::string(p.arch).c_str(), static_cast<long long>(p.n_layer),
              std::string(scheme.name).c_str(), static_cast<long long>(n_vocab));
  for (const PlannedTensor& t : plan) {
    std::printf("%-36s %-7s %s\n", t.spec.name.c_str(), std::string(type_name(t.type)).c_str(),
                shape_string(t.spec.ne).c_str());
    params += static_cast<uint64_t>(t.spec.n_elements());
    bytes += t.bytes;
  }
  std::printf("# %zu tensors, %.3f B params, %s of tensor data\n", plan.size(), params / 1e9,
              format_bytes(bytes).c_str());
}

// Fills one tensor's bytes: chunks of rows in parallel, each from its own seeded generator.
std::vector<uint8_t> generate_tensor(const PlannedTensor& t, uint64_t seed, ThreadPool& pool, Progress& progress) {
  const int64_t row_len = t.spec.row_length(), n_rows = t.spec.n_rows();
  const size_t rb = row_bytes(t.type, row_len);
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkValues / row_len);
  const int64_t n_chunks = (n_rows + rows_per_chunk - 1) / rows_per_chunk;
  const uint64_t tensor_seed = seed * 0x9E3779B97F4A7C15ull ^ hash_name(t.spec.name);
  std::vector<uint8_t> data(rb * static_cast<size_t>(n_rows));  // [n_rows][rb]
  std::vector<std::vector<float>> scratch(pool.size());          // per thread: [rows_per_chunk][row_len]
  std::exception_ptr error;
  std::mutex error_mu;
  pool.parallel_for(n_chunks, [&](int64_t chunk, int thread) {
    try {
      std::vector<float>& buf = scratch[thread];
      buf.resize(static_cast<size_t>(rows_per_chunk * row_len));
      const int64_t row0 = chunk * rows_per_chunk;
      const int64_t rows = std::min(rows_per_chunk, n_rows - row0);
      uint64_t chunk_state = tensor_seed + static_cast<uint64_t>(chunk) * 0xD1B54A32D192ED03ull;
      Rng rng(splitmix64(chunk_state));
      const float mean = t.spec.init == Init::Norm ? 1.0f : 0.0f;
      fill_normal(rng, buf.data(), rows * row_len, mean, t.spec.scale);
      for (int64_t r = 0; r < rows; ++r)
        encode_row(t.type, buf.data() + r * row_len, data.data() + (row0 + r) * rb, row_len);
      progress.add(static_cast<uint64_t>(rows * row_len));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  return data;
}

void usage() {
  std::printf(
      "usage: tessera mkmodel --preset NAME --tokenizer-from GGUF --out FILE [options]\n"
      "  Writes a model with RANDOM weights (for tests and benchmarks; it produces no useful text).\n"
      "  --preset NAME        %s\n"
      "  --layers N           number of layers (default: the preset's)\n"
      "  --type T             Q4_K_M (default), IQ4_NL, Q8_0, F16, or any of: %s\n"
      "  --tokenizer-from F   copy tokenizer.* metadata (vocab, merges, chat template) from GGUF F\n"
      "  --out FILE           output path\n"
      "  --seed S             random seed (default 1); same seed -> same bytes\n"
      "  --threads N          worker threads (default: all cores)\n"
      "  --name NAME          general.name (default tessera-random-<preset>)\n"
      "  --dry-run            print the tensor plan (name, type, shape) and exit\n"
      "  --quiet              no progress bar\n",
      preset_names().c_str(), scheme_names().c_str());
}

}  // namespace

int cmd_mkmodel(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    usage();
    return 0;
  }
  const std::string preset_name = args.require({"--preset"});
  const ModelPreset* base = find_preset(preset_name);
  if (!base) throw_error("unknown preset '{}' (known: {})", preset_name, preset_names());
  ModelPreset preset = *base;
  preset.n_layer = args.get_int({"--layers"}, preset.n_layer, 1, 1024);
  const std::string type_arg = args.get({"--type"}, "Q4_K_M");
  const auto scheme = find_scheme(type_arg);
  if (!scheme) throw_error("unknown --type '{}' (known: {})", type_arg, scheme_names());
  const std::string tokenizer_path = args.require({"--tokenizer-from"});
  const bool dry_run = args.flag({"--dry-run"});
  const bool quiet = args.flag({"--quiet", "-q"});
  const std::string out = dry_run ? args.get({"--out"}, "") : args.require({"--out"});
  const int64_t seed = args.get_int({"--seed"}, 1, 0, INT64_MAX);
  const int threads =
      args.get_threads({"--threads", "-t"}, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const std::string name = args.get({"--name"}, "tessera-random-" + preset_name);
  args.finish();

  const gguf::File vocab = gguf::File::open(tokenizer_path);
  if (!vocab.has("tokenizer.ggml.tokens"))
    throw_error("{}: no tokenizer.ggml.tokens (not a file with a tokenizer)", tokenizer_path);
  const int64_t n_vocab = static_cast<int64_t>(vocab.get_array("tokenizer.ggml.tokens").size());
  if (n_vocab < 1) throw_error("{}: empty tokenizer.ggml.tokens", tokenizer_path);

  const ModelFacts facts = model_facts(preset);
  std::vector<PlannedTensor> plan;
  uint64_t total_values = 0;
  for (TensorSpec& spec : model_tensors(preset, n_vocab)) {
    const GgmlType type = choose_type(*scheme, spec.name, spec.ne, facts);
    const uint64_t bytes = row_bytes(type, spec.row_length()) * static_cast<uint64_t>(spec.n_rows());
    total_values += static_cast<uint64_t>(spec.n_elements());
    plan.push_back({std::move(spec), type, bytes});
  }
  if (dry_run) {
    print_plan(preset, *scheme, n_vocab, plan);
    return 0;
  }
  for (const PlannedTensor& t : plan)
    if (!can_encode(t.type))
      throw_error("no encoder for type {} (tensor {}) in this build", type_name(t.type), t.spec.name);

  gguf::Writer writer;
  write_hparams(writer, preset);  // general.architecture first, then the hyperparameters
  writer.set_string("general.name", name);
  writer.set_string("general.description",
                    fmt::format("random weights made by tessera mkmodel (preset {}, seed {}); not a trained model",
                                preset_name, seed));
  writer.set_u32("general.quantization_version", 2);
  writer.set_u32("general.file_type", scheme->file_type);
  writer.copy_metadata(vocab, "tokenizer.");

  ThreadPool pool(threads);
  Progress progress("mkmodel", total_values, !quiet);
  uint64_t total_bytes = 0;
  for (const PlannedTensor& t : plan) {
    writer.add_tensor(t.spec.name, t.type, t.spec.ne, generate_tensor(t, static_cast<uint64_t>(seed), pool, progress));
    total_bytes += t.bytes;
  }
  progress.finish();
  writer.write(out);
  if (!quiet)
    std::fprintf(stderr, "wrote %s: %s (%s), %lld layers, %zu tensors, %s of weights\n", out.c_str(),
                 preset_name.c_str(), std::string(scheme->name).c_str(), static_cast<long long>(preset.n_layer),
                 plan.size(), format_bytes(total_bytes).c_str());
  return 0;
}

}  // namespace tessera::cli
