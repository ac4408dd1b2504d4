// Chat template rendering: a Jinja subset interpreter sufficient for Hugging Face chat templates
// (Qwen3, Qwen3-Coder). Conventions follow HF transformers: trim_blocks=True, lstrip_blocks=True,
// tojson without key sorting and with ensure_ascii=False; raise_exception(msg) throws.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::tok {

// context: the template's variables, e.g. {"messages": [...], "tools": [...],
// "add_generation_prompt": true, "bos_token": "", "eos_token": "<|im_end|>", ...}.
// Throws tessera::Error on a syntax error, an unsupported construct (named in the message),
// or raise_exception() called by the template.
// Key order matters (tojson, loops over tool parameters): pass ordered_json parsed from the
// request to keep the client's order. The nlohmann::json overload sees keys sorted.
std::string render_chat(const std::string& tmpl, const nlohmann::ordered_json& context);
std::string render_chat(const std::string& tmpl, const nlohmann::json& context);

namespace jinja {
struct Node;
}

// A template parsed once and rendered many times (a server renders one per chat request).
class ChatTemplate {
 public:
  explicit ChatTemplate(const std::string& source);  // throws tessera::Error on syntax errors
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();
  std::string render(const nlohmann::ordered_json& context) const;

 private:
  std::vector<std::unique_ptr<jinja::Node>> body_;
};

}  // namespace tessera::tok
