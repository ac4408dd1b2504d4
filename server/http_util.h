// Small pieces every endpoint shares: API errors with their HTTP status, typed and range-checked
// reads of JSON request fields (a wrong type is the client's error, never ours), SSE framing, and a
// watch on the client's connection (to cancel work as soon as the client goes away).
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::server {

using json = nlohmann::ordered_json;

// An error the client gets as {"error": {"message", "type", "code"}} with this HTTP status.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error")
      : std::runtime_error(message), status(status), type(std::move(type)) {}
  int status;
  std::string type;
};

// The OpenAI error type for a status when none is given: 400 invalid_request_error,
// 401 authentication_error, 404 not_found_error, 503 unavailable_error, ...
std::string error_type_for(int status);
json error_body(int status, std::string_view message, std::string_view type = {});

// The request body as a JSON object; ApiError 400 for malformed JSON, invalid UTF-8 or a non-object.
json parse_body(std::string_view body);

// Typed field reads: absent or null -> the fallback; present with the wrong type or out of range ->
// ApiError 400 naming the field and what it must be.
class Fields {
 public:
  explicit Fields(const json& obj) : obj_(obj) {}
  bool has(const char* key) const;
  int64_t get_int(const char* key, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_num(const char* key, double fallback, double lo, double hi) const;
  bool get_bool(const char* key, bool fallback) const;
  std::string get_string(const char* key, const std::string& fallback = {}) const;
  // A string or an array of strings (OpenAI `stop`); at most max_items.
  std::vector<std::string> get_strings(const char* key, size_t max_items) const;
  const json* get_object(const char* key) const;  // null when absent; 400 when not an object
  const json* get_array(const char* key) const;   // null when absent; 400 when not an array
  const json& raw() const { return obj_; }

 private:
  const json* find(const char* key) const;
  const json& obj_;
};

// One server-sent event carrying JSON: "data: {...}\n\n" (invalid UTF-8 replaced, never thrown).
std::string sse_data(const json& j);
std::string dump(const json& j);  // compact, invalid UTF-8 replaced

// The TCP connection of the request being handled, found by the client's address and port, so
// that a handler waiting for the engine can tell that the client hung up (httplib 0.11 offers no
// such check). closed() is cheap (one poll, one peek).
class ConnectionWatch {
 public:
  ConnectionWatch(const std::string& remote_addr, int remote_port);
  bool closed() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string random_id(std::string_view prefix, size_t n = 24);  // prefix + n random [A-Za-z0-9]

}  // namespace tessera::server
