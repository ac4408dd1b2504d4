// The shared request-to-job helpers and the generation runner (see routes.h).
#include <limits>

#include <fmt/format.h>

#include "core/error.h"
#include "server/routes.h"

namespace tessera::server {

EngineService& ModelSlot::ready() const {
  EngineService* e = engine.load();
  if (!e) throw ApiError(503, fmt::format("Loading model {}", spec.name), "unavailable_error");
  return *e;
}

const FimPromptBuilder& ModelSlot::fim_builder() const {
  ready();
  if (!fim)
    throw ApiError(400, fmt::format("model {} has no fill-in-the-middle tokens (<|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>)",
                                    spec.name));
  return *fim;
}

int ModelSlot::cap_max_tokens(int requested) const {
  if (spec.max_tokens <= 0) return requested;
  return requested < 0 || requested > spec.max_tokens ? spec.max_tokens : requested;
}

std::string ServerState::model_names() const {
  std::string s;
  for (const auto& m : models) s += (s.empty() ? "" : ", ") + m->id();
  return s;
}

ModelSlot& ServerState::route(const json& body, bool strict) const {
  if (models.size() == 1) return *models[0];
  auto it = body.find("model");
  if (it == body.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty()))
    return default_model();
  if (it->is_string()) {
    const std::string& name = it->get_ref<const std::string&>();
    for (const auto& m : models)
      if (m->id() == name) return *m;
    if (!strict) return default_model();
    throw ApiError(404, fmt::format("The model '{}' does not exist; this server has: {}", name, model_names()),
                   "not_found_error");
  }
  throw ApiError(400, "'model' must be a string");
}

std::string ServerState::render_metrics() const {
  std::vector<ModelMetricsView> views;
  for (const auto& m : models) {
    const EngineService* e = m->engine.load();
    views.push_back(ModelMetricsView{m->id(), &m->metrics, e ? e->snapshot() : EngineSnapshot{}});
  }
  return server::render_metrics(metrics, views);
}

RequestLog& request_log() {
  thread_local RequestLog log;
  return log;
}

void write_error(httplib::Response& res, int status, std::string_view message, std::string_view type) {
  res.status = status;
  res.set_content(dump(error_body(status, message, type)), "application/json");
}

httplib::Server::Handler guarded(httplib::Server::Handler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (const ApiError& e) {
      write_error(res, e.status, e.what(), e.type);
    } catch (const Error& e) {  // tessera::Error from the engine or tokenizer: a request it cannot take
      write_error(res, 400, e.what());
    } catch (const std::exception& e) {
      write_error(res, 500, fmt::format("internal error: {}", e.what()), "server_error");
    }
  };
}

void post(httplib::Server& svr, const ServerState& st, const std::string& path, httplib::Server::Handler h) {
  const size_t max_body = st.opts.max_body;
  svr.Post(path, [g = guarded(std::move(h)), max_body](const httplib::Request& req, httplib::Response& res,
                                                       const httplib::ContentReader& read) {
    httplib::Request with_body = req;
    bool too_large = false;
    const bool ok = read([&](const char* data, size_t n) {
      if (with_body.body.size() + n > max_body) return !(too_large = true);
      with_body.body.append(data, n);
      return true;
    });
    if (too_large || (!ok && res.status == 413))
      return write_error(res, 413, fmt::format("the request body is larger than this server's limit of {} bytes", max_body));
    if (!ok) return write_error(res, 400, "the request body could not be read (truncated or malformed)");
    g(with_body, res);
  });
}

void send_json(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

std::vector<int32_t> prompt_tokens(const EngineService& eng, const json& prompt, bool parse_special) {
  const tok::Tokenizer& tok = eng.tokenizer();
  if (prompt.is_string()) return tok.encode(prompt.get<std::string>(), parse_special);
  if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string())
    return tok.encode(prompt[0].get<std::string>(), parse_special);
  if (prompt.is_array()) {
    std::vector<int32_t> ids;
    ids.reserve(prompt.size());
    for (const json& v : prompt) {
      if (!v.is_number_integer()) throw ApiError(400, "'prompt' must be a string or an array of token ids");
      const int64_t id = v.get<int64_t>();
      if (id < 0 || id >= tok.n_vocab())
        throw ApiError(400, fmt::format("'prompt' holds token id {}, outside the vocabulary [0, {})", id, tok.n_vocab()));
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  }
  throw ApiError(400, "'prompt' must be a string or an array of token ids");
}

void check_prompt_fits(const EngineService& eng, size_t n_prompt) {
  if (n_prompt == 0) throw ApiError(400, "the prompt is empty");
  const size_t n_ctx = static_cast<size_t>(eng.n_ctx());
  if (n_prompt >= n_ctx)
    throw ApiError(400, fmt::format("the prompt is {} tokens, {} more than this server's context of {} tokens "
                                    "allows ({} for the prompt and at least one to generate)",
                                    n_prompt, n_prompt - (n_ctx - 1), n_ctx, n_ctx - 1),
                   "invalid_request_error");
}

void read_sampling(const Fields& f, engine::GenerateParams& gp) {
  engine::SamplerParams& s = gp.sampler;
  s.temperature = static_cast<float>(f.get_num("temperature", s.temperature, -1e9, 1e9));
  s.top_p = static_cast<float>(f.get_num("top_p", s.top_p, 0.0, 1.0));
  s.top_k = static_cast<int>(f.get_int("top_k", s.top_k, -1, 1 << 30));
  s.min_p = static_cast<float>(f.get_num("min_p", s.min_p, 0.0, 1.0));
  s.presence_penalty = static_cast<float>(f.get_num("presence_penalty", s.presence_penalty, -2.0, 2.0));
  s.frequency_penalty = static_cast<float>(f.get_num("frequency_penalty", s.frequency_penalty, -2.0, 2.0));
  s.repeat_penalty = static_cast<float>(f.get_num("repeat_penalty", s.repeat_penalty, 1e-3, 100.0));
  s.penalty_last_n = static_cast<int>(f.get_int("repeat_last_n", s.penalty_last_n, -1, 1 << 20));
  // A negative or absent seed is a random one (llama.cpp: -1).
  const int64_t seed = f.get_int("seed", -1, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  s.seed = seed < 0 ? engine::SamplerParams::kRandomSeed : static_cast<uint64_t>(seed);
  for (std::string& stop : f.get_strings("stop", 16))
    if (!stop.empty()) gp.stop.push_back(std::move(stop));
  if (f.get_bool("ignore_eos", false)) gp.stop_at_eog = false;
}

int read_max_tokens(const Fields& f, std::initializer_list<const char*> keys, int fallback) {
  for (const char* k : keys)
    if (f.has(k)) return static_cast<int>(f.get_int(k, fallback, -1, 1 << 30));
  return fallback;
}

Clock::time_point job_deadline(const ServerState& st) {
  return Clock::now() + std::chrono::seconds(st.opts.timeout_s);
}

namespace {

constexpr auto kPoll = std::chrono::milliseconds(20);

// Counts the generation in the metrics and the request log.
void account(ModelSlot& slot, const engine::GenerateResult& r) {
  GenerationMetrics& m = slot.metrics;
  ++m.generations;
  if (r.finish == engine::FinishReason::Cancelled) ++m.cancelled;
  m.prompt_tokens += static_cast<uint64_t>(r.n_prompt);
  m.prompt_tokens_cached += static_cast<uint64_t>(r.n_prompt_cached);
  m.generated_tokens += static_cast<uint64_t>(r.n_generated);
  if (r.n_generated > 0) m.ttft.observe(r.ttft_ms / 1e3);
  m.duration.observe((r.prompt_ms + r.gen_ms) / 1e3);
  RequestLog& log = request_log();
  log.prompt = r.n_prompt;
  log.cached = r.n_prompt_cached;
  log.generated = r.n_generated;
  log.finish = engine::finish_reason_name(r.finish);
}

// An engine error the client caused (cannot run) or ours.
[[noreturn]] void throw_job_error(const engine::GenerateResult& r) {
  const bool ours = r.error.rfind("engine:", 0) == 0;
  throw ApiError(ours ? 500 : 400, r.error.empty() ? "the request failed" : r.error,
                 ours ? "server_error" : "invalid_request_error");
}

// The client went away mid-stream: cancel, and wait (briefly: it ends at the next step) so that
// its tokens are counted and logged too.
void abandon(Job& job, ModelSlot& slot, bool& finished) {
  job.cancel();
  finished = true;
  Job::Update u;
  const auto give_up = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < give_up && !(job.wait(u, kPoll) && u.done)) {
  }
  if (u.done) {
    account(slot, u.result);
  } else {
    ++slot.metrics.generations;
    ++slot.metrics.cancelled;
  }
  request_log().finish = "disconnected";
}

}  // namespace

void respond_generation(const httplib::Request& req, httplib::Response& res, ServerState&, ModelSlot& slot,
                        JobSpec spec, std::unique_ptr<ResponseFormat> format, bool stream) {
  EngineService& eng = slot.ready();
  request_log().model = slot.id();
  spec.params.max_tokens = slot.cap_max_tokens(spec.params.max_tokens);
  std::shared_ptr<Job> job;
  try {
    job = eng.submit(std::move(spec));
  } catch (const Overloaded& e) {
    ++slot.metrics.rejected;
    res.set_header("Retry-After", "1");
    throw ApiError(503, e.what(), "unavailable_error");
  }
  auto watch = std::make_shared<ConnectionWatch>(req.remote_addr, req.remote_port);

  if (!stream) {
    std::string text;
    Job::Update u;
    for (;;) {
      if (job->wait(u, kPoll) && u.done) break;
      if (!job->cancelled() && watch->closed()) job->cancel();  // nobody to answer: free the sequence
    }
    account(slot, u.result);
    if (u.result.finish == engine::FinishReason::Error) throw_job_error(u.result);
    send_json(res, format->body(u.result));
    return;
  }

  // Streaming: headers go out now; each call of the provider sends what the engine produced since.
  std::shared_ptr<ResponseFormat> fmt_shared(std::move(format));
  auto finished = std::make_shared<bool>(false);
  ModelSlot* stp = &slot;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass events through unbuffered
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, watch, fmt_shared, finished, stp](size_t, httplib::DataSink& sink) {
        Job::Update u;
        const bool got = job->wait(u, kPoll);
        if (!got) {
          if (watch->closed()) {
            abandon(*job, *stp, *finished);
            return false;
          }
          return true;
        }
        std::string out;
        if (!u.text.empty()) out = fmt_shared->stream_text(u.text);
        if (u.done) {
          *finished = true;
          account(*stp, u.result);
          if (u.result.finish == engine::FinishReason::Error) {
            out += sse_data(error_body(u.result.error.rfind("engine:", 0) == 0 ? 500 : 400, u.result.error));
          } else {
            out += fmt_shared->stream_end(u.result);
          }
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          if (!*finished) abandon(*job, *stp, *finished);
          return false;
        }
        if (u.done) sink.done();
        return true;
      },
      [job, finished, stp](bool /*success*/) {
        // Finished: already counted, whatever success says (a client that closes right after the
        // last event makes the final chunk's write fail; that is not a cancel).
        if (!*finished) abandon(*job, *stp, *finished);
      });
}

}  // namespace tessera::server
