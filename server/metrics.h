// Server metrics in the Prometheus text format (/metrics): HTTP request counters for the whole
// server, and per model (label model="NAME"): generation and token counters, prefix-cache hits,
// what its engine holds now (sequences, queue, KV blocks) and latency histograms.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

#include "server/engine_service.h"

namespace tessera::server {

class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1.0,  2.5,   5.0,  10.0, 30.0};  // seconds
  void observe(double seconds);
  // The series of one label set (`labels` like `model="x"`); the HELP/TYPE lines are the caller's.
  void render(std::string& out, const char* name, const std::string& labels) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size()> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct HttpMetrics {
  std::atomic<uint64_t> requests{0};        // every HTTP request answered
  std::atomic<uint64_t> errors{0};          // answered 4xx / 5xx
};

// One model's generations.
struct GenerationMetrics {
  std::atomic<uint64_t> generations{0};     // requests that ran through the engine
  std::atomic<uint64_t> cancelled{0};       // of those, ended by a disconnect or a cancel
  std::atomic<uint64_t> rejected{0};        // turned away with 503 (queue full, shutting down)
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> prompt_tokens_cached{0};  // prompt tokens adopted from the prefix cache
  std::atomic<uint64_t> generated_tokens{0};
  Histogram ttft;      // submission to first token
  Histogram duration;  // submission to the end
};

struct ModelMetricsView {
  std::string name;
  const GenerationMetrics* metrics;
  EngineSnapshot engine;  // zeros while the model loads
};

std::string render_metrics(const HttpMetrics& http, std::span<const ModelMetricsView> models);

}  // namespace tessera::server
