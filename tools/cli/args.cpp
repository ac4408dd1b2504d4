// Implementation of the subcommand argument reader.
#include "tools/cli/args.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "core/error.h"

namespace tessera::cli {

Args::Args(int argc, char** argv) : command_(argc > 0 ? argv[0] : "") {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    // "--key=value" becomes two arguments.
    size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      args_.push_back(a.substr(0, eq));
      args_.push_back(a.substr(eq + 1));
    } else {
      args_.push_back(a);
    }
  }
  used_.assign(args_.size(), false);
}

static bool matches(std::string_view a, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (a == n) return true;
  return false;
}

bool Args::flag(std::initializer_list<std::string_view> names) {
  bool found = false;
  for (size_t i = 0; i < args_.size(); ++i)
    if (!used_[i] && matches(args_[i], names)) used_[i] = found = true;
  return found;
}

std::vector<std::string> Args::values(std::initializer_list<std::string_view> names) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i] || !matches(args_[i], names)) continue;
    if (i + 1 >= args_.size()) throw_error("{}: option {} needs a value", command_, args_[i]);
    used_[i] = used_[i + 1] = true;
    out.push_back(args_[i + 1]);
    ++i;
  }
  return out;
}

std::optional<std::string> Args::value(std::initializer_list<std::string_view> names) {
  auto v = values(names);
  if (v.empty()) return std::nullopt;
  return v.back();  // last one wins, as in most CLIs
}

std::string Args::get(std::initializer_list<std::string_view> names, std::string fallback) {
  auto v = value(names);
  return v ? *v : fallback;
}

int64_t Args::get_int(std::initializer_list<std::string_view> names, int64_t fallback, int64_t min, int64_t max) {
  auto v = value(names);
  if (!v) return fallback;
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec == std::errc::result_out_of_range && p == v->data() + v->size())
    throw_error("{}: {} is out of range [{}, {}]", *names.begin(), *v, min, max);
  if (ec != std::errc() || p != v->data() + v->size())
    throw_error("{}: option {} expects an integer, got '{}'", command_, *names.begin(), *v);
  if (out < min || out > max) throw_error("{}: {} is out of range [{}, {}]", *names.begin(), out, min, max);
  return out;
}

double Args::get_double(std::initializer_list<std::string_view> names, double fallback, double min, double max) {
  auto v = value(names);
  if (!v) return fallback;
  double d = 0;
  bool ok = false;
  try {
    size_t pos = 0;
    d = std::stod(*v, &pos);
    ok = pos == v->size();
  } catch (const std::out_of_range&) {
    throw_error("{}: {} is out of range [{}, {}]", *names.begin(), *v, min, max);
  } catch (const std::exception&) {
  }
  if (!ok) throw_error("{}: option {} expects a number, got '{}'", command_, *names.begin(), *v);
  if (!(d >= min && d <= max))  // NaN fails too
    throw_error("{}: {} is out of range [{}, {}]", *names.begin(), *v, min, max);
  return d;
}

uint64_t Args::get_u64(std::initializer_list<std::string_view> names, uint64_t fallback) {
  auto v = value(names);
  if (!v) return fallback;
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);  // no sign: "-1" is refused
  if (ec != std::errc() || p != v->data() + v->size())
    throw_error("{}: option {} expects an integer in [0, {}], got '{}'", command_, *names.begin(), UINT64_MAX, *v);
  return out;
}

int max_threads() { return 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

std::string threads_hint() {
  return fmt::format("at most 4x the {} hardware threads", std::max(1u, std::thread::hardware_concurrency()));
}

int Args::get_threads(std::initializer_list<std::string_view> names, int fallback) {
  try {
    return static_cast<int>(get_int(names, fallback, 1, max_threads()));
  } catch (const Error& e) {
    throw_error("{} ({})", e.what(), threads_hint());
  }
}

std::string Args::require(std::initializer_list<std::string_view> names) {
  auto v = value(names);
  if (!v) throw_error("{}: missing required option {}", command_, *names.begin());
  return *v;
}

std::vector<std::string> Args::positionals() {
  std::vector<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i)
    if (!used_[i] && (args_[i].empty() || args_[i][0] != '-' || args_[i] == "-")) {
      used_[i] = true;
      out.push_back(args_[i]);
    }
  return out;
}

void Args::finish() const {
  for (size_t i = 0; i < args_.size(); ++i)
    if (!used_[i]) throw_error("{}: unknown argument '{}' (see 'tessera {} --help')", command_, args_[i], command_);
}

}  // namespace tessera::cli
