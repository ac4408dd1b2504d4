// Chat prompt rendering (see chat.h).
#include "server/chat.h"

#include "core/error.h"

namespace tessera::server {
namespace {

using ojson = nlohmann::ordered_json;

// Plain ChatML for models without a template; tools are not shown to such models.
constexpr const char* kChatMl =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

std::string token_text(const tok::Tokenizer& tok, std::optional<int32_t> id) {
  return id ? tok.token_text(*id) : std::string();
}

// OpenAI content (string, null, or an array of parts) as the plain string templates concatenate.
std::string content_text(const ojson& content, size_t index) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    throw ChatError("messages[" + std::to_string(index) + "].content must be a string or an array of parts");
  std::string text;
  for (size_t k = 0; k < content.size(); ++k) {
    const ojson& part = content[k];
    if (!part.is_object() || part.value("type", ojson()) != "text")
      throw ChatError("messages[" + std::to_string(index) + "].content[" + std::to_string(k) +
                      "]: only text content is supported");
    if (!part.contains("text") || !part["text"].is_string())
      throw ChatError("messages[" + std::to_string(index) + "].content[" + std::to_string(k) +
                      "].text must be a string");
    if (k > 0) text += '\n';
    text += part["text"].get<std::string>();
  }
  return text;
}

// Templates iterate arguments as a mapping; OpenAI clients send them as a JSON string.
ojson normalize_tool_calls(const ojson& calls, size_t index) {
  if (!calls.is_array()) throw ChatError("messages[" + std::to_string(index) + "].tool_calls must be an array");
  ojson out = calls;
  for (auto& call : out) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object() ||
        !call["function"].contains("name") || !call["function"]["name"].is_string())
      throw ChatError("messages[" + std::to_string(index) + "].tool_calls[]: each needs function.name");
    ojson& fn = call["function"];
    if (fn.contains("arguments") && fn["arguments"].is_string()) {
      ojson parsed = ojson::parse(fn["arguments"].get<std::string>(), nullptr, false);
      if (!parsed.is_discarded() && parsed.is_object()) fn["arguments"] = std::move(parsed);
    }
  }
  return out;
}

ojson normalize_messages(const ojson& messages) {
  if (!messages.is_array() || messages.empty()) throw ChatError("messages must be a non-empty array");
  ojson out = ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw ChatError("messages[" + std::to_string(i) + "] must be an object with a string role");
    ojson msg = m;
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system prompt
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw ChatError("messages[" + std::to_string(i) + "]: unsupported role '" + m["role"].get<std::string>() + "'");
    msg["role"] = role;
    msg["content"] = content_text(m.value("content", ojson()), i);
    if (m.contains("tool_calls")) {
      if (m["tool_calls"].is_null() || role != "assistant") msg.erase("tool_calls");
      else msg["tool_calls"] = normalize_tool_calls(m["tool_calls"], i);
    }
    out.push_back(std::move(msg));
  }
  return out;
}

void check_tools(const ojson& tools) {
  if (tools.is_null()) return;
  if (!tools.is_array()) throw ChatError("tools must be an array");
  for (const auto& t : tools)
    if (!t.is_object() || !t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string())
      throw ChatError("tools[]: each tool needs function.name");
}

}  // namespace

ChatFormatter::ChatFormatter(const tok::Tokenizer& tok)
    : has_template_(!tok.chat_template().empty()),
      template_(has_template_ ? tok.chat_template() : std::string(kChatMl)),
      bos_token_(token_text(tok, tok.bos())),
      eos_token_(token_text(tok, tok.eos())) {}

ojson ChatFormatter::context(const ojson& messages, const ojson& tools, const ojson& tool_choice) const {
  ojson ctx;
  ctx["messages"] = normalize_messages(messages);
  check_tools(tools);
  // Templates test `tools is defined` or truthiness: leave the key out when there are none.
  if (tools.is_array() && !tools.empty() && tool_choice != "none") ctx["tools"] = tools;
  ctx["add_generation_prompt"] = true;
  ctx["bos_token"] = bos_token_;
  ctx["eos_token"] = eos_token_;
  return ctx;
}

std::string ChatFormatter::render(const ojson& messages, const ojson& tools, const ojson& tool_choice) const {
  const ojson ctx = context(messages, tools, tool_choice);
  try {
    return template_.render(ctx);
  } catch (const Error& e) {
    throw ChatError(e.what());
  }
}

}  // namespace tessera::server
