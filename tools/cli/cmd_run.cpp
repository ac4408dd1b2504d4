// tessera run -m MODEL -p PROMPT [-n N] [sampling options] [-t N] [-c CTX]: generates text, streams
// it to stdout, and ends with prompt and generation speed on stderr.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/context.h"
#include "core/error.h"
#include "engine/generate.h"
#include "engine/model/model.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/tool_util.h"

namespace tessera::cli {
namespace {

constexpr const char* kUsage =
    "usage: tessera run -m MODEL (-p PROMPT | -f FILE | --random-prompt N) [options]\n"
    "\n"
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
    "  -c, --ctx-size N       KV capacity in tokens (default 4096; at most 4194304)\n"
    "  -b, --batch-size N     prompt tokens per forward pass (default 512)\n"
    "  --random-prompt N      N random token ids as the prompt (speed measurements)\n"
    "  --depth D              evaluate D random tokens before the prompt (untimed context depth)\n";
// (and kBackendUsage: --backend, --kernel)

std::vector<int32_t> random_tokens(int n, int32_t n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, std::min<int32_t>(n_vocab, 100000) - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = dist(rng);
  return ids;
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
