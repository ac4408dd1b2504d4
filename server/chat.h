// PLACEHOLDER until the chat formatter lands (branch server-chat replaces this file).
#pragma once
#include <stdexcept>
#include <string>
#include <nlohmann/json.hpp>
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
namespace tessera::server {
struct ChatError : std::runtime_error { using std::runtime_error::runtime_error; };
class ChatFormatter {
 public:
  explicit ChatFormatter(const tok::Tokenizer& tok);
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     const nlohmann::ordered_json& tool_choice) const;
  bool has_template() const { return !src_.empty(); }
 private:
  std::string src_;
};
}  // namespace tessera::server
