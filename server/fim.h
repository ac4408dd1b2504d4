// FIM (fill-in-the-middle) prompts for code completion: the Qwen file-level and repo-level layouts,
// budgeted in tokens, with user text never turned into special tokens; and the rules that end and
// clean up the completion (stop tokens, per-language stop words, single-line mode, suffix overlap).
// Facts: shared reference "Qwen FIM formats" and "HTTP APIs" (Tabby segments, llama.cpp input_extra).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tessera::server {

// One piece of repository context: Tabby's declarations, relevant_snippets_from_changed_files,
// relevant_snippets_from_recently_opened_files and clipboard; llama.cpp's input_extra
// {filename, text}. An empty filepath gets FimOptions::snippet_path.
struct FimSnippet {
  std::string filepath;
  std::string body;
};

struct FimRequest {
  std::string prefix;
  std::string suffix;
  std::string filepath;  // the file being edited; "" when the client does not say
  std::string language;  // Tabby's language id; "" = guess from filepath's extension
  std::string repo;      // repository name or git URL (see repo_name_from_git_url); "" = unknown
  // Extra context in priority order: earlier snippets are kept first when the budget is short.
  // They appear in the prompt in this order.
  std::vector<FimSnippet> extra;
  // Prompt tokens allowed: context size minus the tokens reserved for the answer.
  int32_t budget = 0;
};

struct FimOptions {
  // Share of the code budget for the prefix when prefix and suffix do not both fit (3:1, as
  // llama.cpp's /infill); a side that needs less gives the rest to the other.
  double prefix_share = 0.75;
  // Most tokens prefix + suffix may take together (0 = the whole budget), to leave room for extra
  // context in long files. Extra context only gets what the code leaves.
  int32_t max_code_tokens = 0;
  // A snippet that does not fit whole is cut (its head kept) only if at least this many of its
  // body tokens fit; otherwise it is dropped.
  int32_t min_snippet_tokens = 16;
  // Placeholders llama-server uses when the client sends no names.
  std::string repo_name = "myproject";
  std::string current_path = "filename";
  std::string snippet_path = "tmp";
};

enum class FimLayout {
  File,  // <|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>
  Repo,  // <|repo_name|>{repo}\n(<|file_sep|>{path}\n{body}\n)*<|file_sep|>{filepath}\n + File
};

struct FimPrompt {
  std::vector<int32_t> tokens;  // never more than the request's budget
  FimLayout layout = FimLayout::File;
  int32_t prefix_tokens = 0;        // tokens of the prefix in the prompt (its tail)
  int32_t prefix_tokens_total = 0;  // tokens of the whole prefix
  int32_t suffix_tokens = 0;        // tokens of the suffix in the prompt (its head)
  int32_t suffix_tokens_total = 0;
  size_t prefix_offset = 0;  // the prompt holds request.prefix.substr(prefix_offset)
  size_t suffix_bytes = 0;   // the prompt holds request.suffix.substr(0, suffix_bytes)
  int32_t extra_tokens = 0;  // tokens before <|fim_prefix|>: repo name, snippets, current path
  int32_t snippets_kept = 0;  // whole snippets in the prompt
  int32_t snippets_cut = 0;   // snippets in the prompt with their body's tail cut
  int32_t snippets_dropped = 0;
  bool truncated = false;  // any of prefix, suffix or extra context left out (in part or whole)
};

// Builds FIM prompts for one tokenizer; cheap to call, immutable after construction (safe to share
// between threads).
class FimPromptBuilder {
 public:
  // Throws tessera::Error when the vocabulary lacks <|fim_prefix|>, <|fim_suffix|> or
  // <|fim_middle|>. Repo-level prompts need <|repo_name|> and <|file_sep|> as well; without them
  // every prompt is file-level.
  explicit FimPromptBuilder(const tok::Tokenizer& tok);

  // Throws tessera::Error when the budget cannot hold the three FIM tokens.
  FimPrompt build(const FimRequest& req, const FimOptions& opt = {}) const;

  // Tokens of user text as plain text: no special token of the vocabulary appears, also where the
  // text spells one ("<|fim_prefix|>", "<think>", ...); decode() gives the text back byte for byte.
  std::vector<int32_t> encode_text(std::string_view text) const;

  const tok::Tokenizer& tokenizer() const { return *tok_; }

 private:
  const tok::Tokenizer* tok_;
  int32_t fim_pre_, fim_suf_, fim_mid_;
  int32_t repo_name_ = -1, file_sep_ = -1;  // -1 when the vocabulary has none
  std::vector<std::string> specials_;       // texts of the CONTROL / USER_DEFINED tokens
};

// How a FIM completion ends.
struct FimStopRules {
  std::vector<int32_t> stop_tokens;     // sorted: the model's end-of-generation tokens and FIM tokens
  std::vector<std::string> stop_words;  // the completion ends before the first of them
  bool single_line = false;             // "\n" is among the stop words
};

// Canonical language id ("python", "javascript-typescript", "cpp", ...) for Tabby's language id
// (its aliases too: "typescriptreact", "c++", ...) or, when that is empty or unknown, for the
// file's extension; "" when neither is known.
std::string_view fim_language(std::string_view language, std::string_view filepath = {});

// Tabby's stop words for a language: "\n" + its line comment, "\n" + each top-level keyword, and
// "\n\n" (the only one for a language not in the table).
std::vector<std::string> language_stop_words(std::string_view language);

// Single-line mode: the rest of the cursor's line (the suffix up to its first newline) holds a
// word character (a letter, digit or '_'), so the completion must fit in front of it.
bool fim_single_line(std::string_view suffix);

// Stop rules for one request: the tokenizer's end-of-generation set plus the FIM tokens, the
// language's stop words (language or filepath, see fim_language) and "\n" in single-line mode.
FimStopRules fim_stop_rules(const tok::Tokenizer& tok, std::string_view language, std::string_view filepath,
                            std::string_view suffix);

// Where generated text stands against stop words. stopped: a stop word occurs, and keep is where
// the first occurrence starts (the completion is text[0, keep)). Otherwise keep is how much may be
// streamed now: the text less a tail that could still grow into a stop word.
struct StopScan {
  bool stopped = false;
  size_t keep = 0;
};
StopScan scan_stop_words(std::string_view text, const std::vector<std::string>& stops);

// Removes text at the end of the completion that repeats the start of the suffix, such as a
// closing ")" the editor already has after the cursor or a "}" line below it. The repeated part
// must hold a non-space character and either end at the end of a suffix line or hold no word
// character; a repeated closing bracket goes only when the completion without it leaves no bracket
// open (so "x)" before ")" loses its ")", "bar()" before ")" stays).
std::string trim_suffix_overlap(std::string_view completion, std::string_view suffix);

// The completion as the client gets it: cut at the first stop word (the single-line rule
// included), then trim_suffix_overlap.
std::string finish_completion(std::string_view generated, const FimStopRules& rules, std::string_view suffix);

// The indentation at the end of the prefix when the cursor's line holds only spaces and tabs ("" else).
// Models tokenize "\n    if" as "\n", "   ", " if" and rarely saw a prompt ending in a bare indentation
// token, so they indent again: a server leaves it out of the prompt and takes it off the completion.
std::string fim_trailing_indent(std::string_view prefix);
// The completion less the leading part of `indent` it repeats (the editor already has it).
std::string_view fim_drop_indent(std::string_view completion, std::string_view indent);
// The completion less a repeat of the cursor's line: models asked to continue "    ret" often
// write the whole line again ("    return x"); the editor has "    ret", so "urn x" is what is new.
// Only a repeat of the whole line text before the cursor (at least 2 characters, not only
// whitespace) is dropped.
std::string_view fim_drop_repeated_line(std::string_view completion, std::string_view prefix);

// A multi-line completion cut by the token limit ends in an unfinished line ("for _ in range(3, n"):
// the editor would get broken code, so it keeps only the complete lines (a one-line one is kept).
std::string_view fim_drop_unfinished_line(std::string_view completion);

// The repository name in a git URL or path: "https://github.com/o/name.git" -> "name",
// "git@host:o/name" -> "name"; a bare name is returned as is.
std::string repo_name_from_git_url(std::string_view url);

}  // namespace tessera::server
