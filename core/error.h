// Error type used across Tessera: one clear message, thrown, caught at the CLI / HTTP boundary.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace tessera {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// throw_error("bad {} at {}", x, y): formats and throws tessera::Error.
template <typename... Args>
[[noreturn]] void throw_error(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tessera
