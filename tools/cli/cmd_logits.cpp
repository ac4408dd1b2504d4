// tessera logits -m MODEL --prompt TEXT [--feed ID,ID,...] --out FILE [--backend B] [-t N]:
// the verification contract. Tokenizes TEXT (special tokens parsed, BOS only if the model asks),
// evaluates it as one batch, writes one float32 row of n_vocab logits per prompt position, then feeds
// each --feed id one at a time and writes the row after each. Prints
// {"prompt_tokens": [...], "rows": R, "n_vocab": V}.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/context.h"
#include "core/error.h"
#include "engine/model/model.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/tool_util.h"

namespace tessera::cli {
namespace {

constexpr const char* kUsage =
    "usage: tessera logits -m MODEL --prompt TEXT [--feed ID,ID,...] --out FILE [--backend cpu|ref|vulkan] [--device N]\n"
    "                      [--kernel OPKEY=NAME] [-t N]\n"
    "\n"
    "Evaluates the prompt as one batch and writes float32 logits [rows][n_vocab] to FILE: one row per\n"
    "prompt position, then one row after each --feed token (fed one at a time).\n";

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string item = s.substr(i, j - i);
    if (!item.empty()) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != item.size() || v < 0 || v > INT32_MAX) throw_error("--feed: '{}' is not a token id", item);
      ids.push_back(static_cast<int32_t>(v));
    }
    i = j + 1;
  }
  return ids;
}

}  // namespace

int cmd_logits(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string model_path = args.require({"-m", "--model"});
  const std::string prompt = args.require({"-p", "--prompt"});
  const std::string out_path = args.require({"-o", "--out"});
  const std::vector<int32_t> feed = parse_ids(args.get({"--feed"}, ""));
  engine::LoadOptions lo = load_options(args);
  const int threads = args.get_threads({"-t", "--threads"}, 2);
  args.finish();

  lo.print_plan = false;
  auto model = engine::Model::load(model_path, lo);
  const std::vector<int32_t> ids = model->tokenizer().encode(prompt, true);
  if (ids.empty()) throw_error("the prompt has no tokens");
  for (int32_t id : feed)
    if (id >= model->config().n_vocab) throw_error("--feed: id {} is out of range (n_vocab {})", id, model->config().n_vocab);

  engine::ContextOptions co;
  co.n_ctx = static_cast<int>(ids.size() + feed.size());
  co.n_batch = static_cast<int>(ids.size());  // the whole prompt in one batch
  co.n_threads = threads;
  co.print_plan = false;
  engine::Context ctx(model, co);

  std::ofstream out(out_path, std::ios::binary);
  if (!out) throw_error("cannot write '{}'", out_path);
  auto write = [&](std::span<const float> rows) {
    out.write(reinterpret_cast<const char*>(rows.data()), static_cast<std::streamsize>(rows.size_bytes()));
  };
  write(ctx.eval(ids, true));
  for (int32_t id : feed) write(ctx.eval(std::span<const int32_t>(&id, 1)));
  out.close();
  if (!out) throw_error("error writing '{}'", out_path);

  nlohmann::ordered_json j;
  j["prompt_tokens"] = ids;
  j["rows"] = ids.size() + feed.size();
  j["n_vocab"] = model->config().n_vocab;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace tessera::cli
