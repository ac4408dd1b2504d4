// The `tessera` binary: dispatches to subcommands and turns errors into one clear line + exit code.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "core/error.h"
#include "tools/cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* help;
};

constexpr Command kCommands[] = {
    {"serve", tessera::cli::cmd_serve, "HTTP server (Tabby, OpenAI and llama.cpp endpoints)"},
    {"run", tessera::cli::cmd_run, "generate text from a prompt"},
    {"logits", tessera::cli::cmd_logits, "write the logits of a prompt (verification)"},
    {"tokenize", tessera::cli::cmd_tokenize, "tokenize text with a model's tokenizer"},
    {"bench", tessera::cli::cmd_bench, "llama-bench compatible benchmark"},
    {"gguf", tessera::cli::cmd_gguf, "inspect GGUF files"},
    {"quantize", tessera::cli::cmd_quantize, "quantize a GGUF model"},
    {"mkmodel", tessera::cli::cmd_mkmodel, "make a random-weight model"},
    {"kernels", tessera::cli::cmd_kernels, "list the kernel registry"},
    {"devices", tessera::cli::cmd_devices, "list the Vulkan devices (--device N)"},
};

void usage() {
  std::fprintf(stderr, "usage: tessera <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(stderr, "  %-10s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (std::string_view(argv[1]) != c.name) continue;
    try {
      return c.fn(argc - 1, argv + 1);
    } catch (const tessera::Error& e) {
      std::fprintf(stderr, "tessera %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tessera %s: internal error: %s\n", c.name, e.what());
      return 3;
    }
  }
  std::fprintf(stderr, "tessera: unknown command '%s'\n", argv[1]);
  usage();
  return 2;
}
