// Helpers for the tools tests: run the `tessera` binary (or Python) and capture its output, temp dirs.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

namespace tessera::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout (and stderr when merged)
};

// Runs a shell command; stderr goes to stdout when merge_stderr, else to /dev/null.
inline RunResult run_command(const std::string& cmd, bool merge_stderr = false) {
  RunResult r;
  const std::string full = cmd + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(full.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string tessera_cmd(const std::string& args) { return std::string("'") + TESSERA_BINARY + "' " + args; }

inline std::string golden(const std::string& rel) { return std::string(TESSERA_GOLDEN_DIR) + "/" + rel; }

// A fresh directory under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("tessera-tools-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace tessera::test
