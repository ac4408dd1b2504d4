// A small command-line reader for the `tessera` subcommands (llama.cpp-style flags such as -pg,
// repeatable -m, "--key value" and "--key=value"). Unknown flags are an error, not ignored.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::cli {

// The most tokens a size flag (-c, -b, -p, -n, --depth ...) accepts: 4M, above any model's context.
constexpr int64_t kMaxTokens = int64_t{1} << 22;

// The most threads a command accepts: 4x the hardware threads (more only adds contention; a typo
// such as -t 1000000 would otherwise start a million threads).
int max_threads();
std::string threads_hint();  // "at most 4x the N hardware threads", for messages

class Args {
 public:
  // argv[0] is the subcommand name; the rest are its arguments.
  Args(int argc, char** argv);

  // Each lookup consumes what it finds. names: e.g. {"-m", "--model"}.
  bool flag(std::initializer_list<std::string_view> names);
  std::optional<std::string> value(std::initializer_list<std::string_view> names);
  std::vector<std::string> values(std::initializer_list<std::string_view> names);  // repeatable
  std::string get(std::initializer_list<std::string_view> names, std::string fallback);
  // Numbers must parse whole and lie in [min, max] (never truncated; NaN is refused), else
  // tessera::Error such as "-c: 4294967360 is out of range [1, 4194304]". The fallback is not checked.
  int64_t get_int(std::initializer_list<std::string_view> names, int64_t fallback, int64_t min, int64_t max);
  double get_double(std::initializer_list<std::string_view> names, double fallback, double min, double max);
  uint64_t get_u64(std::initializer_list<std::string_view> names, uint64_t fallback);  // e.g. --seed
  // -t / --threads: in [1, max_threads()].
  int get_threads(std::initializer_list<std::string_view> names, int fallback);
  std::string require(std::initializer_list<std::string_view> names);  // throws if absent

  // The arguments not consumed so far that do not start with '-'; consumes them.
  std::vector<std::string> positionals();
  // Throws tessera::Error naming the first argument nobody consumed.
  void finish() const;

 private:
  std::string command_;
  std::vector<std::string> args_;
  std::vector<bool> used_;
};

}  // namespace tessera::cli
