// Chat templates: our Jinja interpreter against Python jinja2 with Hugging Face's settings
// (render_jinja2.py), on the Qwen3 template from the golden vocabulary, the Qwen3-Coder template
// fixture, and small templates that exercise one construct each.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::tok {
namespace {

using ojson = nlohmann::ordered_json;
const std::string kSource = TESSERA_SOURCE_DIR;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string& qwen3_template() {
  static const std::string t = [] {
    const auto f = gguf::File::open(std::string(TESSERA_GOLDEN_DIR) + "/models/vocab-qwen3.gguf");
    return f.get_string("tokenizer.chat_template");
  }();
  return t;
}

const std::string& coder_template() {
  static const std::string t = read_text(kSource + "/tests/tokenizer/qwen3_coder.jinja");
  return t;
}

struct Case {
  std::string name;
  std::string tmpl;
  ojson context;
};

// Renders every case with jinja2 in one Python run.
std::vector<ojson> render_with_jinja2(const std::vector<Case>& cases) {
  const auto dir = std::filesystem::path(testing::TempDir()) / ("tessera_chat_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ojson in;
  in["cases"] = ojson::array();
  for (const auto& c : cases) in["cases"].push_back({{"template", c.tmpl}, {"context", c.context}});
  const auto in_path = dir / "in.json", out_path = dir / "out.json";
  std::ofstream(in_path) << in.dump();
  const std::string cmd = std::string("\"") + TESSERA_PYTHON + "\" \"" + kSource + "/tests/tokenizer/render_jinja2.py\" \"" +
                          in_path.string() + "\" \"" + out_path.string() + "\"";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("jinja2 oracle failed: " + cmd);
  auto out = ojson::parse(read_text(out_path.string()));
  std::filesystem::remove_all(dir);
  return {out.begin(), out.end()};
}

// Compares our rendering with jinja2's; returns how many cases rendered without error.
int compare_all(const std::vector<Case>& cases) {
  const auto want = render_with_jinja2(cases);
  EXPECT_EQ(want.size(), cases.size());
  int rendered = 0, failed_in_both = 0;
  for (size_t k = 0; k < cases.size() && k < want.size(); ++k) {
    const Case& c = cases[k];
    std::string ours, error;
    try {
      ours = render_chat(c.tmpl, c.context);
    } catch (const Error& e) {
      error = e.what();
    }
    if (want[k]["ok"].get<bool>()) {
      EXPECT_EQ(error, "") << c.name;
      EXPECT_EQ(ours, want[k]["text"].get<std::string>()) << c.name;
      rendered += error.empty() && ours == want[k]["text"].get<std::string>();
    } else {
      EXPECT_NE(error, "") << c.name << ": jinja2 failed (" << want[k]["error"] << ") but we rendered:\n" << ours;
      failed_in_both += !error.empty();
    }
  }
  std::printf("  %d cases: %d rendered identically, %d failed in both (jinja2 and ours)\n",
              static_cast<int>(cases.size()), rendered, failed_in_both);
  return rendered;
}

std::vector<Case> conversations(const std::string& tmpl, const std::string& tag) {
  std::vector<Case> cases;
  const auto convs = ojson::parse(read_text(kSource + "/tests/tokenizer/chat_conversations.json"));
  for (const auto& c : convs) cases.push_back({tag + "/" + c["name"].get<std::string>(), tmpl, c["context"]});
  return cases;
}

TEST(ChatTemplate, Qwen3MatchesJinja2) {
  const auto cases = conversations(qwen3_template(), "qwen3");
  EXPECT_GE(compare_all(cases), 20);
}

TEST(ChatTemplate, Qwen3CoderMatchesJinja2) {
  const auto cases = conversations(coder_template(), "qwen3-coder");
  EXPECT_GE(compare_all(cases), 20);
}

// Random conversations: roles, reasoning, tool calls with nested arguments, tool results, tricky
// text (template syntax, think / tool tags, whitespace, quotes, Unicode) in every field.
std::vector<Case> random_conversations(const std::string& tmpl, const std::string& tag, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> texts = {
      "hello", "", " ", "\n", "  padded  ", "line1\nline2\n", "{{ not a tag }} {% nor this %}", "<think>\nplan\n</think>\n\nanswer",
      "<think>x</think>", "<tool_response>\nfake\n</tool_response>", "quote ' and \" and \\", "ünïcödé 日本語 🚀",
      "tab\there", "</think> stray", "a</think>b</think>c", "\n\nleading newlines", "trailing newlines\n\n",
      "<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "x = {'a': [1, 2]}", "None", "0"};
  const auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::function<ojson(int)> random_value = [&](int depth) -> ojson {
    switch (rng() % (depth > 2 ? 5 : 7)) {
      case 0: return pick(texts);
      case 1: return static_cast<int>(rng() % 2000) - 1000;
      case 2: return (static_cast<double>(rng() % 100000) - 50000) / 64.0;
      case 3: return rng() % 2 == 0;
      case 4: return nullptr;
      case 5: {
        ojson a = ojson::array();
        for (uint32_t k = rng() % 4; k > 0; --k) a.push_back(random_value(depth + 1));
        return a;
      }
      default: {
        ojson o = ojson::object();
        for (uint32_t k = rng() % 4; k > 0; --k) o["k" + std::to_string(rng() % 9)] = random_value(depth + 1);
        return o;
      }
    }
  };
  const auto random_tool = [&](int k) {
    ojson props = ojson::object();
    for (uint32_t p = rng() % 4; p > 0; --p) {
      ojson field = {{"type", pick({"string", "integer", "number", "boolean", "array", "object"})}};
      if (rng() % 2) field["description"] = pick(texts);
      if (rng() % 3 == 0) field["enum"] = ojson::array({"a", "b"});
      if (rng() % 4 == 0) field["default"] = random_value(2);
      props["p" + std::to_string(p)] = field;
    }
    ojson fn = {{"name", "tool_" + std::to_string(k)}};
    if (rng() % 4) fn["description"] = pick(texts);
    if (rng() % 5) fn["parameters"] = {{"type", "object"}, {"properties", props}, {"required", ojson::array({"p1"})}};
    return rng() % 4 ? ojson{{"type", "function"}, {"function", fn}} : fn;
  };
  std::vector<Case> cases;
  for (int c = 0; c < count; ++c) {
    ojson ctx = ojson::object();
    ojson msgs = ojson::array();
    if (rng() % 2) msgs.push_back({{"role", "system"}, {"content", pick(texts)}});
    const int turns = 1 + static_cast<int>(rng() % 6);
    for (int t = 0; t < turns; ++t) {
      msgs.push_back({{"role", "user"}, {"content", pick(texts)}});
      if (t + 1 == turns && rng() % 2) break;
      ojson a = {{"role", "assistant"}, {"content", pick(texts)}};
      if (rng() % 3 == 0) a["reasoning_content"] = pick(texts);
      const bool calls = rng() % 3 == 0;
      if (calls) {
        ojson tc = ojson::array();
        for (uint32_t k = 1 + rng() % 3; k > 0; --k) {
          ojson args = ojson::object();
          for (uint32_t n = rng() % 4; n > 0; --n) args["arg" + std::to_string(n)] = random_value(0);
          tc.push_back({{"type", "function"}, {"function", {{"name", "tool_" + std::to_string(k)}, {"arguments", args}}}});
        }
        a["tool_calls"] = tc;
      }
      msgs.push_back(a);
      if (calls)
        for (uint32_t k = 1 + rng() % 3; k > 0; --k) msgs.push_back({{"role", "tool"}, {"content", pick(texts)}});
    }
    ctx["messages"] = msgs;
    if (rng() % 2) {
      ojson tools = ojson::array();
      for (uint32_t k = 1 + rng() % 3; k > 0; --k) tools.push_back(random_tool(static_cast<int>(k)));
      ctx["tools"] = tools;
    }
    ctx["add_generation_prompt"] = rng() % 2 == 0;
    if (rng() % 4 == 0) ctx["enable_thinking"] = rng() % 2 == 0;
    cases.push_back({tag + "/random" + std::to_string(c), tmpl, ctx});
  }
  return cases;
}

TEST(ChatTemplate, RandomConversationsMatchJinja2) {
  auto cases = random_conversations(qwen3_template(), "qwen3", 150, 11);
  auto coder = random_conversations(coder_template(), "qwen3-coder", 150, 12);
  cases.insert(cases.end(), coder.begin(), coder.end());
  EXPECT_GE(compare_all(cases), 250);
}

TEST(ChatTemplate, Qwen3CoderToolCallFormat) {
  const auto ctx = ojson::parse(R"({"messages": [{"role": "user", "content": "hi"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "read_file",
      "arguments": {"path": "a.txt", "lines": [1, 2]}}}]}], "add_generation_prompt": false})");
  const std::string out = render_chat(coder_template(), ctx);
  EXPECT_NE(out.find("<tool_call>\n<function=read_file>\n<parameter=path>\na.txt\n</parameter>\n"
                     "<parameter=lines>\n[1, 2]\n</parameter>\n</function>\n</tool_call><|im_end|>\n"),
            std::string::npos)
      << out;
}

TEST(ChatTemplate, ConstructsMatchJinja2) {
  std::vector<Case> cases;
  const auto feats = ojson::parse(read_text(kSource + "/tests/tokenizer/jinja_features.json"));
  for (const auto& f : feats) cases.push_back({f["name"].get<std::string>(), f["template"].get<std::string>(), f["context"]});
  EXPECT_GE(compare_all(cases), 30);
}

std::string error_of(const std::string& tmpl, const ojson& ctx = ojson::object()) {
  try {
    render_chat(tmpl, ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, UnsupportedConstructsAreNamed) {
  EXPECT_NE(error_of("{% include 'other.jinja' %}").find("include"), std::string::npos);
  EXPECT_NE(error_of("{% extends 'base' %}").find("extends"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' | wordwrap }}").find("wordwrap"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' is sameas }}").find("sameas"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' is fancy }}").find("fancy"), std::string::npos);
  EXPECT_NE(error_of("{% for x in y recursive %}{% endfor %}").find("recursive"), std::string::npos);
  EXPECT_NE(error_of("{% if x %}").find("endif"), std::string::npos);
  EXPECT_NE(error_of("{{ x ").find("line 1"), std::string::npos);
  EXPECT_NE(error_of("line\n{{ 'a' ! 'b' }}").find("line 2"), std::string::npos);
  EXPECT_NE(error_of("{{ raise_exception('no tools allowed') }}").find("no tools allowed"), std::string::npos);
  EXPECT_NE(error_of("{{ 'abc'.format(1) }}").find("format"), std::string::npos);
}

TEST(ChatTemplate, ParsedOnceRendersLikeRenderChat) {
  const ChatTemplate parsed(coder_template());
  for (const auto& c : conversations(coder_template(), "coder")) {
    std::string a, b;
    try {
      a = parsed.render(c.context);
    } catch (const Error& e) {
      a = std::string("error: ") + e.what();
    }
    try {
      b = render_chat(c.tmpl, c.context);
    } catch (const Error& e) {
      b = std::string("error: ") + e.what();
    }
    EXPECT_EQ(a, b) << c.name;
  }
  EXPECT_THROW(ChatTemplate("{% if %}"), Error);
}

TEST(ChatTemplate, OrderedAndSortedJsonContexts) {
  // ordered_json keeps the caller's key order; plain json sorts keys (documented).
  const std::string t = "{{ d | tojson }}";
  EXPECT_EQ(render_chat(t, ojson::parse(R"({"d": {"b": 1, "a": 2}})")), R"({"b": 1, "a": 2})");
  EXPECT_EQ(render_chat(t, nlohmann::json::parse(R"({"d": {"b": 1, "a": 2}})")), R"({"a": 2, "b": 1})");
}

}  // namespace
}  // namespace tessera::tok
