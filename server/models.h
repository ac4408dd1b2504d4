// Several models in one server: what each is (ModelSpec, from `--model NAME=PATH,key=value...` or a
// JSON config file) and the memory plan made before anything loads (weights from the GGUF header,
// KV from the config or the model's kv-mem budget, scratch as engine/context.cpp sizes it) against
// the host's budget.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::server {

struct ModelSpec {
  std::string name;            // the id clients send as `model`
  std::string path;            // GGUF file
  std::string backend;         // "cpu", "ref" ("": the server's --backend)
  int ctx = 0;                 // tokens one request may hold (0: the server's --ctx-size)
  uint64_t kv_mem = 0;         // KV cache bytes (0: kv_tokens, else ctx x parallel tokens)
  int kv_tokens = 0;           // KV cache tokens (0: from kv_mem, else ctx x parallel)
  int parallel = 0;            // sequences decoded together (0: the server's --parallel)
  int max_tokens = 0;          // cap on every request's output tokens (0: none)
};

// "512M", "2G", "1.5GiB", "64k", "1048576" -> bytes (binary units). Throws tessera::Error.
uint64_t parse_size(std::string_view s);
std::string format_size(uint64_t bytes);  // "1.50 GiB", "512.0 MiB", "12.0 KiB"

// `NAME=PATH[,backend=cpu|ref][,ctx=N][,kv-mem=SIZE][,kv-tokens=N][,parallel=N][,max-tokens=N]`.
// Throws tessera::Error naming the flag and the problem.
ModelSpec parse_model_flag(std::string_view flag);

// {"models": [{"name", "path", "backend", "ctx", "kv_mem" (size string or bytes), "kv_tokens",
// "parallel", "max_tokens"}], "default": "NAME"}. Relative paths are taken from the file's folder.
struct ModelsConfig {
  std::vector<ModelSpec> models;
  std::string default_model;  // "" : the first
};
ModelsConfig read_models_config(const std::string& path);

// Names unique and non-empty, paths given, numbers in range; fills 0 fields from the defaults.
void finish_specs(std::vector<ModelSpec>& specs, int default_ctx, int default_parallel, int default_kv_tokens);

struct PlanRow {
  std::string name, path, backend, arch;
  int ctx = 0, parallel = 0, batch = 0;
  int64_t kv_tokens = 0;      // KV capacity (a multiple of the KV block)
  uint64_t weights = 0;       // tensor bytes in the file
  uint64_t kv = 0;            // KV cache bytes (f16 K and V)
  uint64_t scratch = 0;       // workspace + stream buffers + logits (see plan_model)
  uint64_t workspace = 0;     // of scratch: the forward pass's workspace, exactly as the engine allocates it
  uint64_t total() const { return weights + kv + scratch; }
};

struct MemoryPlan {
  std::vector<PlanRow> rows;
  uint64_t budget = 0;
  std::string budget_source;  // "MemAvailable" or "--mem-limit"
  uint64_t total() const;
  bool fits() const { return total() <= budget; }
  std::string table() const;      // the human table (model, backend, weights, KV, scratch, total; budget)
  nlohmann::json to_json() const;  // for /props
};

// One model's row: opens the GGUF (header only; nothing is loaded) and sizes KV and scratch for
// the spec's context, parallel sequences and batch. Throws tessera::Error for a file it cannot
// plan (unreadable, unsupported architecture, a kv-mem too small for one context).
PlanRow plan_model(const ModelSpec& spec, int batch);

// MemAvailable of /proc/meminfo in bytes (0 when it cannot be read).
uint64_t host_available_memory();

}  // namespace tessera::server
