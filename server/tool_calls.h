// PLACEHOLDER until the tool-call parser lands (branch server-chat replaces this file).
#pragma once
#include <string>
#include <string_view>
#include <vector>
#include <nlohmann/json.hpp>
namespace tessera::server {
struct ToolCall { std::string id, name, arguments; };
struct ToolParseOutput { std::string content; std::vector<ToolCall> calls; };
class ToolCallParser {
 public:
  explicit ToolCallParser(const nlohmann::ordered_json&) {}
  ToolParseOutput feed(std::string_view text) { return {std::string(text), {}}; }
  ToolParseOutput finish() { return {}; }
  bool saw_tool_call() const { return false; }
};
}  // namespace tessera::server
