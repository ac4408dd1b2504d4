// Tool-call extraction from streamed generations (see tool_calls.h).
#include "server/tool_calls.h"

#include <algorithm>
#include <random>

#include "tokenizer/unicode.h"

namespace tessera::server {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kFunction = "<function=";
constexpr std::string_view kFunctionEnd = "</function>";
constexpr std::string_view kParameter = "<parameter=";
constexpr std::string_view kParameterEnd = "</parameter>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

std::string_view trim(std::string_view s) {
  const size_t b = skip_space(s, 0);
  size_t e = s.size();
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Length of the longest suffix of s that is a proper prefix of tag: text that may still become tag.
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

// A name the HTTP layer can put in JSON and a client can match: valid UTF-8, no spaces or controls.
bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  while (i < s.size()) {
    bool irregular = false;
    const uint32_t cp = tok::next_code_point(s, i, &irregular);
    if (irregular || cp <= 0x20 || cp == 0x7F || cp == '<' || cp == '>') return false;
  }
  return true;
}

std::string dump_compact(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string new_call_id() {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = "call_";
  for (int k = 0; k < 24; ++k) id += kAlnum[rng() % (sizeof(kAlnum) - 1)];
  return id;
}

// The JSON-schema "type" of one parameter of one tool in an OpenAI tools array; null when unknown.
ojson param_type(const ojson& tools, const std::string& tool, const std::string& param) {
  if (!tools.is_array()) return nullptr;
  for (const auto& t : tools) {
    if (!t.is_object()) continue;
    const ojson& fn = t.contains("function") && t["function"].is_object() ? t["function"] : t;
    if (!fn.contains("name") || fn["name"] != tool) continue;
    const auto params = fn.value("parameters", ojson::object());
    if (!params.is_object() || !params.contains("properties") || !params["properties"].is_object()) return nullptr;
    const auto& props = params["properties"];
    if (!props.contains(param) || !props[param].is_object()) return nullptr;
    return props[param].value("type", ojson());
  }
  return nullptr;
}

}  // namespace

ToolCallParser::ToolCallParser(const nlohmann::ordered_json& tools) : tools_(tools) {}

ToolParseOutput ToolCallParser::feed(std::string_view text) {
  ToolParseOutput out;
  buf_.append(text);
  process(out, false);
  return out;
}

ToolParseOutput ToolCallParser::finish() {
  ToolParseOutput out;
  process(out, true);
  return out;
}

void ToolCallParser::process(ToolParseOutput& out, bool final) {
  for (;;) {
    if (inside_) {
      const size_t end = buf_.find(kClose, scanned_);
      if (end == std::string::npos) {
        if (final) {  // cut off: the text was not a tool call after all
          out.content += kOpen;
          out.content += buf_;
          buf_.clear();
          inside_ = false;
        } else {
          scanned_ = buf_.size() >= kClose.size() ? buf_.size() - kClose.size() + 1 : 0;
        }
        return;
      }
      const std::string_view body = std::string_view(buf_).substr(0, end);
      ToolCall call;
      if (parse_call(body, call)) {
        out.calls.push_back(std::move(call));
        saw_tool_call_ = after_call_ = true;
      } else {
        out.content.append(kOpen).append(body).append(kClose);
      }
      buf_.erase(0, end + kClose.size());
      inside_ = false;
      scanned_ = 0;
      continue;
    }
    if (after_call_) {
      const size_t text = skip_space(buf_, 0);
      if (text == buf_.size()) {  // only whitespace so far
        if (final) buf_.clear();  // trailing whitespace after the last call is not content
        return;
      }
      const std::string_view rest = std::string_view(buf_).substr(text);
      if (rest.starts_with(kOpen)) {  // whitespace between two calls: a separator
        buf_.erase(0, text + kOpen.size());
        inside_ = true;
        after_call_ = false;
        continue;
      }
      if (!final && kOpen.starts_with(rest)) return;  // may still be the next call
      after_call_ = false;  // real text follows the call: its leading whitespace is content too
    }
    const size_t open = buf_.find(kOpen);
    if (open != std::string::npos) {
      out.content.append(buf_, 0, open);
      buf_.erase(0, open + kOpen.size());
      inside_ = true;
      continue;
    }
    const size_t keep = final ? 0 : partial_tag_suffix(buf_, kOpen);
    out.content.append(buf_, 0, buf_.size() - keep);
    buf_.erase(0, buf_.size() - keep);
    return;
  }
}

bool ToolCallParser::parse_call(std::string_view body, ToolCall& call) const {
  const std::string_view t = trim(body);
  const bool ok = t.starts_with(kFunction) ? parse_xml(t, call) : t.starts_with("{") && parse_json(t, call);
  if (ok) call.id = new_call_id();
  return ok;
}

// <function=NAME>
// <parameter=K>
// V (raw text, any lines; one newline on each side belongs to the markup)
// </parameter>
// </function>
bool ToolCallParser::parse_xml(std::string_view s, ToolCall& call) const {
  size_t i = kFunction.size();
  const size_t name_end = s.find('>', i);
  if (name_end == std::string_view::npos) return false;
  call.name = std::string(trim(s.substr(i, name_end - i)));
  if (!valid_name(call.name)) return false;
  i = name_end + 1;
  ojson args = ojson::object();
  for (;;) {
    i = skip_space(s, i);
    const std::string_view rest = s.substr(i);
    if (rest.starts_with(kFunctionEnd)) {
      if (skip_space(s, i + kFunctionEnd.size()) != s.size()) return false;  // text after </function>
      break;
    }
    if (!rest.starts_with(kParameter)) return false;
    const size_t key_begin = i + kParameter.size();
    const size_t key_end = s.find('>', key_begin);
    if (key_end == std::string_view::npos) return false;
    const std::string key(trim(s.substr(key_begin, key_end - key_begin)));
    if (!valid_name(key)) return false;
    // The value ends at the first "</parameter>" followed by the next parameter or </function>, so a
    // value may itself mention "</parameter>" (code that writes such markup).
    const size_t value_begin = key_end + 1;
    size_t value_end = value_begin;
    for (;;) {
      value_end = s.find(kParameterEnd, value_end);
      if (value_end == std::string_view::npos) return false;
      const std::string_view next = s.substr(skip_space(s, value_end + kParameterEnd.size()));
      if (next.starts_with(kParameter) || next.starts_with(kFunctionEnd)) break;
      ++value_end;
    }
    std::string_view value = s.substr(value_begin, value_end - value_begin);
    if (value.starts_with('\n')) value.remove_prefix(1);
    if (value.ends_with('\n')) value.remove_suffix(1);
    args[key] = xml_value(call.name, key, std::string(value));
    i = value_end + kParameterEnd.size();
  }
  call.arguments = dump_compact(args);
  return true;
}

// XML values are raw text; the tool's schema says whether the text is a string or JSON.
ojson ToolCallParser::xml_value(const std::string& tool, const std::string& param, std::string text) const {
  const ojson type = param_type(tools_, tool, param);
  if (type == "string") return text;
  if (type.is_array() && std::find(type.begin(), type.end(), "string") != type.end()) {
    const bool nullable = std::find(type.begin(), type.end(), "null") != type.end();
    return nullable && text == "null" ? ojson() : ojson(text);
  }
  ojson parsed = ojson::parse(text, nullptr, false);
  if (parsed.is_discarded()) return text;
  return parsed;
}

// {"name": NAME, "arguments": {...}} (arguments may be a JSON string; some models say "parameters").
bool ToolCallParser::parse_json(std::string_view s, ToolCall& call) const {
  const ojson j = ojson::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  call.name = j["name"].get<std::string>();
  if (!valid_name(call.name)) return false;
  ojson args = j.contains("arguments") ? j["arguments"] : j.contains("parameters") ? j["parameters"] : ojson();
  if (args.is_null()) args = ojson::object();
  if (args.is_string()) args = ojson::parse(args.get<std::string>(), nullptr, false);
  if (args.is_discarded() || !args.is_object()) return false;
  call.arguments = dump_compact(args);
  return true;
}

}  // namespace tessera::server
