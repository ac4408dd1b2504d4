// What the endpoint files share: the server state, request-to-job helpers (prompt tokens, sampling
// fields, limits), and the one runner that turns a job into a JSON or SSE response while watching
// the client's connection.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <httplib.h>

#include "server/chat.h"
#include "server/engine_service.h"
#include "server/fim.h"
#include "server/http_util.h"
#include "server/metrics.h"
#include "server/models.h"
#include "server/server.h"

namespace tessera::server {

// One model the server runs: its spec (name = the id clients send as `model`), its engine, prompt
// builders and generation metrics.
struct ModelSlot {
  explicit ModelSlot(ModelSpec s) : spec(std::move(s)) {}
  ModelSpec spec;
  std::atomic<EngineService*> engine{nullptr};  // null while the model loads
  std::unique_ptr<EngineService> owned;         // what engine points at (serve() owns the lifetime)
  std::unique_ptr<FimPromptBuilder> fim;        // null when the vocabulary has no FIM tokens
  std::unique_ptr<ChatFormatter> chat;
  GenerationMetrics metrics;

  const std::string& id() const { return spec.name; }
  EngineService& ready() const;  // ApiError 503 "Loading model" until loaded
  const FimPromptBuilder& fim_builder() const;  // ApiError 400 when the model cannot do FIM
  // A request's max tokens under the model's cap (-1, or more than the cap, becomes the cap).
  int cap_max_tokens(int requested) const;
};

struct ServerState {
  explicit ServerState(const ServerOptions& o) : opts(o) {}
  const ServerOptions& opts;
  std::vector<std::unique_ptr<ModelSlot>> models;  // at least one
  size_t default_index = 0;
  MemoryPlan plan;
  HttpMetrics metrics;
  std::atomic<uint64_t> next_request{1};

  ModelSlot& default_model() const { return *models[default_index]; }
  // The model a request names in `model`. One model: always it (clients send arbitrary names).
  // Several: the named one; absent, null or "": the default; an unknown name: ApiError 404
  // not_found_error listing the names when strict (OpenAI endpoints), else the default (Tabby and
  // llama.cpp endpoints).
  ModelSlot& route(const json& body, bool strict = true) const;
  std::string model_names() const;  // "a, b, c"
  std::string render_metrics() const;
};

// How an endpoint shapes a generation into its response.
class ResponseFormat {
 public:
  virtual ~ResponseFormat() = default;
  // Streaming: the SSE events for a new piece of text ("" for none yet).
  virtual std::string stream_text(std::string_view piece) = 0;
  // Streaming: the closing events (last chunk, usage, [DONE] where the API has it).
  virtual std::string stream_end(const engine::GenerateResult& r) = 0;
  // Not streaming: the whole response body.
  virtual json body(const engine::GenerateResult& r) = 0;
};

// Submits the job and answers: a JSON body when !stream, else text/event-stream. A client that
// disconnects cancels its job (its sequence is freed at the next step). Throws ApiError (503 when
// the queue is full) before anything is sent.
// The job's max_tokens is capped by the model's max-tokens first.
void respond_generation(const httplib::Request& req, httplib::Response& res, ServerState& st, ModelSlot& model,
                        JobSpec job, std::unique_ptr<ResponseFormat> format, bool stream);

// A prompt field: a string (tokenized with special tokens parsed), or an array of token ids
// (checked against the vocabulary), or an array holding one string. ApiError 400 otherwise.
std::vector<int32_t> prompt_tokens(const EngineService& eng, const json& prompt, bool parse_special = true);
// ApiError 400 when the prompt leaves no room to generate, saying by how much it is over.
void check_prompt_fits(const EngineService& eng, size_t n_prompt);

// Sampling fields shared by the APIs: temperature, top_p, top_k, min_p, seed, penalties
// (presence/frequency/repeat, repeat_last_n), stop (max 16 strings), ignore_eos.
void read_sampling(const Fields& f, engine::GenerateParams& gp);
// max tokens field(s): the first present of keys; -1 (or absent with fallback -1): until the context is full.
int read_max_tokens(const Fields& f, std::initializer_list<const char*> keys, int fallback);

// Deadline for a job: now + the server's per-request limit.
Clock::time_point job_deadline(const ServerState& st);

// Texts of the FIM control tokens that are not end-of-generation tokens (stop strings for FIM jobs).
std::vector<std::string> fim_stop_strings(const tok::Tokenizer& tok);

// Every handler runs inside this: ApiError -> its status, tessera::Error -> 400, anything else -> 500
// with the message (never a crash), all as {"error": {...}}.
httplib::Server::Handler guarded(httplib::Server::Handler h);
// POST routes read their body themselves: httplib would cap form-encoded bodies (curl -d without a
// JSON Content-Type) at 8 KiB; the server's --max-body still applies.
void post(httplib::Server& svr, const ServerState& st, const std::string& path, httplib::Server::Handler h);
void write_error(httplib::Response& res, int status, std::string_view message, std::string_view type = {});

// Sets a JSON body.
void send_json(httplib::Response& res, const json& body, int status = 200);

// Per-request log fields filled by the handler, printed by the server's logger (same thread).
struct RequestLog {
  Clock::time_point start = Clock::now();
  int prompt = -1, cached = 0, generated = 0;
  std::string finish;
  std::string model;  // the model that ran it
};
RequestLog& request_log();  // this thread's current request

void register_llama_routes(httplib::Server& svr, ServerState& st);
void register_openai_routes(httplib::Server& svr, ServerState& st);  // incl. Tabby's /v1/completions
// Tabby: POST /v1/completions with `segments` (called by the OpenAI handler), /v1/health, /v1/events.
void handle_tabby_completion(const httplib::Request& req, httplib::Response& res, ServerState& st, const json& body);
void register_tabby_routes(httplib::Server& svr, ServerState& st);
// GET /playground: the CodeMirror playground, its files embedded at build time (server/playground.cpp).
void register_playground_routes(httplib::Server& svr, ServerState& st);

}  // namespace tessera::server
