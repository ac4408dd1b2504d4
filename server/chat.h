// OpenAI chat requests to prompt text: normalizes the client's messages and tools into the shapes
// Hugging Face chat templates expect, then renders the model's template (ChatML when it has none).
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::server {

// A client error in messages or tools (the HTTP layer answers 400 invalid_request_error).
struct ChatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ChatFormatter {
 public:
  // Parses the tokenizer's template once; without one, a built-in ChatML template
  // (<|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n).
  explicit ChatFormatter(const tok::Tokenizer& tok);

  // messages / tools / tool_choice as the client sent them (ordered_json keeps key order, which
  // templates print). Normalization:
  // - messages: a non-empty array of objects with a string role: system, developer (-> system), user,
  //   assistant or tool; anything else is a ChatError naming the role.
  // - content: an array of parts [{type: "text", text}] is joined with "\n" (other part types are a
  //   ChatError "only text content is supported"); null or missing -> "".
  // - assistant tool_calls[].function.arguments given as a JSON string is parsed into an object
  //   (templates iterate it); a string that is not a JSON object stays a string.
  // - tools: null or an array of function tools; tool_choice "none" drops them from the prompt.
  // Renders with add_generation_prompt=true. Template errors (raise_exception) -> ChatError.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     const nlohmann::ordered_json& tool_choice) const;
  bool has_template() const { return has_template_; }

  // The template context render() would pass, for tests and debugging.
  nlohmann::ordered_json context(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                 const nlohmann::ordered_json& tool_choice) const;

 private:
  bool has_template_;
  tok::ChatTemplate template_;
  std::string bos_token_, eos_token_;
};

}  // namespace tessera::server
