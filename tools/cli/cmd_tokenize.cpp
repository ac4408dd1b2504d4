// tessera tokenize -m MODEL.gguf (--text T | --file F) [--no-special] [--json] [--detok]:
// prints the token ids of a text with the model's tokenizer.
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/tool_util.h"

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

// A piece as a quoted string; bytes that are not whole UTF-8 characters are shown as \xNN.
std::string quote_piece(const std::string& piece) {
  std::string out = "\"";
  size_t i = 0;
  while (i < piece.size()) {
    const auto c = static_cast<unsigned char>(piece[i]);
    const int len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
    bool whole = len > 0 && i + static_cast<size_t>(len) <= piece.size();
    for (int k = 1; whole && k < len; ++k) whole = (static_cast<unsigned char>(piece[i + k]) & 0xC0) == 0x80;
    if (!whole) {
      out += fmt::format("\\x{:02X}", c);
      ++i;
    } else if (len == 1) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        default: out += c < 0x20 || c == 0x7F ? fmt::format("\\x{:02X}", c) : std::string(1, static_cast<char>(c));
      }
      ++i;
    } else {
      out.append(piece, i, static_cast<size_t>(len));
      i += static_cast<size_t>(len);
    }
  }
  return out + "\"";
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
  if (text_arg.has_value() == file_arg.has_value())
    throw_error("give exactly one of --text or --file (see 'tessera tokenize --help')");
  const std::string text = text_arg ? *text_arg : read_file(*file_arg);

  const auto file = gguf::File::open(model);
  const auto tok = tok::Tokenizer::from_gguf(file);
  const auto ids = tok.encode(text, !no_special);

  if (as_json) {
    nlohmann::ordered_json out;
    out["ids"] = ids;
    if (detok) out["detok"] = tok.decode(ids);
    // Pieces may end inside a UTF-8 character; replace invalid bytes rather than fail.
    std::fputs(out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str(), stdout);
    std::fputc('\n', stdout);
  } else if (detok) {
    for (const int32_t id : ids) fmt::print("{}\t{}\n", id, quote_piece(tok.token_to_piece(id)));
    fmt::print("detok: {}\n", tok.decode(ids));
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    fmt::print("{}\n", line);
  }
  return 0;
}

}  // namespace tessera::cli
