// Prometheus text exposition of the server's metrics (see metrics.h).
#include "server/metrics.h"

#include <fmt/format.h>

namespace tessera::server {

void Histogram::observe(double seconds) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (seconds <= kBounds[i]) ++counts_[i];
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::string& out, const char* name, const std::string& labels) const {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < kBounds.size(); ++i)
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, kBounds[i], counts_[i]);
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, count_, name,
                     labels, sum_, name, labels, count_);
}

namespace {

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::string label(const std::string& model) {  // model="NAME", with \ " and newline escaped
  std::string v;
  for (char c : model) {
    if (c == '\\' || c == '"') v += '\\';
    if (c == '\n') {
      v += "\\n";
      continue;
    }
    v += c;
  }
  return fmt::format("model=\"{}\"", v);
}

}  // namespace

std::string render_metrics(const HttpMetrics& http, std::span<const ModelMetricsView> models) {
  std::string out;
  header(out, "tessera_requests_total", "counter", "HTTP requests answered");
  out += fmt::format("tessera_requests_total {}\n", http.requests.load());
  header(out, "tessera_requests_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status");
  out += fmt::format("tessera_requests_errors_total {}\n", http.errors.load());

  auto per_model = [&](const char* name, const char* type, const char* help, auto value) {
    header(out, name, type, help);
    for (const ModelMetricsView& m : models) out += fmt::format("{}{{{}}} {}\n", name, label(m.name), value(m));
  };
  using V = const ModelMetricsView&;
  per_model("tessera_requests_rejected_total", "counter", "requests turned away with 503 (queue full or shutting down)",
            [](V m) { return m.metrics->rejected.load(); });
  per_model("tessera_generations_total", "counter", "requests that ran through the engine",
            [](V m) { return m.metrics->generations.load(); });
  per_model("tessera_requests_cancelled_total", "counter", "generations ended by a client disconnect or cancel",
            [](V m) { return m.metrics->cancelled.load(); });
  per_model("tessera_prompt_tokens_total", "counter", "prompt tokens of finished generations",
            [](V m) { return m.metrics->prompt_tokens.load(); });
  per_model("tessera_prompt_tokens_cached_total", "counter", "prompt tokens reused from the prefix cache",
            [](V m) { return m.metrics->prompt_tokens_cached.load(); });
  per_model("tessera_generated_tokens_total", "counter", "tokens generated",
            [](V m) { return m.metrics->generated_tokens.load(); });
  per_model("tessera_requests_running", "gauge", "sequences in use", [](V m) { return m.engine.running; });
  per_model("tessera_requests_waiting", "gauge", "requests queued for a sequence", [](V m) { return m.engine.waiting; });
  per_model("tessera_kv_blocks_total", "gauge", "KV cache blocks", [](V m) { return m.engine.kv_blocks_total; });
  per_model("tessera_kv_blocks_used", "gauge", "KV cache blocks held by live sequences",
            [](V m) { return m.engine.kv_blocks_used; });
  per_model("tessera_kv_blocks_cached", "gauge", "KV cache blocks held only by the prefix cache",
            [](V m) { return m.engine.kv_blocks_cached; });
  per_model("tessera_engine_steps_total", "counter", "forward passes run by the scheduler",
            [](V m) { return m.engine.steps; });
  header(out, "tessera_ttft_seconds", "histogram", "time from submission to the first generated token");
  for (const ModelMetricsView& m : models) m.metrics->ttft.render(out, "tessera_ttft_seconds", label(m.name));
  header(out, "tessera_request_duration_seconds", "histogram", "time from submission to the end of a generation");
  for (const ModelMetricsView& m : models)
    m.metrics->duration.render(out, "tessera_request_duration_seconds", label(m.name));
  return out;
}

}  // namespace tessera::server
