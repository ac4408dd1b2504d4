// tessera quantize IN.gguf OUT.gguf TYPE: rewrites a model under a quantization scheme's per-tensor
// rules (tools/cli/quant_rules.h, shared with mkmodel), rows converted in parallel. Tensors that are
// already quantized to another type are refused unless --allow-requantize (then decoded first).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/gguf.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/quant_rules.h"
#include "tools/cli/tool_util.h"

namespace tessera::cli {

namespace {

constexpr int64_t kChunkValues = int64_t{1} << 16;  // values per conversion task

enum class Action { Copy, Convert };

struct Job {
  const gguf::TensorInfo* src;
  GgmlType type;
  Action action;
};

ModelFacts facts_of(const gguf::File& f) {
  ModelFacts facts;
  const std::string arch = f.get_string_or("general.architecture", "");
  auto int_or = [&](const std::string& key, int64_t fallback) {
    const gguf::MetaValue* v = f.find(key);
    if (!v || v->type == gguf::ValueType::ARRAY) return fallback;  // per-layer arrays: not used by the rules
    return f.get_int(key);
  };
  facts.n_layer = int_or(arch + ".block_count", 0);
  facts.n_head = int_or(arch + ".attention.head_count", 1);
  facts.n_head_kv = int_or(arch + ".attention.head_count_kv", facts.n_head);
  facts.has_output = f.find_tensor("output.weight") != nullptr;
  return facts;
}

std::vector<int64_t> dims_of(const gguf::TensorInfo& t) {
  return std::vector<int64_t>(t.ne.begin(), t.ne.begin() + std::max<uint32_t>(1, t.n_dims));
}

// Converts one tensor row by row: decode to f32 (unless already f32), encode to the target type.
std::vector<uint8_t> convert_tensor(const Job& job, ThreadPool& pool, Progress& progress) {
  const gguf::TensorInfo& t = *job.src;
  const int64_t row_len = t.ne[0], n_rows = t.n_elements() / t.ne[0];
  if (job.action == Action::Copy) {
    progress.add(static_cast<uint64_t>(t.n_elements()));
    return std::vector<uint8_t>(t.data, t.data + t.nbytes);
  }
  const size_t src_rb = t.row_bytes(), dst_rb = row_bytes(job.type, row_len);
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkValues / row_len);
  const int64_t n_chunks = (n_rows + rows_per_chunk - 1) / rows_per_chunk;
  std::vector<uint8_t> out(dst_rb * static_cast<size_t>(n_rows));  // [n_rows][dst_rb]
  std::vector<std::vector<float>> scratch(pool.size());           // per thread: [row_len]
  std::exception_ptr error;
  std::mutex error_mu;
  pool.parallel_for(n_chunks, [&](int64_t chunk, int thread) {
    try {
      std::vector<float>& row = scratch[thread];
      row.resize(static_cast<size_t>(row_len));
      const int64_t row0 = chunk * rows_per_chunk, row1 = std::min(n_rows, row0 + rows_per_chunk);
      for (int64_t r = row0; r < row1; ++r) {
        decode_row(t.type, t.data + r * src_rb, row.data(), row_len);
        encode_row(job.type, row.data(), out.data() + r * dst_rb, row_len);
      }
      progress.add(static_cast<uint64_t>((row1 - row0) * row_len));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  return out;
}

void usage() {
  std::printf(
      "usage: tessera quantize IN.gguf OUT.gguf TYPE [options]\n"
      "  TYPE: %s (Q4_K_M / Q5_K_M / IQ4_* / MXFP4 use llama.cpp's per-tensor rules)\n"
      "  --threads N          worker threads (default: all cores)\n"
      "  --allow-requantize   convert tensors that are already quantized (decoded first; loses quality)\n"
      "  --verbose            print each tensor's conversion\n"
      "  --quiet              no progress bar\n",
      scheme_names().c_str());
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    usage();
    return 0;
  }
  const bool allow_requantize = args.flag({"--allow-requantize"});
  const bool verbose = args.flag({"--verbose", "-v"});
  const bool quiet = args.flag({"--quiet", "-q"});
  const int threads =
      args.get_threads({"--threads", "-t"}, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const std::vector<std::string> pos = args.positionals();
  args.finish();
  if (pos.size() != 3) throw_error("expected IN.gguf OUT.gguf TYPE, got {} positional arguments", pos.size());
  const std::string &in_path = pos[0], &out_path = pos[1];
  const auto scheme = find_scheme(pos[2]);
  if (!scheme) throw_error("unknown type '{}' (known: {})", pos[2], scheme_names());
  std::error_code ec;
  if (std::filesystem::equivalent(in_path, out_path, ec))
    throw_error("output {} is the input file; write to a new path", out_path);

  const gguf::File in = gguf::File::open(in_path);
  const ModelFacts facts = facts_of(in);

  // Decide every tensor first, so a refusal happens before any work.
  std::vector<Job> jobs;
  uint64_t total_values = 0;
  for (const gguf::TensorInfo& t : in.tensors()) {
    const GgmlType target = choose_type(*scheme, t.name, dims_of(t), facts);
    Action action = target == t.type ? Action::Copy : Action::Convert;
    if (action == Action::Convert) {
      const bool lossless = target == GgmlType::F32;
      if (type_traits(t.type).quantized && !lossless && !allow_requantize)
        throw_error("tensor '{}' is already quantized ({}); refusing to requantize it to {} "
                    "(quality loss; pass --allow-requantize to do it anyway)",
                    t.name, type_name(t.type), type_name(target));
      if (!can_decode(t.type)) throw_error("tensor '{}': no decoder for {}", t.name, type_name(t.type));
      if (!can_encode(target)) throw_error("tensor '{}': no encoder for {} in this build", t.name, type_name(target));
    }
    jobs.push_back({&t, target, action});
    total_values += static_cast<uint64_t>(t.n_elements());
  }

  gguf::Writer writer;
  for (const auto& [key, value] : in.metadata())
    if (key != "general.alignment") writer.set(key, value);
  writer.set_alignment(in.alignment());
  writer.set_u32("general.file_type", scheme->file_type);
  writer.set_u32("general.quantization_version", 2);

  ThreadPool pool(threads);
  Progress progress("quantize", total_values, !quiet);
  uint64_t out_bytes = 0;
  for (const Job& job : jobs) {
    std::vector<uint8_t> data = convert_tensor(job, pool, progress);
    out_bytes += data.size();
    if (verbose)
      std::fprintf(stderr, "\n%-36s %-7s -> %-7s%s", job.src->name.c_str(), std::string(type_name(job.src->type)).c_str(),
                   std::string(type_name(job.type)).c_str(), job.action == Action::Copy ? " (copied)" : "");
    writer.add_tensor(job.src->name, job.type, dims_of(*job.src), std::move(data));
  }
  if (verbose) std::fputc('\n', stderr);
  progress.finish();
  writer.write(out_path);
  if (!quiet)
    std::fprintf(stderr, "wrote %s (%s): %zu tensors, %s of weights (input %s)\n", out_path.c_str(),
                 std::string(scheme->name).c_str(), jobs.size(), format_bytes(out_bytes).c_str(),
                 format_bytes(in.file_size()).c_str());
  return 0;
}

}  // namespace tessera::cli
