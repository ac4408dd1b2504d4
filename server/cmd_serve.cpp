// tessera serve: reads the flags into ServerOptions and runs the HTTP server (server/server.h).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "server/server.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/tool_util.h"

namespace tessera::cli {
namespace {

constexpr const char* kUsage =
    "usage: tessera serve -m MODEL [options]\n"
    "       tessera serve --model NAME=PATH[,key=value...] [--model NAME=PATH...] [options]\n"
    "       tessera serve --config FILE [options]\n"
    "\n"
    "  -m, --model FILE       GGUF model (default: $TESSERA_MODEL)\n"
    "  --model NAME=PATH[,backend=cpu|ref][,ctx=N][,kv-mem=SIZE][,kv-tokens=N][,parallel=N][,max-tokens=N]\n"
    "                         one of several models (repeatable), routed by the request's `model`;\n"
    "                         kv-mem: KV cache budget (512M, 2G); max-tokens: cap on every request's output\n"
    "  --config FILE          models from JSON: {\"models\": [{\"name\", \"path\", \"backend\", \"ctx\",\n"
    "                         \"kv_mem\", \"parallel\", \"max_tokens\"}], \"default\": NAME}\n"
    "  --default NAME         model of the Tabby and llama.cpp endpoints and of requests without\n"
    "                         `model` (default: the config's \"default\", else the first)\n"
    "  --mem-limit SIZE       memory budget of the plan (default: MemAvailable of /proc/meminfo);\n"
    "                         a plan over it is refused at start-up\n"
    "  --host ADDR            address to bind (default 127.0.0.1; 0.0.0.0: every interface)\n"
    "  --port N               (default 8083; 0: any free port, printed when listening)\n"
    "  -np, --parallel N      sequences decoded together (default 4; per model unless it sets its own)\n"
    "  -c, --ctx-size N       tokens one request may hold, prompt + generated (default 4096; per model)\n"
    "  --kv-tokens N          KV cache tokens shared by a model's sequences (default ctx-size x parallel)\n"
    "  -t, --threads N        compute threads (default 2)\n"
    "  --weights auto|mmap|copy  copy: weights read into huge-page memory (faster decode on the CPU; auto\n"
    "                         does it on cpu/ref when the file fits in half of MemAvailable); mmap: zero-copy\n"
    "  -b, --batch-size N     tokens per forward pass, decode + prefill (default 512)\n"
    "  --api-key KEY          require 'Authorization: Bearer KEY' (default $TESSERA_API_KEY; /health\n"
    "                         and CORS preflight are exempt)\n"
    "  --cors ORIGINS         comma-separated origins allowed by CORS, or '*' (default: none)\n"
    "  --queue N              requests waiting for a sequence before 503 (default 64)\n"
    "  --timeout-s S          per-request time limit (default 600)\n"
    "  --max-body BYTES       request body limit (default 8388608)\n"
    "  --http-threads N       connection threads (default max(64, 8 x parallel))\n"
    "  --shutdown-s S         on SIGTERM, in-flight requests get this long (default 10)\n"
    "  --fim-max-prompt N     FIM prompt tokens at most (default 4096)\n"
    "  --alias NAME           model id in /v1/models (default: the file name)\n"
    "  --replica-name NAME    X-Tessera-Replica header (default host:port)\n"
    "  --no-prefix-cache      do not reuse KV blocks of earlier prompts\n";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  server::ServerOptions o;
  // -m FILE: one model. NAME=PATH,...: one of several (a value naming an existing file is a file).
  const std::string config = args.get({"--config"}, "");
  if (!config.empty()) {
    server::ModelsConfig cfg = server::read_models_config(config);
    o.models = std::move(cfg.models);
    o.default_model = std::move(cfg.default_model);
  }
  for (const std::string& v : args.values({"-m", "--model"})) {
    const size_t eq = v.find('=');
    const bool spec = eq != std::string::npos && eq > 0 && v.find('/') > eq && !std::filesystem::exists(v);
    if (spec) {
      o.models.push_back(server::parse_model_flag(v));
    } else {
      if (!o.model_path.empty()) throw_error("serve: several model files: name them (--model NAME=PATH ...)");
      o.model_path = v;
    }
  }
  if (!o.model_path.empty() && !o.models.empty())
    throw_error("serve: -m {} together with named models: name it too (--model NAME={})", o.model_path, o.model_path);
  const char* env_model = std::getenv("TESSERA_MODEL");
  if (o.models.empty() && o.model_path.empty() && env_model) o.model_path = env_model;
  if (o.model_path.empty() && o.models.empty())
    throw_error("serve: no model (-m FILE, --model NAME=PATH, --config FILE or TESSERA_MODEL)\n{}", kUsage);
  o.default_model = args.get({"--default"}, o.default_model);
  if (auto lim = args.value({"--mem-limit"})) o.mem_limit = server::parse_size(*lim);
  o.host = args.get({"--host"}, o.host);
  o.port = static_cast<int>(args.get_int({"--port"}, o.port, 0, 65535));
  o.parallel = static_cast<int>(args.get_int({"-np", "--parallel"}, o.parallel, 1, 256));
  o.ctx_size = static_cast<int>(args.get_int({"-c", "--ctx-size"}, o.ctx_size, 64, kMaxTokens));
  o.kv_tokens = static_cast<int>(args.get_int({"--kv-tokens"}, 0, 0, kMaxTokens * 16));
  o.threads = args.get_threads({"-t", "--threads"}, o.threads);
  o.batch = static_cast<int>(args.get_int({"-b", "--batch-size"}, o.batch, 1, 65536));
  const char* env_key = std::getenv("TESSERA_API_KEY");
  o.api_key = args.get({"--api-key"}, env_key ? env_key : "");
  o.cors = split_commas(args.get({"--cors"}, ""));
  o.max_queue = static_cast<int>(args.get_int({"--queue"}, o.max_queue, 0, 1 << 20));
  o.timeout_s = static_cast<int>(args.get_int({"--timeout-s"}, o.timeout_s, 1, 86400 * 7));
  o.max_body = static_cast<size_t>(args.get_int({"--max-body"}, static_cast<int64_t>(o.max_body), 1024, int64_t{1} << 32));
  o.http_threads = static_cast<int>(args.get_int({"--http-threads"}, 0, 0, 4096));
  o.shutdown_s = static_cast<int>(args.get_int({"--shutdown-s"}, o.shutdown_s, 0, 3600));
  o.fim_max_prompt = static_cast<int>(args.get_int({"--fim-max-prompt"}, o.fim_max_prompt, 16, kMaxTokens));
  o.alias = args.get({"--alias"}, "");
  o.replica = args.get({"--replica-name"}, "");
  o.prefix_cache = !args.flag({"--no-prefix-cache"});
  o.load = load_options(args);
  args.finish();
  return server::serve(o);
}

}  // namespace tessera::cli
