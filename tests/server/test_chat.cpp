// Chat prompts: OpenAI requests normalized and rendered with the real Qwen3 template (golden
// vocabulary), the Qwen3-Coder template fixture and the built-in ChatML fallback; tool calls the
// templates print are read back by ToolCallParser.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "server/chat.h"
#include "server/tool_calls.h"

namespace tessera::server {
namespace {

using ojson = nlohmann::ordered_json;

const gguf::File& vocab_file() {
  static const gguf::File file = gguf::File::open(std::string(TESSERA_GOLDEN_DIR) + "/models/vocab-qwen3.gguf");
  return file;
}

const tok::Tokenizer& qwen3() {
  static const tok::Tokenizer tok = tok::Tokenizer::from_gguf(vocab_file());
  return tok;
}

// The Qwen3 vocabulary with another chat template ("" = none).
tok::Tokenizer qwen3_with_template(const std::string& tmpl) {
  gguf::Writer w;
  w.copy_metadata(vocab_file(), "tokenizer.ggml.");
  if (!tmpl.empty()) w.set_string("tokenizer.chat_template", tmpl);
  return tok::Tokenizer::from_gguf(gguf::File::from_memory(w.to_bytes(), "vocab.gguf"));
}

std::string coder_template() {
  std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/tests/tokenizer/qwen3_coder.jinja", std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const ojson& weather_tools() {
  static const ojson t = ojson::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
    "required": ["city"]}}}])");
  return t;
}

// system, user, assistant calling a tool (OpenAI form: null content, arguments as a string), tool.
const ojson& conversation() {
  static const ojson m = ojson::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"}])");
  return m;
}

std::string chat_error(const ChatFormatter& f, const ojson& messages, const ojson& tools = nullptr) {
  try {
    f.render(messages, tools, nullptr);
  } catch (const ChatError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ChatFormatter, Qwen3ConversationWithToolCalls) {
  const ChatFormatter f(qwen3());
  EXPECT_TRUE(f.has_template());
  // Rendered by Python jinja2 (HF settings) from the same conversation in normalized form.
  const std::string want =
      "<|im_start|>system\nYou are terse.\n\n# Tools\n\nYou may call one or more functions to assist with the user "
      "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
      R"({"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": )"
      R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})"
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
      "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
      "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(f.render(conversation(), weather_tools(), "auto"), want);
}

TEST(ChatFormatter, MatchesTheTemplateOnTheNormalizedContext) {
  const ChatFormatter f(qwen3());
  ojson normalized = conversation();
  normalized[2]["content"] = "";
  normalized[2]["tool_calls"][0]["function"]["arguments"] = {{"city", "Paris"}};
  const ojson ctx = {{"messages", normalized}, {"tools", weather_tools()}, {"add_generation_prompt", true},
                     {"bos_token", "<|endoftext|>"}, {"eos_token", "<|im_end|>"}};
  EXPECT_EQ(f.context(conversation(), weather_tools(), nullptr), ctx);
  EXPECT_EQ(f.render(conversation(), weather_tools(), nullptr), tok::render_chat(qwen3().chat_template(), ctx));
}

TEST(ChatFormatter, ContentPartsAreJoined) {
  const ChatFormatter f(qwen3());
  const auto parts = ojson::parse(R"([{"role": "user", "content": [{"type": "text", "text": "first"},
                                                                    {"type": "text", "text": "second"}]}])");
  const auto plain = ojson::parse(R"([{"role": "user", "content": "first\nsecond"}])");
  EXPECT_EQ(f.render(parts, nullptr, nullptr), f.render(plain, nullptr, nullptr));
  EXPECT_EQ(f.render(plain, nullptr, nullptr), "<|im_start|>user\nfirst\nsecond<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatFormatter, NonTextPartsAreRejected) {
  const ChatFormatter f(qwen3());
  const auto image = ojson::parse(R"([{"role": "user", "content": [{"type": "text", "text": "see"},
    {"type": "image_url", "image_url": {"url": "data:"}}]}])");
  EXPECT_NE(chat_error(f, image).find("only text content is supported"), std::string::npos);
  EXPECT_NE(chat_error(f, ojson::parse(R"([{"role": "user", "content": 5}])")), "(no error)");
}

TEST(ChatFormatter, StringArgumentsAreParsedUnlessInvalid) {
  const ChatFormatter f(qwen3());
  auto msgs = ojson::parse(R"([{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [
    {"type": "function", "function": {"name": "a", "arguments": "{\"x\": [1, 2], \"y\": \"z\"}"}},
    {"type": "function", "function": {"name": "b", "arguments": "{not json"}}]}])");
  const auto ctx = f.context(msgs, nullptr, nullptr);
  const auto& calls = ctx["messages"][1]["tool_calls"];
  EXPECT_EQ(calls[0]["function"]["arguments"], ojson::parse(R"({"x": [1, 2], "y": "z"})"));
  EXPECT_EQ(calls[1]["function"]["arguments"], "{not json");
  EXPECT_EQ(ctx["messages"][1]["content"], "");  // missing content
  const std::string prompt = f.render(msgs, nullptr, nullptr);
  EXPECT_NE(prompt.find(R"({"name": "a", "arguments": {"x": [1, 2], "y": "z"}})"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find(R"({"name": "b", "arguments": {not json})"), std::string::npos) << prompt;
}

TEST(ChatFormatter, RolesAreChecked) {
  const ChatFormatter f(qwen3());
  EXPECT_NE(chat_error(f, ojson::parse(R"([{"role": "wizard", "content": "x"}])")).find("'wizard'"), std::string::npos);
  EXPECT_NE(chat_error(f, ojson::parse(R"([{"role": 1, "content": "x"}])")), "(no error)");
  EXPECT_NE(chat_error(f, ojson::parse(R"([{"content": "x"}])")), "(no error)");
  EXPECT_NE(chat_error(f, ojson::parse(R"(["hi"])")), "(no error)");
  EXPECT_NE(chat_error(f, ojson::array()), "(no error)");
  EXPECT_NE(chat_error(f, ojson::parse(R"({"role": "user", "content": "x"})")), "(no error)");
  EXPECT_NE(chat_error(f, nullptr), "(no error)");
  // developer is OpenAI's newer name for system.
  const auto dev = ojson::parse(R"([{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "x"}])");
  const auto sys = ojson::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}])");
  EXPECT_EQ(f.render(dev, nullptr, nullptr), f.render(sys, nullptr, nullptr));
  EXPECT_EQ(f.render(sys, nullptr, nullptr).rfind("<|im_start|>system\nBe brief.<|im_end|>\n", 0), 0u);
}

TEST(ChatFormatter, ToolsAreChecked) {
  const ChatFormatter f(qwen3());
  const auto msgs = ojson::parse(R"([{"role": "user", "content": "x"}])");
  EXPECT_NE(chat_error(f, msgs, "tools"), "(no error)");
  EXPECT_NE(chat_error(f, msgs, ojson::parse(R"([{"type": "function"}])")), "(no error)");
  EXPECT_EQ(f.render(msgs, ojson::array(), nullptr), f.render(msgs, nullptr, nullptr));
}

TEST(ChatFormatter, ToolChoiceNoneDropsTools) {
  const ChatFormatter f(qwen3());
  const auto msgs = ojson::parse(R"([{"role": "user", "content": "Weather?"}])");
  const std::string with = f.render(msgs, weather_tools(), "auto");
  EXPECT_NE(with.find("# Tools"), std::string::npos);
  EXPECT_NE(with.find("get_weather"), std::string::npos);
  EXPECT_EQ(f.render(msgs, weather_tools(), "none"), f.render(msgs, nullptr, nullptr));
  EXPECT_EQ(f.render(msgs, weather_tools(), "none").find("get_weather"), std::string::npos);
}

TEST(ChatFormatter, NoTemplateUsesChatMl) {
  const tok::Tokenizer tok = qwen3_with_template("");
  const ChatFormatter f(tok);
  EXPECT_FALSE(f.has_template());
  const auto msgs = ojson::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": [{"type": "text", "text": "U"}]},
    {"role": "assistant", "content": "A"}, {"role": "user", "content": "ü 🙂"}])");
  EXPECT_EQ(f.render(msgs, nullptr, nullptr),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
            "<|im_start|>user\nü 🙂<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatFormatter, TemplateExceptionsAreChatErrors) {
  const tok::Tokenizer tok = qwen3_with_template(
      "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user') }}{% endif %}ok");
  const ChatFormatter f(tok);
  EXPECT_EQ(f.render(ojson::parse(R"([{"role": "user", "content": "x"}])"), nullptr, nullptr), "ok");
  EXPECT_NE(chat_error(f, ojson::parse(R"([{"role": "system", "content": "x"}])")).find("Conversations must start with a user"),
            std::string::npos);
}

// ---- the templates' tool calls read back by the parser ----------------------------------------

// The assistant turn the template printed for the last message (what the model learns to generate).
std::string last_assistant_turn(const std::string& prompt) {
  const std::string tag = "<|im_start|>assistant";
  const std::string body = prompt.substr(prompt.rfind(tag, prompt.size() - tag.size() - 2) + tag.size());
  return body.substr(0, body.find("<|im_end|>"));
}

void expect_round_trip(const tok::Tokenizer& tok, const ojson& tools) {
  const auto msgs = ojson::parse(R"([{"role": "user", "content": "go"}, {"role": "assistant", "content": "", "tool_calls": [
    {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\\n<b>\"}"}},
    {"type": "function", "function": {"name": "plot", "arguments": {"n": 3, "xs": [1.5, 2], "opt": {"k": "v"}}}}]}])");
  const std::string turn = last_assistant_turn(ChatFormatter(tok).render(msgs, tools, nullptr));
  ToolCallParser p(tools);
  auto out = p.feed(turn);
  const auto end = p.finish();
  out.calls.insert(out.calls.end(), end.calls.begin(), end.calls.end());
  ASSERT_EQ(out.calls.size(), 2u) << turn;
  EXPECT_EQ(out.calls[0].name, "get_weather");
  EXPECT_EQ(out.calls[0].arguments, R"({"city":"Paris\n<b>"})");
  EXPECT_EQ(out.calls[1].name, "plot");
  EXPECT_EQ(out.calls[1].arguments, R"({"n":3,"xs":[1.5,2],"opt":{"k":"v"}})");
}

TEST(ChatToolRoundTrip, Qwen3TemplatePrintsHermesJson) {
  EXPECT_NE(qwen3().chat_template().find("<tool_call>\\n{\\\"name\\\": "), std::string::npos);
  expect_round_trip(qwen3(), weather_tools());
}

TEST(ChatToolRoundTrip, Qwen3CoderTemplatePrintsXml) {
  const tok::Tokenizer tok = qwen3_with_template(coder_template());
  EXPECT_NE(tok.chat_template().find("<function="), std::string::npos);
  expect_round_trip(tok, weather_tools());
}

}  // namespace
}  // namespace tessera::server
