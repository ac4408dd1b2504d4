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

class Args {
 public:
  // argv[0] is the subcommand name; the rest are its arguments.
  Args(int argc, char** argv);

  // Each lookup consumes what it finds. names: e.g. {"-m", "--model"}.
  bool flag(std::initializer_list<std::string_view> names);
  std::optional<std::string> value(std::initializer_list<std::string_view> names);
  std::vector<std::string> values(std::initializer_list<std::string_view> names);  // repeatable
  std::string get(std::initializer_list<std::string_view> names, std::string fallback);
  int64_t get_int(std::initializer_list<std::string_view> names, int64_t fallback);
  double get_double(std::initializer_list<std::string_view> names, double fallback);
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
