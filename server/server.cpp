// serve(): the httplib server, its cross-cutting rules (auth, CORS, limits, errors, one log line
// per request), model loading behind a 503, and the SIGTERM drain (see server.h).
#include "server/server.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
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

int serve(const ServerOptions& opts) {
  SignalWatch signals;
  ServerState st(opts);
  st.model_id = opts.alias.empty() ? std::filesystem::path(opts.model_path).filename().string() : opts.alias;

  httplib::Server svr;
  const size_t http_threads = opts.http_threads > 0 ? static_cast<size_t>(opts.http_threads)
                                                    : static_cast<size_t>(std::max(64, 8 * opts.parallel));
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
      std::fprintf(stderr, "tessera: req %llu %s %s %d prompt=%d cached=%d generated=%d finish=%s ms=%.1f\n",
                   static_cast<unsigned long long>(id), req.method.c_str(), req.path.c_str(), res.status, log.prompt,
                   log.cached, log.generated, log.finish.c_str(), ms);
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
  std::fprintf(stderr, "tessera: loading %s (answering 503 on http://%s:%d until it is loaded)\n",
               opts.model_path.c_str(), opts.host.c_str(), port);

  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{0};
  std::unique_ptr<EngineService> engine;
  std::thread sig([&] {
    while (!stopping.load()) {
      const int s = signals.wait();
      if (s == 0) continue;
      std::fprintf(stderr, "tessera: %s: draining (up to %d s), then exiting\n", s == SIGTERM ? "SIGTERM" : "SIGINT",
                   opts.shutdown_s);
      stopping = true;
    }
  });

  try {
    auto model = engine::Model::load(opts.model_path, opts.load);
    EngineOptions eo;
    eo.context.n_ctx = opts.ctx_size;
    eo.context.n_seq_max = opts.parallel;
    eo.context.kv_tokens = opts.kv_tokens;
    eo.context.n_threads = opts.threads;
    eo.context.n_batch = opts.batch;
    eo.context.prefix_cache = opts.prefix_cache;
    eo.max_queue = opts.max_queue;
    const tok::Tokenizer& tok = model->tokenizer();
    if (tok.fim_prefix() && tok.fim_suffix() && tok.fim_middle()) st.fim = std::make_unique<FimPromptBuilder>(tok);
    st.chat = std::make_unique<ChatFormatter>(tok);
    engine = std::make_unique<EngineService>(std::move(model), eo);
    st.engine = engine.get();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera serve: %s\n", e.what());
    stopping = true;
    exit_code = 1;
  }
  if (exit_code == 0)
    std::fprintf(stderr, "tessera: listening on http://%s:%d (model %s, %d sequences, %d tokens each)\n",
                 opts.host.c_str(), port, st.model_id.c_str(), opts.parallel, opts.ctx_size);
  while (!stopping.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));

  // Drain: new generations get 503, in-flight ones finish or are cancelled at the deadline, then
  // the listener closes and the connection threads end.
  if (engine) {
    const int cancelled = engine->drain(Clock::now() + std::chrono::seconds(opts.shutdown_s));
    if (cancelled > 0) std::fprintf(stderr, "tessera: cancelled %d unfinished requests at the deadline\n", cancelled);
  }
  svr.stop();
  http.join();
  sig.join();
  st.engine = nullptr;
  engine.reset();
  std::fprintf(stderr, "tessera: stopped\n");
  return exit_code;
}

}  // namespace tessera::server
