// Tool calls in generated text: finds <tool_call>...</tool_call> blocks as they stream in and turns
// them into OpenAI tool calls. Two body formats: Qwen3-Coder XML (<function=NAME><parameter=K>V...)
// and Hermes / Qwen2.5 / Qwen3 JSON ({"name": ..., "arguments": ...}). Text outside the blocks is
// content; a block that does not parse, or is cut off by the end of generation, stays content.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::server {

struct ToolCall {
  std::string id;         // "call_" + 24 random alphanumerics (unique per call)
  std::string name;
  std::string arguments;  // a JSON object serialized compactly, as OpenAI sends function.arguments
};

struct ToolParseOutput {
  std::string content;          // plain text safe to show now (outside any tool call)
  std::vector<ToolCall> calls;  // tool calls completed by this feed
};

class ToolCallParser {
 public:
  // tools: the request's OpenAI `tools` array (may be empty or null). It types XML parameter values:
  // a parameter whose JSON-schema type is "string" stays a string; any other (or unknown) parameter
  // is parsed as JSON, falling back to the string when it does not parse.
  explicit ToolCallParser(const nlohmann::ordered_json& tools);

  // Any chunking, even one byte at a time, gives the same total result. Text that may still become
  // "<tool_call>" is held back until decided, so content never shows half a tag.
  ToolParseOutput feed(std::string_view text);
  // End of generation: flushes held text; an unterminated tool call is returned as content.
  ToolParseOutput finish();
  // True once a parsed call has been returned (finish_reason "tool_calls"); malformed ones do not count.
  bool saw_tool_call() const { return saw_tool_call_; }

 private:
  void process(ToolParseOutput& out, bool final);
  bool parse_call(std::string_view body, ToolCall& call) const;
  bool parse_xml(std::string_view body, ToolCall& call) const;
  bool parse_json(std::string_view body, ToolCall& call) const;
  nlohmann::ordered_json xml_value(const std::string& tool, const std::string& param, std::string text) const;

  nlohmann::ordered_json tools_;
  std::string buf_;           // text not yet decided
  size_t scanned_ = 0;        // inside a call: buf_[0, scanned_) holds no "</tool_call>"
  bool inside_ = false;       // after "<tool_call>", before its "</tool_call>"
  bool after_call_ = false;   // just after a parsed call: whitespace here is a separator, not content
  bool saw_tool_call_ = false;
};

}  // namespace tessera::server
