// libFuzzer target: any template text must render or throw tessera::Error, never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi <think>x</think>"},
                 {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                   "function": {"name": "f", "arguments": {"a": [1, 2.5, null, true], "b": {"c": "d"}}}}]},
                 {"role": "tool", "content": "r"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
               "properties": {"a": {"type": "array"}}}}}],
    "add_generation_prompt": true, "bos_token": "", "eos_token": "<|im_end|>"})");
  try {
    tessera::tok::render_chat(std::string(reinterpret_cast<const char*>(data), size), context);
  } catch (const tessera::Error&) {
  }
  return 0;
}
