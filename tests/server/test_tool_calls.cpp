// Tool-call parser: Qwen3-Coder XML and Hermes JSON bodies, schema typing of XML values, malformed
// calls kept as content, and streaming: every chunking of a text gives the same result as one feed.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "server/tool_calls.h"

namespace tessera::server {
namespace {

using ojson = nlohmann::ordered_json;

// Everything a parser produced for one generation, ids left out (they are random).
struct Result {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  bool operator==(const Result&) const = default;
};

void add(Result& r, const ToolParseOutput& out) {
  r.content += out.content;
  for (const auto& c : out.calls) r.calls.emplace_back(c.name, c.arguments);
}

Result parse_chunks(const std::vector<std::string>& chunks, const ojson& tools = nullptr) {
  ToolCallParser p(tools);
  Result r;
  for (const auto& c : chunks) add(r, p.feed(c));
  add(r, p.finish());
  return r;
}

Result parse(const std::string& text, const ojson& tools = nullptr) { return parse_chunks({text}, tools); }

std::string xml_call(const std::string& name, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string s = "<tool_call>\n<function=" + name + ">\n";
  for (const auto& [k, v] : params) s += "<parameter=" + k + ">\n" + v + "\n</parameter>\n";
  return s + "</function>\n</tool_call>";
}

const ojson& weather_tools() {
  static const ojson t = ojson::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
      "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"},
      "zip": {"type": "string"}, "coords": {"type": "object"}, "tags": {"type": "array"},
      "note": {"type": ["string", "null"]}}}}},
    {"type": "function", "function": {"name": "write_file", "parameters": {"type": "object", "properties": {
      "path": {"type": "string"}, "content": {"type": "string"}}}}}
  ])");
  return t;
}

// ---- formats ----------------------------------------------------------------------------------

TEST(ToolCallParser, QwenCoderXmlCall) {
  const auto r = parse("I'll check.\n" + xml_call("get_weather", {{"city", "Paris"}, {"days", "3"}}), weather_tools());
  EXPECT_EQ(r.content, "I'll check.\n");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].first, "get_weather");
  EXPECT_EQ(r.calls[0].second, R"({"city":"Paris","days":3})");
}

TEST(ToolCallParser, HermesJsonCall) {
  const auto r = parse("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"zip\": \"10001\", \"city\": \"NY\"}}\n</tool_call>");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].first, "get_weather");
  EXPECT_EQ(r.calls[0].second, R"({"zip":"10001","city":"NY"})");  // the model's key order
}

TEST(ToolCallParser, HermesArgumentsAsJsonString) {
  const auto r = parse(R"(<tool_call>{"name": "f", "arguments": "{\"a\": [1, 2]}"}</tool_call>)");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second, R"({"a":[1,2]})");
  // Missing or null arguments mean none.
  EXPECT_EQ(parse(R"(<tool_call>{"name": "f"}</tool_call>)").calls.at(0).second, "{}");
  EXPECT_EQ(parse(R"(<tool_call>{"name": "f", "arguments": null}</tool_call>)").calls.at(0).second, "{}");
}

TEST(ToolCallParser, XmlCallWithoutParameters) {
  const auto r = parse("<tool_call>\n<function=list_files>\n</function>\n</tool_call>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].first, "list_files");
  EXPECT_EQ(r.calls[0].second, "{}");
}

TEST(ToolCallParser, MultipleCallsInOrderWithoutSeparatorContent) {
  const std::string text = "Two calls:\n" + xml_call("a", {{"x", "1"}}) + "\n\n" +
                           "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>\n" + xml_call("c", {}) + "\n  \n";
  const auto r = parse(text);
  EXPECT_EQ(r.content, "Two calls:\n");
  ASSERT_EQ(r.calls.size(), 3u);
  EXPECT_EQ(r.calls[0].first, "a");
  EXPECT_EQ(r.calls[1].first, "b");
  EXPECT_EQ(r.calls[2].first, "c");
}

TEST(ToolCallParser, TextAfterACallIsContent) {
  const auto r = parse(xml_call("a", {}) + "\n\nDone.");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "\n\nDone.");
}

TEST(ToolCallParser, MultiLineValuesWithAngleBrackets) {
  const std::string code = "#include <vector>\nint f(int a, int b) {\n  return a < b ? a : b;  // </param\n}\n";
  const std::string markup = "<p>see </parameter> here</p>";  // spells the closing tag mid-value
  const auto r = parse(xml_call("write_file", {{"path", "f.cpp"}, {"content", code}, {"extra", markup}}), weather_tools());
  ASSERT_EQ(r.calls.size(), 1u) << r.content;
  const auto args = ojson::parse(r.calls[0].second);
  EXPECT_EQ(args["path"], "f.cpp");
  EXPECT_EQ(args["content"], code);  // one newline stripped on each side, the value's own kept
  EXPECT_EQ(args["extra"], markup);
}

TEST(ToolCallParser, OnlyOneNewlineStrippedAroundValues) {
  const auto r = parse("<tool_call>\n<function=f>\n<parameter=s>\n\n  x  \n\n</parameter>\n</function>\n</tool_call>",
                       ojson::parse(R"([{"type":"function","function":{"name":"f","parameters":{"properties":{"s":{"type":"string"}}}}}])"));
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(ojson::parse(r.calls[0].second)["s"], "\n  x  \n");
}

TEST(ToolCallParser, XmlValuesTypedBySchema) {
  const auto r = parse(xml_call("get_weather", {{"city", "123"},         // string: stays a string
                                                {"zip", "\"02134\""},    // string: quotes kept as text
                                                {"days", "7"},           // integer
                                                {"metric", "false"},     // boolean
                                                {"coords", "{\"lat\": 1.5, \"lon\": -2}"},
                                                {"tags", "[\"a\", \"b\"]"},
                                                {"note", "null"},        // ["string", "null"]: null
                                                {"unknown_json", "true"},  // not in the schema: JSON
                                                {"unknown_text", "hello world"}}),  // not JSON: a string
                       weather_tools());
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second,
            R"({"city":"123","zip":"\"02134\"","days":7,"metric":false,"coords":{"lat":1.5,"lon":-2},)"
            R"("tags":["a","b"],"note":null,"unknown_json":true,"unknown_text":"hello world"})");
}

TEST(ToolCallParser, BadJsonForTypedParameterFallsBackToString) {
  const auto r = parse(xml_call("get_weather", {{"days", "seven"}, {"coords", "{lat: 1}"}}), weather_tools());
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second, R"({"days":"seven","coords":"{lat: 1}"})");
}

TEST(ToolCallParser, UnknownToolParsesJsonLikeValues) {
  const auto r = parse(xml_call("other", {{"n", "42"}, {"s", "abc"}, {"city", "123"}}), weather_tools());
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second, R"({"n":42,"s":"abc","city":123})");  // "city" is typed only for get_weather
}

TEST(ToolCallParser, ToolsWithoutFunctionWrapperAreUnderstood) {
  const auto tools = ojson::parse(R"([{"name": "f", "parameters": {"properties": {"s": {"type": "string"}}}}])");
  EXPECT_EQ(parse(xml_call("f", {{"s", "1"}}), tools).calls.at(0).second, R"({"s":"1"})");
}

// ---- malformed and non-calls ------------------------------------------------------------------

TEST(ToolCallParser, MalformedCallsBecomeContentVerbatim) {
  const std::vector<std::string> bad = {
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>",          // bad JSON
      "<tool_call>\n{\"arguments\": {}}\n</tool_call>",                                 // no name
      "<tool_call>\n{\"name\": \"f\", \"arguments\": \"not json\"}\n</tool_call>",      // arguments not JSON
      "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>",               // arguments not an object
      "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</tool_call>",        // no </function>
      "<tool_call>\n<function=f>\n<parameter=a>\n1\n</function>\n</tool_call>",         // no </parameter>
      "<tool_call>\n<function=f>\ntext\n</function>\n</tool_call>",                     // stray text
      "<tool_call>\n<function=f>\n</function>\ntrailing\n</tool_call>",                 // text after
      "<tool_call>\n<function=>\n</function>\n</tool_call>",                            // empty name
      "<tool_call>\n<function=two words>\n</function>\n</tool_call>",                   // name with space
      "<tool_call>just text</tool_call>",
      "<tool_call></tool_call>",
  };
  for (const auto& b : bad) {
    ToolCallParser p(nullptr);
    Result r;
    add(r, p.feed("before " + b + " after"));
    add(r, p.finish());
    EXPECT_TRUE(r.calls.empty()) << b;
    EXPECT_EQ(r.content, "before " + b + " after");
    EXPECT_FALSE(p.saw_tool_call());
  }
}

TEST(ToolCallParser, MalformedCallDoesNotStopLaterCalls) {
  const auto r = parse("<tool_call>{oops}</tool_call>\n" + xml_call("a", {}));
  EXPECT_EQ(r.content, "<tool_call>{oops}</tool_call>\n");
  ASSERT_EQ(r.calls.size(), 1u);
}

TEST(ToolCallParser, UnterminatedCallIsContentAtFinish) {
  const std::string text = "Sure.\n<tool_call>\n<function=f>\n<parameter=a>\n1";
  ToolCallParser p(nullptr);
  const auto fed = p.feed(text);
  EXPECT_EQ(fed.content, "Sure.\n");  // the call's text is held while it may complete
  const auto done = p.finish();
  EXPECT_EQ(fed.content + done.content, text);
  EXPECT_TRUE(done.calls.empty());
}

TEST(ToolCallParser, LookalikeTagsAreContent) {
  for (const std::string text : {"<tools> list", "a <tool_calls> b", "x <tool_cal", "<tool", "<", "<<tool_call",
                                 "</tool_call> stray close", "<TOOL_CALL>{\"name\":\"f\"}</TOOL_CALL>"}) {
    const auto r = parse(text);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty());
  }
}

TEST(ToolCallParser, PartialTagIsHeldUntilDecided) {
  ToolCallParser p(nullptr);
  EXPECT_EQ(p.feed("Hello <tool_").content, "Hello ");
  EXPECT_EQ(p.feed("cx").content, "<tool_cx");  // decided: not a tag
  EXPECT_EQ(p.feed("<").content, "");
  EXPECT_EQ(p.feed("tool_call>{\"name\": \"f\"}").content, "");
  EXPECT_FALSE(p.saw_tool_call());
  const auto out = p.feed("</tool_call>");
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_TRUE(p.saw_tool_call());
  EXPECT_EQ(p.feed("\n\n").content, "");  // may separate the next call
  EXPECT_EQ(p.finish().content, "");     // trailing whitespace after the last call is dropped
}

TEST(ToolCallParser, CallIdsAreUniqueAndOpenAIShaped) {
  std::string text;
  for (int k = 0; k < 50; ++k) text += xml_call("f", {});
  ToolCallParser p(nullptr);
  auto out = p.feed(text);
  ASSERT_EQ(out.calls.size(), 50u);
  std::set<std::string> ids;
  for (const auto& c : out.calls) {
    ASSERT_EQ(c.id.size(), 29u) << c.id;
    EXPECT_EQ(c.id.substr(0, 5), "call_");
    for (char ch : c.id.substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch))) << c.id;
    ids.insert(c.id);
  }
  EXPECT_EQ(ids.size(), 50u);
}

TEST(ToolCallParser, Unicode) {
  const std::string text = "天气如何？🌦️\n" + xml_call("get_weather", {{"city", "Zürich 東京 🚀"}}) +
                           "\n<tool_call>{\"name\": \"f\", \"arguments\": {\"ключ\": \"значение ✓\"}}</tool_call>";
  const auto r = parse(text, weather_tools());
  EXPECT_EQ(r.content, "天气如何？🌦️\n");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].second, R"({"city":"Zürich 東京 🚀"})");
  EXPECT_EQ(r.calls[1].second, R"({"ключ":"значение ✓"})");
}

TEST(ToolCallParser, InvalidUtf8InValuesIsReplacedNotThrown) {
  const auto r = parse(xml_call("f", {{"s", std::string("a\xff") + "b"}}));
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second, "{\"s\":\"a\xEF\xBF\xBD" "b\"}");
}

// ---- streaming: chunking never changes the result ---------------------------------------------

// Generations mixing content, both call formats, malformed and cut-off calls, lookalike tags.
std::string random_generation(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "Let me look.\n", "a < b", "<tool", "<tools>", "<tool_call", "</tool_call>", "\n\n", "  ", "ü€🙂 ",
      xml_call("get_weather", {{"city", "Paris"}, {"days", "2"}}),
      xml_call("write_file", {{"path", "a.h"}, {"content", "x <y> </parameter> z\n\nw"}}),
      "<tool_call>\n{\"name\": \"b\", \"arguments\": {\"q\": \"<tool_call>\"}}\n</tool_call>",
      "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"k\\\": 1}\"}\n</tool_call>",
      "<tool_call>{broken</tool_call>",
      "<tool_call>\n<function=cut>\n<parameter=a>\n",
  };
  std::string s;
  const int n = 1 + static_cast<int>(rng() % 8);
  for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
  return s;
}

std::vector<std::string> random_split(const std::string& s, std::mt19937& rng) {
  std::vector<std::string> chunks;
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = 1 + rng() % (rng() % 2 ? 3 : 20);
    chunks.push_back(s.substr(i, n));
    i += n;
  }
  return chunks;
}

TEST(ToolCallParser, EverySplitPointGivesTheSameResult) {
  const std::string text = "Plan: <tools> aside.\n" + xml_call("get_weather", {{"city", "Rome"}, {"days", "1"}}) +
                           "\n<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>\n<tool_call>bad</tool_call> end <tool_";
  const Result whole = parse(text, weather_tools());
  ASSERT_EQ(whole.calls.size(), 2u);
  for (size_t cut = 0; cut <= text.size(); ++cut)
    EXPECT_EQ(parse_chunks({text.substr(0, cut), text.substr(cut)}, weather_tools()), whole) << cut;
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_chunks(bytes, weather_tools()), whole);
}

TEST(ToolCallParser, RandomSplitsGiveTheSameResult) {
  std::mt19937 rng(1234);
  int with_calls = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    const std::string text = random_generation(rng);
    const Result whole = parse(text, weather_tools());
    with_calls += !whole.calls.empty();
    ASSERT_EQ(parse_chunks(random_split(text, rng), weather_tools()), whole) << text;
  }
  EXPECT_GT(with_calls, 500);  // the generator does exercise calls
}

// Content is never taken back: what has been streamed so far is always a prefix of the final content,
// so no delta shows text that turns out to be part of a tool call.
TEST(ToolCallParser, StreamedContentIsAlwaysAPrefixOfTheFinalContent) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 500; ++iter) {
    const std::string text = random_generation(rng);
    const std::string final_content = parse(text, weather_tools()).content;
    ToolCallParser p(weather_tools());
    std::string shown;
    for (const auto& chunk : random_split(text, rng)) {
      shown += p.feed(chunk).content;
      ASSERT_TRUE(final_content.starts_with(shown)) << "shown: " << shown << "\nfinal: " << final_content;
    }
  }
}

// Random bytes biased towards markup: never throws; without calls the content is the input; every
// call's arguments are a JSON object; chunking does not matter.
TEST(ToolCallParser, GarbageFuzz) {
  static const std::vector<std::string> atoms = {
      "<tool_call>", "</tool_call>", "<function=", "</function>", "<parameter=", "</parameter>", "{", "}", "\"",
      "name", ":", "arguments", "\n", " ", ">", "<", "f", "1", "\xff", "\xe4\xb8", "null", "[", "]", ",",
      xml_call("f", {{"a", "1"}}), "{\"name\": \"f\"}"};
  std::mt19937 rng(7);
  int calls = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      if (rng() % 4 == 0) text += static_cast<char>(rng() % 256);
      else text += atoms[rng() % atoms.size()];
    }
    Result whole;
    ASSERT_NO_THROW(whole = parse(text, weather_tools())) << text;
    if (whole.calls.empty()) EXPECT_EQ(whole.content, text);
    else EXPECT_LT(whole.content.size(), text.size());
    for (const auto& [name, args] : whole.calls) {
      const auto j = ojson::parse(args, nullptr, false);
      EXPECT_TRUE(j.is_object()) << args;
      EXPECT_FALSE(name.empty());
    }
    calls += static_cast<int>(whole.calls.size());
    ASSERT_EQ(parse_chunks(random_split(text, rng), weather_tools()), whole) << text;
  }
  EXPECT_GT(calls, 0);
}

}  // namespace
}  // namespace tessera::server
