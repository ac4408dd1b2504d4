// Prometheus text exposition of Metrics (see metrics.h).
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

void Histogram::render(std::string& out, const char* name, const char* help) const {
  std::lock_guard lock(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (size_t i = 0; i < kBounds.size(); ++i) out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i], counts_[i]);
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

std::string Metrics::render(const EngineSnapshot& s) const {
  std::string out;
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& v) {
    metric(out, name, "counter", help, static_cast<double>(v.load()));
  };
  counter("tessera_requests_total", "HTTP requests answered", requests);
  counter("tessera_requests_errors_total", "HTTP requests answered with a 4xx or 5xx status", errors);
  counter("tessera_requests_rejected_total", "requests turned away with 503 (queue full or shutting down)", rejected);
  counter("tessera_generations_total", "requests that ran through the engine", generations);
  counter("tessera_requests_cancelled_total", "generations ended by a client disconnect or cancel", cancelled);
  counter("tessera_prompt_tokens_total", "prompt tokens of finished generations", prompt_tokens);
  counter("tessera_prompt_tokens_cached_total", "prompt tokens reused from the prefix cache", prompt_tokens_cached);
  counter("tessera_generated_tokens_total", "tokens generated", generated_tokens);
  metric(out, "tessera_requests_running", "gauge", "sequences in use", s.running);
  metric(out, "tessera_requests_waiting", "gauge", "requests queued for a sequence", s.waiting);
  metric(out, "tessera_kv_blocks_total", "gauge", "KV cache blocks", s.kv_blocks_total);
  metric(out, "tessera_kv_blocks_used", "gauge", "KV cache blocks held by live sequences", s.kv_blocks_used);
  metric(out, "tessera_kv_blocks_cached", "gauge", "KV cache blocks held only by the prefix cache", s.kv_blocks_cached);
  metric(out, "tessera_engine_steps_total", "counter", "forward passes run by the scheduler", static_cast<double>(s.steps));
  ttft.render(out, "tessera_ttft_seconds", "time from submission to the first generated token");
  duration.render(out, "tessera_request_duration_seconds", "time from submission to the end of a generation");
  return out;
}

}  // namespace tessera::server
