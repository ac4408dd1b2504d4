// PLACEHOLDER until the chat formatter lands (branch server-chat replaces this file).
#include "server/chat.h"
namespace tessera::server {
ChatFormatter::ChatFormatter(const tok::Tokenizer& tok) : src_(tok.chat_template()) {}
std::string ChatFormatter::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                  const nlohmann::ordered_json&) const {
  nlohmann::ordered_json ctx{{"messages", messages}, {"add_generation_prompt", true}};
  if (tools.is_array()) ctx["tools"] = tools;
  try {
    return tok::render_chat(src_, ctx);
  } catch (const std::exception& e) {
    throw ChatError(e.what());
  }
}
}  // namespace tessera::server
