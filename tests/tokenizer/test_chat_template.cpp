// Chat templates: our Jinja interpreter against Python jinja2 with Hugging Face's settings
// (render_jinja2.py), on the Qwen3 template from the golden vocabulary, the Qwen3-Coder template
// fixture, and small templates that exercise one construct each.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
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

TEST(ChatTemplate, OrderedAndSortedJsonContexts) {
  // ordered_json keeps the caller's key order; plain json sorts keys (documented).
  const std::string t = "{{ d | tojson }}";
  EXPECT_EQ(render_chat(t, ojson::parse(R"({"d": {"b": 1, "a": 2}})")), R"({"b": 1, "a": 2})");
  EXPECT_EQ(render_chat(t, nlohmann::json::parse(R"({"d": {"b": 1, "a": 2}})")), R"({"a": 2, "b": 1})");
}

}  // namespace
}  // namespace tessera::tok
