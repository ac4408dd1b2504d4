// tessera tokenize -m MODEL.gguf (--text T | --file F) [--no-special] [--json] [--detok]:
// prints the token ids of a text with the model's tokenizer.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
namespace {

constexpr const char* kUsage =
    "usage: tessera tokenize -m MODEL.gguf (--text T | --file F) [--no-special] [--json] [--detok]\n"
    "\n"
    "Tokenizes a text with the model's tokenizer (no BOS unless the model asks for one).\n"
    "  --no-special  CONTROL tokens such as <|im_start|> are plain text (USER_DEFINED ones such as\n"
    "                <think> are still matched)\n"
    "  --json        print {\"ids\": [...]} (with --detok also \"detok\": the decoded text)\n"
    "  --detok       also print the decoded text; without --json one 'id<TAB>piece' line per token\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("cannot open '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string model = args.require({"-m", "--model"});
  const auto text_arg = args.value({"-t", "--text", "-p", "--prompt"});
  const auto file_arg = args.value({"-f", "--file"});
  const bool no_special = args.flag({"--no-special"});
  const bool as_json = args.flag({"--json"});
  const bool detok = args.flag({"--detok"});
  args.finish();
  if (text_arg.has_value() == file_arg.has_value()) throw_error("tokenize: give exactly one of --text or --file\n{}", kUsage);
  const std::string text = text_arg ? *text_arg : read_file(*file_arg);

  const auto file = gguf::File::open(model);
  const auto tok = tok::Tokenizer::from_gguf(file);
  const auto ids = tok.encode(text, !no_special);

  if (as_json) {
    nlohmann::json out;
    out["ids"] = ids;
    if (detok) out["detok"] = tok.decode(ids);
    // Pieces may end inside a UTF-8 character; replace invalid bytes rather than fail.
    std::fputs(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(), stdout);
    std::fputc('\n', stdout);
  } else if (detok) {
    for (const int32_t id : ids) {
      const nlohmann::json piece = tok.token_to_piece(id);
      fmt::print("{}\t{}\n", id, piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    fmt::print("detok: {}\n", tok.decode(ids));
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    fmt::print("{}\n", line);
  }
  return 0;
}

}  // namespace tessera::cli
