// Shared endpoint pieces: errors, typed JSON fields, SSE, connection watch (see http_util.h).
#include "server/http_util.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include <fmt/format.h>

namespace tessera::server {

std::string error_type_for(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "invalid_request_error";
    case 429: case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

json error_body(int status, std::string_view message, std::string_view type) {
  json e;
  e["message"] = std::string(message);
  e["type"] = type.empty() ? error_type_for(status) : std::string(type);
  e["code"] = status;
  return json{{"error", e}};
}

json parse_body(std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    // nlohmann's message names the byte offset and what it expected; it is safe to echo.
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

const json* Fields::find(const char* key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Fields::has(const char* key) const { return find(key) != nullptr; }

int64_t Fields::get_int(const char* key, int64_t fallback, int64_t lo, int64_t hi) const {
  const json* v = find(key);
  if (!v) return fallback;
  int64_t x = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) x = INT64_MAX;
    else x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) &&
             v->get<double>() == std::floor(v->get<double>()) && std::fabs(v->get<double>()) < 9e18) {
    x = static_cast<int64_t>(v->get<double>());  // 64.0 is an integer too
  } else {
    throw ApiError(400, fmt::format("'{}' must be an integer", key));
  }
  if (x < lo || x > hi) throw ApiError(400, fmt::format("'{}' must be between {} and {} (got {})", key, lo, hi, x));
  return x;
}

double Fields::get_num(const char* key, double fallback, double lo, double hi) const {
  const json* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) throw ApiError(400, fmt::format("'{}' must be a number", key));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) throw ApiError(400, fmt::format("'{}' must be between {} and {} (got {})", key, lo, hi, x));
  return x;
}

bool Fields::get_bool(const char* key, bool fallback) const {
  const json* v = find(key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw ApiError(400, fmt::format("'{}' must be true or false", key));
  return v->get<bool>();
}

std::string Fields::get_string(const char* key, const std::string& fallback) const {
  const json* v = find(key);
  if (!v) return fallback;
  if (!v->is_string()) throw ApiError(400, fmt::format("'{}' must be a string", key));
  return v->get<std::string>();
}

std::vector<std::string> Fields::get_strings(const char* key, size_t max_items) const {
  const json* v = find(key);
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) throw ApiError(400, fmt::format("'{}' must be a string or an array of strings", key));
      out.push_back(s.get<std::string>());
    }
  } else {
    throw ApiError(400, fmt::format("'{}' must be a string or an array of strings", key));
  }
  if (out.size() > max_items) throw ApiError(400, fmt::format("'{}' has more than {} entries", key, max_items));
  return out;
}

const json* Fields::get_object(const char* key) const {
  const json* v = find(key);
  if (v && !v->is_object()) throw ApiError(400, fmt::format("'{}' must be an object", key));
  return v;
}

const json* Fields::get_array(const char* key) const {
  const json* v = find(key);
  if (v && !v->is_array()) throw ApiError(400, fmt::format("'{}' must be an array", key));
  return v;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_data(const json& j) { return "data: " + dump(j) + "\n\n"; }

namespace {

std::string numeric_host(const sockaddr_storage& ss, socklen_t len, int* port) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return {};
  *port = std::atoi(serv);
  return host;
}

}  // namespace

ConnectionWatch::ConnectionWatch(const std::string& remote_addr, int remote_port) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
    int port = -1;
    if (numeric_host(ss, len, &port) == remote_addr && port == remote_port) {
      fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(d);
}

bool ConnectionWatch::closed() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
  char c;
  // Readable: either the next pipelined request (alive) or end of stream (closed).
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

std::string random_id(std::string_view prefix, size_t n) {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s(prefix);
  for (size_t i = 0; i < n; ++i) s += kAlnum[rng() % (sizeof kAlnum - 1)];
  return s;
}

}  // namespace tessera::server
