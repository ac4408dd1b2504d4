// FIM response rules: stop tokens and per-language stop words, streaming stop scans, single-line
// mode decisions and trimming text that repeats the start of the suffix.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "server/fim.h"

namespace tessera::server {
namespace {

const tok::Tokenizer& qwen3() {
  static const gguf::File file = gguf::File::open(std::string(TESSERA_GOLDEN_DIR) + "/models/vocab-qwen3.gguf");
  static const tok::Tokenizer tok = tok::Tokenizer::from_gguf(file);
  return tok;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// ---- stop tokens ------------------------------------------------------------------------------

TEST(FimStop, StopTokensCoverQwensFimList) {
  const auto r = fim_stop_rules(qwen3(), "python", "", "");
  EXPECT_TRUE(std::is_sorted(r.stop_tokens.begin(), r.stop_tokens.end()));
  EXPECT_EQ(std::adjacent_find(r.stop_tokens.begin(), r.stop_tokens.end()), r.stop_tokens.end());
  // Qwen's FIM examples stop on these ids.
  for (int32_t id : {151659, 151661, 151662, 151663, 151664, 151643, 151645})
    EXPECT_TRUE(std::binary_search(r.stop_tokens.begin(), r.stop_tokens.end(), id)) << id;
  for (int32_t id : r.stop_tokens) EXPECT_TRUE(qwen3().is_control(id)) << id;  // no text token ends it
  EXPECT_FALSE(std::binary_search(r.stop_tokens.begin(), r.stop_tokens.end(), qwen3().encode("\n", false)[0]));
}

// ---- languages and stop words -----------------------------------------------------------------

TEST(FimStop, LanguageIds) {
  EXPECT_EQ(fim_language("python"), "python");
  EXPECT_EQ(fim_language("Python"), "python");
  EXPECT_EQ(fim_language("typescriptreact"), "javascript-typescript");
  EXPECT_EQ(fim_language("javascript"), "javascript-typescript");
  EXPECT_EQ(fim_language("c++"), "cpp");
  EXPECT_EQ(fim_language("c"), "c");
  EXPECT_EQ(fim_language("", "src/lib.rs"), "rust");
  EXPECT_EQ(fim_language("", "include/vec.h"), "c");
  EXPECT_EQ(fim_language("", "include/Vec.H"), "cpp");
  EXPECT_EQ(fim_language("", "a/b.c/main.go"), "go");
  EXPECT_EQ(fim_language("", "C:\\src\\App.java"), "java");
  EXPECT_EQ(fim_language("plaintext", "web/app.tsx"), "javascript-typescript");  // unknown id: the extension
  EXPECT_EQ(fim_language("", "Makefile"), "");
  EXPECT_EQ(fim_language("", ".bashrc"), "");
  EXPECT_EQ(fim_language("", ""), "");
}

TEST(FimStop, StopWordsPerLanguage) {
  const auto py = language_stop_words("python");
  for (const char* w : {"\n#", "\ndef", "\nfrom", "\nclass", "\nimport", "\n\n"}) EXPECT_TRUE(has(py, w)) << w;
  EXPECT_FALSE(has(py, "\nfn"));
  const auto rs = language_stop_words("rust");
  for (const char* w : {"\n//", "\nfn", "\nimpl", "\ntrait", "\npub", "\nuse", "\n\n"}) EXPECT_TRUE(has(rs, w)) << w;
  EXPECT_EQ(std::count(rs.begin(), rs.end(), "\ntrait"), 1);  // listed twice by Tabby, once here
  const auto js = language_stop_words("typescript");
  for (const char* w : {"\n//", "\nfunction", "\nexport", "\nconst", "\nlet", "\ninterface"}) EXPECT_TRUE(has(js, w)) << w;
  const auto go = language_stop_words("go");
  for (const char* w : {"\n//", "\nfunc", "\ntype", "\npackage"}) EXPECT_TRUE(has(go, w)) << w;
  const auto java = language_stop_words("java");
  for (const char* w : {"\npublic", "\nprivate", "\nclass", "\nimport"}) EXPECT_TRUE(has(java, w)) << w;
  const auto c = language_stop_words("c");
  for (const char* w : {"\ntypedef", "\nstruct", "\nstatic"}) EXPECT_TRUE(has(c, w)) << w;
  EXPECT_FALSE(has(c, "\ntemplate"));
  const auto cpp = language_stop_words("cpp");
  for (const char* w : {"\ntemplate", "\nnamespace", "\nclass", "\n//"}) EXPECT_TRUE(has(cpp, w)) << w;
  const auto lua = language_stop_words("lua");
  EXPECT_TRUE(has(lua, "\n--"));
  EXPECT_EQ(language_stop_words("cobol"), std::vector<std::string>{"\n\n"});
  EXPECT_EQ(language_stop_words(""), std::vector<std::string>{"\n\n"});
  for (const char* l : {"python", "rust", "java", "kotlin", "javascript", "go", "ruby", "c", "cpp", "csharp", "php",
                        "lua", "scala"})
    for (const auto& w : language_stop_words(l)) EXPECT_TRUE(w.starts_with("\n") && w.size() >= 2) << l;
}

struct Case {
  const char* language;
  const char* generated;
  const char* want;
};

TEST(FimStop, CompletionEndsAtTheLanguagesStopWords) {
  const Case cases[] = {
      {"python", "    return a + b\ndef other():\n    pass", "    return a + b"},
      {"python", "    x = 1\n# comment at top level", "    x = 1"},
      {"python", "    x = 1\n    # indented comment\n    y = 2", "    x = 1\n    # indented comment\n    y = 2"},
      {"python", "    x = 1\n\n    y = 2", "    x = 1"},
      {"rust", "    x + 1\n}\nfn main() {}", "    x + 1\n}"},
      {"rust", "    x + 1\n}\nimpl Foo {}", "    x + 1\n}"},
      {"go", "\treturn n\n}\nfunc main() {", "\treturn n\n}"},
      {"javascript", "  return 1;\n}\nexport default f;", "  return 1;\n}"},
      {"typescript", "  return 1;\n}\ninterface X {}", "  return 1;\n}"},
      {"java", "        return 1;\n    }\npublic class B {}", "        return 1;\n    }"},
      {"c", "  return 0;\n}\nstatic int g(void);", "  return 0;\n}"},
      {"cpp", "  return 0;\n}\ntemplate <typename T> T h();", "  return 0;\n}"},
      {"cpp", "  return 0;\n}\n// next", "  return 0;\n}"},
      {"cobol", "a\nb\ndef c", "a\nb\ndef c"},  // unknown language: only "\n\n"
      {"cobol", "a\n\nb", "a"},
  };
  for (const auto& c : cases) {
    const auto rules = fim_stop_rules(qwen3(), c.language, "", "");
    EXPECT_FALSE(rules.single_line);
    EXPECT_EQ(finish_completion(c.generated, rules, ""), c.want) << c.language << ": " << c.generated;
  }
}

TEST(FimStop, RunbookFibonacci) {
  const auto rules = fim_stop_rules(qwen3(), "python", "", "");
  EXPECT_EQ(finish_completion("if n <= 1:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\n\n"
                              "def main():\n",
                              rules, ""),
            "if n <= 1:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)");
}

TEST(FimStop, ScanHoldsBackWhatCouldBecomeAStopWord) {
  const std::vector<std::string> stops = {"\ndef", "\n\n"};
  const auto scan = [&](std::string_view t) { return scan_stop_words(t, stops); };
  EXPECT_FALSE(scan("abc").stopped);
  EXPECT_EQ(scan("abc").keep, 3u);
  EXPECT_EQ(scan("abc\n").keep, 3u);
  EXPECT_EQ(scan("abc\nde").keep, 3u);
  EXPECT_EQ(scan("abc\nx").keep, 5u);
  EXPECT_TRUE(scan("abc\ndef").stopped);
  EXPECT_EQ(scan("abc\ndef").keep, 3u);
  EXPECT_TRUE(scan("a\n\nb\ndef").stopped);
  EXPECT_EQ(scan("a\n\nb\ndef").keep, 1u);  // the first occurrence of any stop word
  EXPECT_EQ(scan("").keep, 0u);
}

TEST(FimStop, StreamingMatchesTheFinalCut) {
  // Text arrives a few bytes at a time; what is streamed never runs past the final completion and
  // never shows a stop word.
  std::mt19937 rng(3);
  const char alphabet[] = {'a', 'd', 'e', 'f', ' ', '\n', '#'};
  const auto stops = language_stop_words("python");
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (int i = 0; i < 40; ++i) text += alphabet[rng() % std::size(alphabet)];
    const StopScan final_scan = scan_stop_words(text, stops);
    const std::string want = text.substr(0, final_scan.stopped ? final_scan.keep : text.size());
    size_t streamed = 0;
    bool stopped = false;
    for (size_t n = 0; n <= text.size() && !stopped; n += 1 + rng() % 3) {
      const StopScan s = scan_stop_words(std::string_view(text).substr(0, n), stops);
      ASSERT_GE(s.keep, streamed) << text;      // never takes back what was sent
      ASSERT_LE(s.keep, want.size()) << text;   // never sends what the final cut drops
      streamed = s.keep;
      stopped = s.stopped;
      if (stopped) ASSERT_EQ(s.keep, want.size()) << text;
    }
    for (const auto& w : stops) ASSERT_EQ(want.find(w), std::string::npos) << text;
  }
}

// ---- single-line mode -------------------------------------------------------------------------

TEST(FimSingleLine, Decisions) {
  EXPECT_FALSE(fim_single_line(""));
  EXPECT_FALSE(fim_single_line("\nprint(x)\n"));
  EXPECT_FALSE(fim_single_line(")\n    return x\n"));
  EXPECT_FALSE(fim_single_line(")]};:,  \n"));
  EXPECT_FALSE(fim_single_line("   \t"));
  EXPECT_FALSE(fim_single_line("\r\nfoo"));
  EXPECT_FALSE(fim_single_line("\xe2\x80\x94)"));  // an em dash is not a word character
  EXPECT_TRUE(fim_single_line("x)"));
  EXPECT_TRUE(fim_single_line(" + 1;\n"));
  EXPECT_TRUE(fim_single_line("_"));
  EXPECT_TRUE(fim_single_line("0]"));
  EXPECT_TRUE(fim_single_line(") # done\n"));
  EXPECT_TRUE(fim_single_line("\xc3\xa9)"));           // é
  EXPECT_TRUE(fim_single_line("\xe5\x90\x8d\xe5\x89\x8d)"));  // 名前
}

TEST(FimSingleLine, StopsAtTheFirstNewline) {
  const auto rules = fim_stop_rules(qwen3(), "python", "a.py", "foo)\nnext()\n");
  EXPECT_TRUE(rules.single_line);
  EXPECT_TRUE(has(rules.stop_words, "\n"));
  EXPECT_EQ(finish_completion("bar, \nmore lines\n", rules, "foo)\nnext()\n"), "bar, ");
  const auto multi = fim_stop_rules(qwen3(), "python", "a.py", ")\nnext()\n");
  EXPECT_FALSE(multi.single_line);
  EXPECT_FALSE(has(multi.stop_words, "\n"));
  FimStopRules manual;  // the single-line rule holds without "\n" among the stop words too
  manual.single_line = true;
  EXPECT_EQ(finish_completion("one\ntwo", manual, "x"), "one");
}

// ---- suffix overlap ---------------------------------------------------------------------------

TEST(FimOverlap, TrimsWhatTheSuffixAlreadyHas) {
  struct T {
    const char* completion;
    const char* suffix;
    const char* want;
  };
  const T cases[] = {
      {"x)", ")", "x"},
      {"x)", ")\n", "x"},
      {"a, b)", ")\n    return\n", "a, b"},
      {"a))", "))", "a"},
      {"a)", "))", "a"},
      {"hello\";", "\";\n", "hello"},
      {"    return 1\n}", "\n}\n", "    return 1"},
      {"    return 1\n}\n", "\n}\n", "    return 1"},
      {"  if (x) {\n    y();\n  }\n}", "\n}", "  if (x) {\n    y();\n  }"},
      {"y = 1\nreturn y", "\nreturn y\n", "y = 1"},
      {"\xc3\xa9t\xc3\xa9)", ")", "\xc3\xa9t\xc3\xa9"},
      {")", ")", ""},
      {"greeting, name)", "name)\n", "greeting, "},
  };
  for (const auto& c : cases) EXPECT_EQ(trim_suffix_overlap(c.completion, c.suffix), c.want) << c.completion;
}

TEST(FimOverlap, KeepsWhatTheSuffixDoesNotRepeat) {
  struct T {
    const char* completion;
    const char* suffix;
  };
  const T cases[] = {
      {"bar()", ")"},                       // its ")" closes its own "("
      {"print(len(x))", ")"},               // balanced: the suffix's ")" is still needed
      {"  if (x) {\n    y();\n}", "\n}"},  // its "}" closes its own "{"
      {"a", "abc"},                         // a word that goes on in the suffix's line
      {"ab", "b c"},
      {"x", ""},
      {"", ")"},
      {"x ", " "},
      {"x\n", "\n"},
      {"total", "tal = 0\n"},
      {"x + 1  ", "  # comment"},  // the repeat is only spaces
  };
  for (const auto& c : cases) EXPECT_EQ(trim_suffix_overlap(c.completion, c.suffix), c.completion) << c.completion;
}

TEST(FimOverlap, FinishCombinesStopAndTrim) {
  const std::string suffix = ")\n\nprint(result)\n";
  const auto rules = fim_stop_rules(qwen3(), "python", "main.py", suffix);
  EXPECT_FALSE(rules.single_line);  // ")" alone is no word
  EXPECT_EQ(finish_completion("a, b)\n\ndef g():\n", rules, suffix), "a, b");
  const std::string line_suffix = "name)\n";  // print(<cursor>name)
  const auto one = fim_stop_rules(qwen3(), "python", "main.py", line_suffix);
  EXPECT_TRUE(one.single_line);
  EXPECT_EQ(finish_completion("greeting, name)\nfoo", one, line_suffix), "greeting, ");
}

TEST(FimIndent, TrailingIndentOnlyOnABlankCursorLine) {
  EXPECT_EQ(fim_trailing_indent("def f():\n    "), "    ");
  EXPECT_EQ(fim_trailing_indent("def f():\n\t"), "\t");
  EXPECT_EQ(fim_trailing_indent("    "), "    ");
  EXPECT_EQ(fim_trailing_indent("def f():\n    x = "), "");
  EXPECT_EQ(fim_trailing_indent("def f():\n"), "");
  EXPECT_EQ(fim_trailing_indent(""), "");
}

TEST(FimIndent, DropsOnlyTheRepeatedPart) {
  EXPECT_EQ(fim_drop_indent("    return a", "    "), "return a");
  EXPECT_EQ(fim_drop_indent("  return a", "    "), "return a");  // dedented: what the editor has stays
  EXPECT_EQ(fim_drop_indent("return a", "    "), "return a");
  EXPECT_EQ(fim_drop_indent("        x", "    "), "    x");  // a deeper block keeps its extra indent
  EXPECT_EQ(fim_drop_indent("\tx", "    "), "\tx");
  EXPECT_EQ(fim_drop_indent("", "    "), "");
}

TEST(FimIndent, DropsARepeatOfTheCursorLine) {
  EXPECT_EQ(fim_drop_repeated_line("    return len(x)", "def f(x):\n    ret"), "urn len(x)");
  EXPECT_EQ(fim_drop_repeated_line("urn len(x)", "def f(x):\n    ret"), "urn len(x)");  // no repeat
  EXPECT_EQ(fim_drop_repeated_line("    ret", "def f(x):\n    ret"), "    ret");  // nothing new: kept
  EXPECT_EQ(fim_drop_repeated_line("xx = 1", "x"), "xx = 1");             // one character is no line
  EXPECT_EQ(fim_drop_repeated_line("    return 1", "def f():\n    "), "    return 1");  // blank line: indent rule
  EXPECT_EQ(fim_drop_repeated_line("import os", "import"), " os");
}

TEST(FimIndent, ACutCompletionKeepsItsCompleteLines) {
  EXPECT_EQ(fim_drop_unfinished_line("a = 1\n    for _ in range(3, n"), "a = 1");
  EXPECT_EQ(fim_drop_unfinished_line("a = 1\n\n    for x"), "a = 1");
  EXPECT_EQ(fim_drop_unfinished_line("return a + b"), "return a + b");  // one line: all of it
  EXPECT_EQ(fim_drop_unfinished_line(""), "");
}

}  // namespace
}  // namespace tessera::server
