// tessera serve: the HTTP front (Tabby, OpenAI and llama.cpp-compatible endpoints) over one or more
// models, each run by its own scheduler. serve() plans memory (refusing a plan that does not fit),
// binds, loads the models one after another (a model answers 503 until it is loaded), serves until
// SIGTERM or SIGINT, then drains (stops accepting, finishes or cancels in-flight work by a deadline).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "server/models.h"

namespace tessera::server {

struct ServerOptions {
  std::string model_path;           // one model (-m PATH), named by alias or the file name
  std::vector<ModelSpec> models;    // several (--model NAME=PATH,... / --config): replaces model_path
  std::string default_model;        // Tabby / llama.cpp endpoints and an absent `model` (default: the first)
  uint64_t mem_limit = 0;           // memory budget in bytes (0: MemAvailable of /proc/meminfo)
  std::string host = "127.0.0.1";
  int port = 8083;                  // 0: any free port (printed when listening)
  // Defaults for models that do not set their own:
  int parallel = 4;                 // sequences decoded together
  int ctx_size = 4096;              // tokens one request may hold (prompt + generated)
  int kv_tokens = 0;                // KV cache tokens shared by all sequences (0: ctx_size x parallel)
  int threads = 2;                  // compute threads
  int batch = 512;                  // tokens per forward pass (decode + prefill chunks)
  std::string api_key;              // Bearer token required when set
  std::vector<std::string> cors;    // allowed origins ("*": any); empty: no CORS headers
  int max_queue = 64;               // requests waiting for a sequence before 503
  int timeout_s = 600;              // per-request time limit (generation ends with "length")
  size_t max_body = 8u << 20;       // request body limit in bytes (413 beyond)
  int http_threads = 0;             // connection threads (0: max(64, 8 x parallel))
  int shutdown_s = 10;              // on SIGTERM: in-flight work gets this long before it is cancelled
  int fim_max_prompt = 4096;        // FIM prompt tokens at most (Tabby, /infill, suffix)
  std::string alias;                // model id in /v1/models (default: the file name)
  std::string replica;              // X-Tessera-Replica header (default host:port)
  bool prefix_cache = true;
  engine::LoadOptions load;
};

// Blocks until a signal ends the server; returns the process exit code (0 after a clean drain).
int serve(const ServerOptions& opts);

}  // namespace tessera::server
