// serve(): the httplib server, its cross-cutting rules (auth, CORS, limits, errors, one log line
// per request), model loading behind a 503, and the SIGTERM drain (see server.h).
#include "server/server.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/backend/backend.h"
#include "server/routes.h"

namespace tessera::server {
namespace {

bool same_secret(std::string_view a, std::string_view b) {  // constant time for equal lengths
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// The Access-Control-Allow-Origin value for a request's Origin ("" when not allowed).
std::string allowed_origin(const ServerOptions& o, const httplib::Request& req) {
  if (o.cors.empty() || !req.has_header("Origin")) return {};
  const std::string origin = req.get_header_value("Origin");
  for (const std::string& a : o.cors)
    if (a == "*" || a == origin) return a == "*" ? "*" : origin;
  return {};
}

struct SignalWatch {  // SIGTERM / SIGINT, taken by sigwait on one thread (blocked everywhere else)
  sigset_t set{};
  SignalWatch() {
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts: they inherit it
  }
  // Waits up to 200 ms; the signal number or 0.
  int wait() const {
    timespec ts{0, 200'000'000};
    const int s = sigtimedwait(&set, nullptr, &ts);
    return s > 0 ? s : 0;
  }
};

}  // namespace

namespace {

// The models to serve with every field filled, and the memory plan against the budget. Throws
// tessera::Error for a spec or file that cannot be planned.
std::vector<ModelSpec> model_specs(const ServerOptions& opts) {
  std::vector<ModelSpec> specs = opts.models;
  if (specs.empty()) {
    ModelSpec m;
    m.name = opts.alias.empty() ? std::filesystem::path(opts.model_path).filename().string() : opts.alias;
    m.path = opts.model_path;
    m.backend = opts.load.backend;
    specs.push_back(std::move(m));
  }
  finish_specs(specs, opts.ctx_size, opts.parallel, opts.kv_tokens);
  for (ModelSpec& m : specs) {
    if (m.backend.empty()) m.backend = opts.load.backend;
    const std::string names = engine::backend_names();  // "cpu, ref[, vulkan]"
    if ((", " + names + ",").find(", " + m.backend + ",") == std::string::npos)
      throw_error("model '{}': backend '{}' is not available in this build (available: {})", m.name, m.backend, names);
  }
  return specs;
}

MemoryPlan memory_plan(const ServerOptions& opts, const std::vector<ModelSpec>& specs) {
  MemoryPlan plan;
  if (opts.mem_limit > 0) {
    plan.budget = opts.mem_limit;
    plan.budget_source = "--mem-limit";
  } else {
    plan.budget = host_available_memory();
    plan.budget_source = "MemAvailable";
    if (plan.budget == 0) throw_error("cannot read MemAvailable from /proc/meminfo; give the budget with --mem-limit SIZE");
  }
  for (const ModelSpec& m : specs) plan.rows.push_back(plan_model(m, opts.batch));
  return plan;
}

}  // namespace

int serve(const ServerOptions& opts) {
  SignalWatch signals;
  ServerState st(opts);
  // Plan before anything binds or loads: a plan that does not fit is refused with its table.
  std::vector<ModelSpec> specs;
  try {
    specs = model_specs(opts);
    st.plan = memory_plan(opts, specs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera serve: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "tessera: memory plan (weights from the GGUF headers; KV f16; scratch for batch %d):\n%s",
               opts.batch, st.plan.table().c_str());
  if (!st.plan.fits()) {
    std::fprintf(stderr,
                 "tessera serve: the memory plan needs %s but the budget (%s) is %s; lower a model's kv-mem, ctx or "
                 "parallel, serve fewer models, or set --mem-limit\n",
                 format_size(st.plan.total()).c_str(), st.plan.budget_source.c_str(), format_size(st.plan.budget).c_str());
    return 1;
  }
  int total_parallel = 0;
  for (const ModelSpec& m : specs) {
    st.models.push_back(std::make_unique<ModelSlot>(m));
    total_parallel += m.parallel;
  }
  if (!opts.default_model.empty()) {
    size_t i = 0;
    while (i < specs.size() && specs[i].name != opts.default_model) ++i;
    if (i == specs.size()) {
      std::fprintf(stderr, "tessera serve: the default model '%s' is not one of the models (%s)\n",
                   opts.default_model.c_str(), st.model_names().c_str());
      return 1;
    }
    st.default_index = i;
  }

  httplib::Server svr;
  const size_t http_threads = opts.http_threads > 0 ? static_cast<size_t>(opts.http_threads)
                                                    : static_cast<size_t>(std::max(64, 8 * total_parallel));
  svr.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  svr.set_payload_max_length(opts.max_body);
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  svr.set_keep_alive_timeout(5);

  std::string replica = opts.replica;
  svr.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    request_log() = RequestLog{};
    res.set_header("X-Tessera-Replica", replica);
    const std::string origin = allowed_origin(opts, req);
    if (!origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {  // CORS preflight: never needs the key
      if (!origin.empty()) {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Tessera-Client");
        res.set_header("Access-Control-Max-Age", "86400");
      }
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    // /health (load balancers) and the playground page (a browser cannot send the key when it
    // loads a page; its requests to the API carry it) need no key.
    const bool exempt = req.path == "/health" || req.path == "/playground" || req.path.rfind("/playground/", 0) == 0;
    if (!opts.api_key.empty() && !exempt) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string_view bearer = "Bearer ";
      if (auth.rfind(bearer, 0) != 0 || !same_secret(std::string_view(auth).substr(bearer.size()), opts.api_key)) {
        write_error(res, 401, "invalid or missing API key (send 'Authorization: Bearer <key>')", "authentication_error");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib produces itself (404, 413, 400 for a broken request line ...) get the JSON shape.
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* msg = res.status == 404   ? "no such endpoint"
                      : res.status == 413 ? "the request body is too large"
                      : res.status == 405 ? "method not allowed"
                                          : "bad request";
    write_error(res, res.status, res.status == 404 ? fmt::format("{}: {} {}", msg, req.method, req.path) : msg);
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      write_error(res, 500, fmt::format("internal error: {}", e.what()), "server_error");
    } catch (...) {
      write_error(res, 500, "internal error", "server_error");
    }
  });
  svr.set_logger([&st](const httplib::Request& req, const httplib::Response& res) {
    const uint64_t id = st.next_request++;
    ++st.metrics.requests;
    if (res.status >= 400) ++st.metrics.errors;
    const RequestLog& log = request_log();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - log.start).count();
    if (log.prompt >= 0) {
      std::fprintf(stderr, "tessera: req %llu %s %s %d model=%s prompt=%d cached=%d generated=%d finish=%s ms=%.1f\n",
                   static_cast<unsigned long long>(id), req.method.c_str(), req.path.c_str(), res.status,
                   log.model.c_str(), log.prompt, log.cached, log.generated, log.finish.c_str(), ms);
    } else {
      std::fprintf(stderr, "tessera: req %llu %s %s %d%s ms=%.1f\n", static_cast<unsigned long long>(id),
                   req.method.c_str(), req.path.c_str(), res.status, log.finish.empty() ? "" : (" " + log.finish).c_str(), ms);
    }
  });

  register_llama_routes(svr, st);
  register_openai_routes(svr, st);
  register_tabby_routes(svr, st);
  register_playground_routes(svr, st);

  const int port = opts.port == 0 ? svr.bind_to_any_port(opts.host) : (svr.bind_to_port(opts.host, opts.port) ? opts.port : -1);
  if (port < 0) {
    std::fprintf(stderr, "tessera serve: cannot listen on %s:%d (in use, or not an address of this machine)\n",
                 opts.host.c_str(), opts.port);
    return 1;
  }
  if (replica.empty()) replica = fmt::format("{}:{}", opts.host, port);
  std::thread http([&svr] { svr.listen_after_bind(); });
  std::fprintf(stderr, "tessera: loading %zu model(s) one after another (each answers 503 on http://%s:%d until it is loaded)\n",
               st.models.size(), opts.host.c_str(), port);

  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{0};
  std::thread sig([&] {
    while (!stopping.load()) {
      const int s = signals.wait();
      if (s == 0) continue;
      std::fprintf(stderr, "tessera: %s: draining (up to %d s), then exiting\n", s == SIGTERM ? "SIGTERM" : "SIGINT",
                   opts.shutdown_s);
      stopping = true;
    }
  });

  // One after another: a load never races another for memory or the disk.
  for (size_t i = 0; i < st.models.size() && !stopping.load(); ++i) {
    ModelSlot& slot = *st.models[i];
    const ModelSpec& spec = slot.spec;
    try {
      engine::LoadOptions lo = opts.load;
      lo.backend = spec.backend;
      auto model = engine::Model::load(spec.path, lo);
      EngineOptions eo;
      eo.context.n_ctx = spec.ctx;
      eo.context.n_seq_max = spec.parallel;
      eo.context.kv_tokens = static_cast<int>(st.plan.rows[i].kv_tokens);
      eo.context.n_threads = opts.threads;
      eo.context.n_batch = opts.batch;
      eo.context.prefix_cache = opts.prefix_cache;
      eo.max_queue = opts.max_queue;
      const tok::Tokenizer& tok = model->tokenizer();
      if (tok.fim_prefix() && tok.fim_suffix() && tok.fim_middle()) slot.fim = std::make_unique<FimPromptBuilder>(tok);
      slot.chat = std::make_unique<ChatFormatter>(tok);
      slot.owned = std::make_unique<EngineService>(std::move(model), eo);
      slot.engine = slot.owned.get();
      std::fprintf(stderr, "tessera: model %s ready (%s, %d sequences, %d tokens each%s)\n", spec.name.c_str(),
                   spec.path.c_str(), spec.parallel, spec.ctx,
                   spec.max_tokens > 0 ? fmt::format(", max {} output tokens", spec.max_tokens).c_str() : "");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tessera serve: model %s: %s\n", spec.name.c_str(), e.what());
      stopping = true;
      exit_code = 1;
    }
  }
  if (exit_code == 0 && !stopping.load())
    std::fprintf(stderr, "tessera: listening on http://%s:%d (models %s; default %s)\n", opts.host.c_str(), port,
                 st.model_names().c_str(), st.default_model().id().c_str());
  while (!stopping.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));

  // Drain: new generations get 503, in-flight ones finish or are cancelled at the deadline, then
  // the listener closes and the connection threads end.
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(opts.shutdown_s);
  for (const auto& slot : st.models) {
    if (!slot->owned) continue;
    const int cancelled = slot->owned->drain(deadline);
    if (cancelled > 0)
      std::fprintf(stderr, "tessera: %s: cancelled %d unfinished requests at the deadline\n", slot->id().c_str(), cancelled);
  }
  svr.stop();
  http.join();
  sig.join();
  for (const auto& slot : st.models) {
    slot->engine = nullptr;
    slot->owned.reset();
  }
  std::fprintf(stderr, "tessera: stopped\n");
  return exit_code;
}

}  // namespace tessera::server
