// FIM (fill-in-the-middle) prompts for code completion: the Qwen file-level and repo-level layouts,
// budgeted in tokens, with user text never turned into special tokens.
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

// The repository name in a git URL or path: "https://github.com/o/name.git" -> "name",
// "git@host:o/name" -> "name"; a bare name is returned as is.
std::string repo_name_from_git_url(std::string_view url);

}  // namespace tessera::server
