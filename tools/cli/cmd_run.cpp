// tessera run -m MODEL -p PROMPT [-n N] [sampling options] [-t N] [-c CTX]: generates text, streams
// it to stdout, and ends with prompt and generation speed on stderr. With --prompts FILE
// [--parallel N] it runs every prompt of the file through the scheduler (N sequences at once).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/context.h"
#include "core/error.h"
#include "engine/generate.h"
#include "engine/model/model.h"
#include "engine/sched/scheduler.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/tool_util.h"

namespace tessera::cli {
namespace {

constexpr const char* kUsage =
    "usage: tessera run -m MODEL (-p PROMPT | -f FILE | --random-prompt N) [options]\n"
    "       tessera run -m MODEL --prompts FILE [--parallel N] [options]\n"
    "\n"
    "  --prompts FILE         one prompt per line (or JSONL lines {\"prompt\": ...}), all run through the\n"
    "                         scheduler; outputs are printed with their index, throughput at the end\n"
    "  --parallel N           sequences decoded together with --prompts (default 4)\n"
    "  --kv-tokens N          KV cache tokens shared by the sequences (default: ctx-size x parallel)\n"
    "  --no-prefix-cache      do not reuse KV blocks of earlier prompts with the same prefix\n"
    "  -n, --n-predict N      tokens to generate (default 128; -1: until end or context full)\n"
    "  --temp T               temperature (default 0.8; 0: greedy)\n"
    "  --top-k K              (default 40; 0: off)\n"
    "  --top-p P              in [0, 1] (default 0.95; 1: off)\n"
    "  --min-p P              in [0, 1] (default 0.05; 0: off)\n"
    "  --repeat-penalty R     > 0 (default 1.0: off)\n"
    "  --presence-penalty P   >= 0 (default 0)\n"
    "  --frequency-penalty F  >= 0 (default 0)\n"
    "  --repeat-last-n N      penalty window (default 64; 0: off; -1: all)\n"
    "  --seed S               random seed (default: random)\n"
    "  --stop S               stop string (repeatable)\n"
    "  --ignore-eos           do not stop at end-of-generation tokens\n"
    "  --no-special           special tokens in the prompt are plain text\n"
    "  -t, --threads N        (default 2; at most 4x the hardware threads)\n"
    "  -c, --ctx-size N       KV capacity in tokens (default 4096; at most 4194304); per sequence with --prompts\n"
    "  -b, --batch-size N     tokens per forward pass (default 512; with --prompts: decode + prefill per step)\n"
    "  --random-prompt N      N random token ids as the prompt (speed measurements)\n"
    "  --depth D              evaluate D random tokens before the prompt (untimed context depth)\n";
// (and kBackendUsage: --backend, --kernel)

std::vector<int32_t> random_tokens(int n, int32_t n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, std::min<int32_t>(n_vocab, 100000) - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = dist(rng);
  return ids;
}


// The prompts of a --prompts file: one per non-empty line, or a JSON object {"prompt": "..."} per line.
std::vector<std::string> read_prompts(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> prompts;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line.front() == '{') {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw_error("{}:{}: not valid JSON: {}", path, line_no, e.what());
      }
      if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
        throw_error("{}:{}: a JSON line needs a string \"prompt\"", path, line_no);
      prompts.push_back(j["prompt"].get<std::string>());
    } else {
      prompts.push_back(line);
    }
  }
  if (prompts.empty()) throw_error("{}: no prompts", path);
  return prompts;
}

// Prints text with every line prefixed by "[index] ".
void print_prefixed(int index, const std::string& text) {
  std::string out = "[" + std::to_string(index) + "] ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "[" + std::to_string(index) + "] ";
  }
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

// --prompts: every prompt through the scheduler; outputs as they finish, throughput at the end.
int run_parallel(const std::shared_ptr<engine::Model>& model, const std::vector<std::string>& texts,
                 const engine::GenerateParams& gp, engine::ContextOptions co, bool no_special) {
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < texts.size(); ++i) {
    prompts.push_back(model->tokenizer().encode(texts[i], !no_special));
    if (prompts.back().empty()) throw_error("prompt {} has no tokens", i);
  }
  engine::Context ctx(model, co);
  engine::Scheduler sched(ctx);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> ids;
  for (auto& p : prompts) ids.push_back(sched.submit(std::move(p), gp));
  std::vector<bool> printed(ids.size(), false);
  int64_t n_steps = 0, n_preempted = 0;
  while (!sched.idle()) {
    engine::StepStats st;
    if (!sched.step(&st)) break;
    ++n_steps;
    n_preempted += st.n_preempted;
    if (st.n_finished == 0) continue;
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto req = sched.request(ids[i]);
      if (printed[i] || !req->done()) continue;
      printed[i] = true;
      const auto& r = req->result();
      print_prefixed(static_cast<int>(i), r.finish == engine::FinishReason::Error ? "error: " + r.error : r.text);
    }
  }
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::fprintf(stderr, "tessera: %-5s %7s %7s %7s %9s %11s %11s %6s %s\n", "req", "prompt", "cached", "gen", "ttft_ms",
               "prompt_t/s", "gen_t/s", "preempt", "finish");
  int64_t sum_prompt = 0, sum_cached = 0, sum_gen = 0;
  std::vector<double> ttft;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& r = sched.request(ids[i])->result();
    const int n_decoded = std::max(0, r.n_generated - 1);
    std::fprintf(stderr, "tessera: %-5zu %7d %7d %7d %9.1f %11.2f %11.2f %6d %s\n", i, r.n_prompt, r.n_prompt_cached,
                 r.n_generated, r.ttft_ms, r.n_prompt * 1000.0 / std::max(r.prompt_ms, 1e-9),
                 n_decoded * 1000.0 / std::max(r.gen_ms, 1e-9), r.n_preempted, engine::finish_reason_name(r.finish));
    sum_prompt += r.n_prompt;
    sum_cached += r.n_prompt_cached;
    sum_gen += r.n_generated;
    if (r.n_generated > 0) ttft.push_back(r.ttft_ms);
  }
  std::sort(ttft.begin(), ttft.end());
  double ttft_mean = 0;
  for (double t : ttft) ttft_mean += t / static_cast<double>(ttft.size());
  std::fprintf(stderr,
               "tessera: total: %zu requests, %d in parallel, %lld steps, %.1f s; prompt %lld tokens (%lld from the "
               "cache) %.2f tok/s; generated %lld tokens %.2f tok/s; TTFT mean %.1f ms, median %.1f ms, max %.1f ms; "
               "%lld preemptions\n",
               ids.size(), co.n_seq_max, static_cast<long long>(n_steps), wall_ms / 1000.0,
               static_cast<long long>(sum_prompt), static_cast<long long>(sum_cached),
               (sum_prompt - sum_cached) * 1000.0 / std::max(wall_ms, 1e-9), static_cast<long long>(sum_gen),
               sum_gen * 1000.0 / std::max(wall_ms, 1e-9), ttft_mean, ttft.empty() ? 0.0 : ttft[ttft.size() / 2],
               ttft.empty() ? 0.0 : ttft.back(), static_cast<long long>(n_preempted));
  return 0;
}

}  // namespace

int cmd_run(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    std::fputs(kUsage, stdout);
    std::fputs(kBackendUsage, stdout);
    return 0;
  }
  const std::string model_path = args.require({"-m", "--model"});
  const auto prompt_arg = args.value({"-p", "--prompt"});
  const auto file_arg = args.value({"-f", "--file"});
  const auto prompts_arg = args.value({"--prompts"});
  const int parallel = static_cast<int>(args.get_int({"--parallel"}, 0, 1, 1024));  // 0: not given
  const int kv_tokens = static_cast<int>(args.get_int({"--kv-tokens"}, 0, 1, kMaxTokens));
  const bool no_prefix_cache = args.flag({"--no-prefix-cache"});
  const int random_prompt = static_cast<int>(args.get_int({"--random-prompt"}, 0, 0, kMaxTokens));
  const int depth = static_cast<int>(args.get_int({"--depth"}, 0, 0, kMaxTokens));
  engine::GenerateParams gp;
  gp.max_tokens = static_cast<int>(args.get_int({"-n", "--n-predict"}, 128, -1, INT32_MAX));
  engine::SamplerParams& sp = gp.sampler;
  constexpr double kBig = 1e6;  // finite upper bound for values without a natural one
  sp.temperature = static_cast<float>(args.get_double({"--temp", "--temperature"}, sp.temperature, 0, kBig));
  sp.top_k = static_cast<int>(args.get_int({"--top-k"}, sp.top_k, 0, INT32_MAX));
  sp.top_p = static_cast<float>(args.get_double({"--top-p"}, sp.top_p, 0, 1));
  sp.min_p = static_cast<float>(args.get_double({"--min-p"}, sp.min_p, 0, 1));
  sp.repeat_penalty = static_cast<float>(args.get_double({"--repeat-penalty"}, sp.repeat_penalty, 0, kBig));
  if (sp.repeat_penalty == 0.0f) throw_error("--repeat-penalty: 0 must be > 0 (1: off; logits are divided by it)");
  sp.presence_penalty = static_cast<float>(args.get_double({"--presence-penalty"}, sp.presence_penalty, 0, kBig));
  sp.frequency_penalty = static_cast<float>(args.get_double({"--frequency-penalty"}, sp.frequency_penalty, 0, kBig));
  sp.penalty_last_n = static_cast<int>(args.get_int({"--repeat-last-n"}, sp.penalty_last_n, -1, INT32_MAX));
  sp.seed = args.get_u64({"--seed"}, sp.seed);
  gp.stop = args.values({"--stop"});
  gp.stop_at_eog = !args.flag({"--ignore-eos"});
  const bool no_special = args.flag({"--no-special"});
  const engine::LoadOptions lo = load_options(args);
  engine::ContextOptions co;
  co.n_threads = args.get_threads({"-t", "--threads"}, 2);
  co.n_ctx = static_cast<int>(args.get_int({"-c", "--ctx-size"}, 4096, 1, kMaxTokens));
  co.n_batch = static_cast<int>(args.get_int({"-b", "--batch-size"}, 512, 1, kMaxTokens));
  args.finish();
  if (prompts_arg) {
    if (prompt_arg || file_arg || random_prompt > 0 || depth > 0)
      throw_error("run: --prompts does not combine with -p, -f, --random-prompt or --depth");
    const std::vector<std::string> texts = read_prompts(*prompts_arg);
    co.n_seq_max = parallel > 0 ? parallel : 4;
    co.kv_tokens = kv_tokens;
    co.prefix_cache = !no_prefix_cache;
    return run_parallel(engine::Model::load(model_path, lo), texts, gp, co, no_special);
  }
  if (parallel > 0 || kv_tokens > 0 || no_prefix_cache)
    throw_error("run: --parallel, --kv-tokens and --no-prefix-cache go with --prompts");
  if ((prompt_arg ? 1 : 0) + (file_arg ? 1 : 0) + (random_prompt > 0 ? 1 : 0) != 1)
    throw_error("run: give exactly one of -p, -f or --random-prompt\n{}", kUsage);

  auto model = engine::Model::load(model_path, lo);
  std::mt19937 rng(1234);
  std::vector<int32_t> prompt;
  if (random_prompt > 0) {
    prompt = random_tokens(random_prompt, static_cast<int32_t>(model->config().n_vocab), rng);
  } else {
    prompt = model->tokenizer().encode(prompt_arg ? *prompt_arg : read_file(*file_arg), !no_special);
    if (prompt.empty()) throw_error("the prompt has no tokens");
  }
  engine::Context ctx(model, co);
  if (depth > 0) {
    const auto t0 = std::chrono::steady_clock::now();
    ctx.eval(random_tokens(depth, static_cast<int32_t>(model->config().n_vocab), rng));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "tessera: depth: %d tokens in %.0f ms (%.2f tok/s)\n", depth, ms, depth * 1000.0 / ms);
  }

  const bool echo = random_prompt == 0;
  auto result = engine::generate(ctx, prompt, gp, [&](std::string_view text, int32_t) {
    if (echo && !text.empty()) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (echo) std::printf("\n");
  std::fflush(stdout);
  // All n_generated tokens are counted; the speed is over the n - 1 forward passes after the first
  // token, which is sampled from the prompt's logits (its cost is in the prompt time).
  const int n_decoded = std::max(0, result.n_generated - 1);
  std::fprintf(stderr,
               "tessera: prompt: %d tokens in %.1f ms (%.2f tok/s); generation: %d tokens, %d decoded after the first "
               "in %.1f ms (%.2f tok/s); finish: %s\n",
               result.n_prompt, result.prompt_ms, result.n_prompt * 1000.0 / std::max(result.prompt_ms, 1e-9),
               result.n_generated, n_decoded, result.gen_ms, n_decoded * 1000.0 / std::max(result.gen_ms, 1e-9),
               engine::finish_reason_name(result.finish));
  return 0;
}

}  // namespace tessera::cli
