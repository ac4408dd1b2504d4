// Model specs (flags and config file) and the memory plan (see models.h).
#include "server/models.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/forward.h"
#include "engine/model/model.h"
#include "gguf/gguf.h"

namespace tessera::server {
namespace {

using json = nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int parse_int(std::string_view what, std::string_view v, int lo, int hi) {
  const std::string s(v);
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size()) throw_error("{}: '{}' is not an integer", what, s);
  if (n < lo || n > hi) throw_error("{}: {} is out of range [{}, {}]", what, n, lo, hi);
  return static_cast<int>(n);
}

constexpr int kMaxCtx = 1 << 20;

// KV bytes per token: n_layer x n_head_kv x head_dim x 2 (K and V) x 2 bytes (f16).
uint64_t kv_bytes_per_token(const engine::ModelConfig& c) {
  return static_cast<uint64_t>(c.n_layer) * static_cast<uint64_t>(c.n_head_kv) * static_cast<uint64_t>(c.head_dim) * 2 * 2;
}

}  // namespace

uint64_t parse_size(std::string_view text) {
  std::string s = lower(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  for (const char* suffix : {"ib", "b"})  // "GiB", "MB", "KiB", "B": binary units either way
    if (s.size() > std::string_view(suffix).size() && s.ends_with(suffix)) {
      s.resize(s.size() - std::string_view(suffix).size());
      break;
    }
  double mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': mult = 1024.0; break;
      case 'm': mult = 1024.0 * 1024; break;
      case 'g': mult = 1024.0 * 1024 * 1024; break;
      case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
      default: break;
    }
    if (mult != 1) s.pop_back();
  }
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || !(v >= 0) || !std::isfinite(v * mult) || v * mult > 9e18)
    throw_error("'{}' is not a size (bytes, or a number with K, M, G or T: 512M, 2G, 1.5GiB)", text);
  return static_cast<uint64_t>(v * mult);
}

std::string format_size(uint64_t b) {
  const double d = static_cast<double>(b);
  if (b >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", d / (1 << 30));
  if (b >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", d / (1 << 20));
  return fmt::format("{:.1f} KiB", d / 1024);
}

ModelSpec parse_model_flag(std::string_view flag) {
  ModelSpec m;
  std::vector<std::string> parts;
  {
    std::stringstream ss{std::string(flag)};
    for (std::string item; std::getline(ss, item, ',');) parts.push_back(item);
  }
  if (parts.empty() || parts[0].find('=') == std::string::npos)
    throw_error("--model '{}': expected NAME=PATH[,backend=..][,ctx=N][,kv-mem=SIZE][,parallel=N][,max-tokens=N]", flag);
  const size_t eq = parts[0].find('=');
  m.name = parts[0].substr(0, eq);
  m.path = parts[0].substr(eq + 1);
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    const size_t e = p.find('=');
    if (e == std::string::npos) throw_error("--model {}: '{}' is not key=value", m.name, p);
    const std::string key = lower(p.substr(0, e)), value = p.substr(e + 1);
    const std::string what = fmt::format("--model {}: {}", m.name, key);
    if (key == "backend") m.backend = value;
    else if (key == "ctx") m.ctx = parse_int(what, value, 64, kMaxCtx);
    else if (key == "kv-mem" || key == "kv_mem") m.kv_mem = parse_size(value);
    else if (key == "kv-tokens" || key == "kv_tokens") m.kv_tokens = parse_int(what, value, 1, kMaxCtx * 16);
    else if (key == "parallel" || key == "np") m.parallel = parse_int(what, value, 1, 256);
    else if (key == "max-tokens" || key == "max_tokens") m.max_tokens = parse_int(what, value, 1, 1 << 30);
    else throw_error("--model {}: unknown key '{}' (backend, ctx, kv-mem, kv-tokens, parallel, max-tokens)", m.name, key);
  }
  return m;
}

ModelsConfig read_models_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw_error("--config {}: cannot be read", path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw_error("--config {}: not valid JSON ({})", path, e.what());
  }
  if (!j.is_object() || !j.contains("models") || !j["models"].is_array() || j["models"].empty())
    throw_error("--config {}: expected {{\"models\": [{{\"name\": ..., \"path\": ...}}, ...], \"default\": NAME}}", path);
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  ModelsConfig cfg;
  for (const json& e : j["models"]) {
    if (!e.is_object()) throw_error("--config {}: every entry of 'models' must be an object", path);
    ModelSpec m;
    auto str = [&](const char* key) -> std::string {
      if (!e.contains(key)) return {};
      if (!e[key].is_string()) throw_error("--config {}: '{}' must be a string", path, key);
      return e[key].get<std::string>();
    };
    m.name = str("name");
    const std::string what = fmt::format("--config {}: model '{}'", path, m.name);
    auto num = [&](const char* key, int lo, int hi) -> int {
      if (!e.contains(key)) return 0;
      if (!e[key].is_number_integer()) throw_error("{}: '{}' must be an integer", what, key);
      const int64_t v = e[key].get<int64_t>();
      if (v < lo || v > hi) throw_error("{}: '{}' = {} is out of range [{}, {}]", what, key, v, lo, hi);
      return static_cast<int>(v);
    };
    m.path = str("path");
    if (!m.path.empty() && std::filesystem::path(m.path).is_relative() && !dir.empty()) m.path = (dir / m.path).string();
    if (e.contains("backend")) m.backend = str("backend");
    m.ctx = num("ctx", 64, kMaxCtx);
    m.kv_tokens = num("kv_tokens", 1, kMaxCtx * 16);
    m.parallel = num("parallel", 1, 256);
    m.max_tokens = num("max_tokens", 1, 1 << 30);
    if (e.contains("kv_mem")) {
      const json& v = e["kv_mem"];
      if (v.is_string()) m.kv_mem = parse_size(v.get<std::string>());
      else if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) m.kv_mem = v.get<uint64_t>();
      else throw_error("{}: 'kv_mem' must be a size (\"512M\") or a byte count", what);
    }
    for (const auto& [key, value] : e.items()) {
      static const std::set<std::string> known = {"name", "path", "backend", "ctx", "kv_mem", "kv_tokens", "parallel", "max_tokens"};
      if (!known.contains(key)) throw_error("{}: unknown key '{}'", what, key);
    }
    cfg.models.push_back(std::move(m));
  }
  if (j.contains("default")) {
    if (!j["default"].is_string()) throw_error("--config {}: 'default' must be a model name", path);
    cfg.default_model = j["default"].get<std::string>();
  }
  return cfg;
}

void finish_specs(std::vector<ModelSpec>& specs, int default_ctx, int default_parallel, int default_kv_tokens) {
  std::set<std::string> names;
  for (ModelSpec& m : specs) {
    if (m.name.empty()) throw_error("a model has no name (--model NAME=PATH)");
    if (m.path.empty()) throw_error("model '{}' has no path", m.name);
    if (!names.insert(m.name).second) throw_error("model name '{}' is given twice", m.name);
    if (m.ctx == 0) m.ctx = default_ctx;
    if (m.parallel == 0) m.parallel = default_parallel;
    if (m.kv_tokens == 0 && m.kv_mem == 0) m.kv_tokens = default_kv_tokens;
  }
}

PlanRow plan_model(const ModelSpec& spec, int batch) {
  const gguf::File f = gguf::File::open(spec.path);
  const engine::ModelConfig c = engine::read_model_config(f);
  PlanRow r;
  r.name = spec.name;
  r.path = spec.path;
  r.backend = spec.backend;
  r.arch = c.arch;
  r.ctx = spec.ctx;
  r.parallel = spec.parallel;
  r.batch = std::min(batch, spec.ctx);  // as engine::Context clamps it
  for (const gguf::TensorInfo& t : f.tensors()) r.weights += t.nbytes;

  // KV: the engine rounds its token capacity up to whole blocks.
  const uint64_t per_token = kv_bytes_per_token(c);
  const int64_t blk = engine::kKvBlock;
  int64_t tokens = 0;
  if (spec.kv_tokens > 0) {
    tokens = spec.kv_tokens;
  } else if (spec.kv_mem > 0) {
    tokens = static_cast<int64_t>(spec.kv_mem / per_token) / blk * blk;  // what fits in the budget
    if (tokens < spec.ctx)
      throw_error("model '{}': kv-mem {} holds {} tokens ({} per token), fewer than one context of {}", spec.name,
                  format_size(spec.kv_mem), tokens, format_size(per_token), spec.ctx);
  } else {
    tokens = int64_t{spec.ctx} * spec.parallel;
  }
  r.kv_tokens = (tokens + blk - 1) / blk * blk;
  r.kv = static_cast<uint64_t>(r.kv_tokens) * per_token;

  // Scratch: the forward pass's workspace exactly as engine::Context allocates it (Workspace::sizes),
  // plus an estimate of the CPU stream's own buffers (RoPE tables; MoE gather/expert buffers) and
  // the logits rows of one decode step (one per sequence).
  const uint64_t N = static_cast<uint64_t>(r.batch), F = sizeof(float);
  uint64_t stream = N * static_cast<uint64_t>(c.head_dim / 2) * 2 * F;
  if (c.n_expert > 0) {
    const uint64_t K = static_cast<uint64_t>(c.n_expert_used), E = static_cast<uint64_t>(c.n_embd),
                   FF = static_cast<uint64_t>(c.n_ff_exp);
    stream += N * K * sizeof(int32_t) + N * K * (2 * E + 2 * FF) * F;
  }
  const uint64_t logits = static_cast<uint64_t>(spec.parallel) * static_cast<uint64_t>(c.n_vocab) * F;
  r.workspace = engine::Workspace::sizes(c, r.batch).total();
  r.scratch = r.workspace + stream + logits;
  return r;
}

uint64_t MemoryPlan::total() const {
  uint64_t t = 0;
  for (const PlanRow& r : rows) t += r.total();
  return t;
}

std::string MemoryPlan::table() const {
  size_t w = 5;
  for (const PlanRow& r : rows) w = std::max(w, r.name.size());
  std::string out = fmt::format("  {:<{}}  {:<7}  {:>10}  {:>10}  {:>9}  {:>10}  {:>10}\n", "model", w, "backend", "weights",
                                "KV", "KV tokens", "scratch", "total");
  for (const PlanRow& r : rows)
    out += fmt::format("  {:<{}}  {:<7}  {:>10}  {:>10}  {:>9}  {:>10}  {:>10}\n", r.name, w, r.backend, format_size(r.weights),
                       format_size(r.kv), r.kv_tokens, format_size(r.scratch), format_size(r.total()));
  out += fmt::format("  {:<{}}  {:<7}  {:>10}  {:>10}  {:>9}  {:>10}  {:>10}\n", "all", w, "", "", "", "", "", format_size(total()));
  out += fmt::format("  budget {} ({}): {}\n", format_size(budget), budget_source,
                     fits() ? fmt::format("fits, {} left", format_size(budget - total()))
                            : fmt::format("DOES NOT FIT, {} over", format_size(total() - budget)));
  return out;
}

nlohmann::json MemoryPlan::to_json() const {
  json models = json::array();
  for (const PlanRow& r : rows)
    models.push_back(json{{"name", r.name}, {"path", r.path}, {"backend", r.backend}, {"arch", r.arch},
                          {"ctx", r.ctx}, {"parallel", r.parallel}, {"batch", r.batch}, {"kv_tokens", r.kv_tokens},
                          {"weights_bytes", r.weights}, {"kv_bytes", r.kv}, {"scratch_bytes", r.scratch}, {"workspace_bytes", r.workspace},
                          {"total_bytes", r.total()}});
  return json{{"models", models}, {"total_bytes", total()}, {"budget_bytes", budget},
              {"budget_source", budget_source}, {"fits", fits()}};
}

uint64_t host_available_memory() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream ss(line.substr(13));
    uint64_t kib = 0;
    ss >> kib;
    return kib * 1024;
  }
  return 0;
}

}  // namespace tessera::server
