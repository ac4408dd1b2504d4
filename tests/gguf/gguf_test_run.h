// Runs a shell command for the GGUF tests and captures its stdout (stderr goes to the test log).
#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace tessera::gguf::testing {

struct CommandResult {
  int status = -1;  // exit status (as from pclose)
  std::string out;
};

inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  r.status = pclose(p);
  return r;
}

inline std::string quote_arg(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The Python gguf package's view of a file (tests/gguf/gguf_py_dump.py), parsed.
inline nlohmann::json python_view(const std::string& path, bool with_crc) {
  std::string cmd = quote_arg(TESSERA_PYTHON) + " " + quote_arg(std::string(TESSERA_SOURCE_DIR) + "/tests/gguf/gguf_py_dump.py") +
                    " " + quote_arg(path) + (with_crc ? " --crc" : "");
  CommandResult r = run_command(cmd);
  if (r.status != 0) return nlohmann::json();
  return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

// `tessera gguf inspect --json` of a file, parsed.
inline nlohmann::json inspect_json(const std::string& path, bool full) {
  CommandResult r = run_command(quote_arg(TESSERA_BINARY) + " gguf inspect " + quote_arg(path) + " --json" + (full ? " --full" : ""));
  if (r.status != 0) return nlohmann::json();
  return nlohmann::json::parse(r.out, nullptr, false);
}

}  // namespace tessera::gguf::testing
