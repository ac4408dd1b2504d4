// FIM prompt builder (Qwen file-level and repo-level layouts, budgeted in tokens) and the rules that
// end and clean up a completion (see fim.h).
#include "server/fim.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tessera::server {
namespace {

bool is_continuation(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }

// Paths and repo names sit on one line of the layout: a newline in them would forge a new line.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

// Stop-word table after Tabby's languages.toml: names (the first is the canonical id), file
// extensions, line comment, top-level keywords; all space-separated.
struct LanguageSpec {
  std::string_view names, exts, comment, keywords;
};
constexpr LanguageSpec kLanguages[] = {
    {"python py", "py pyi", "#", "def from class import"},
    {"rust rs", "rs", "//", "fn trait impl enum pub extern static unsafe use"},
    {"java", "java", "//",
     "abstract public private class const exports extends implements static import interface module package var "
     "enum return"},
    {"kotlin kt", "kt kts", "//",
     "abstract public private companion class data const actual expect sealed suspend fun import interface "
     "package var val enum"},
    {"javascript-typescript javascript typescript javascriptreact typescriptreact js ts jsx tsx",
     "js ts jsx tsx mjs mts cjs", "//",
     "abstract async class const export function interface module package type var enum let"},
    {"go golang", "go", "//", "func interface struct package type import var const"},
    {"ruby rb", "rb", "#", "begin class def end ensure include module require rescue self"},
    {"c", "c h", "//", "const enum extern inline register static struct typedef union volatile"},
    {"cpp c++ cxx", "cpp hpp c++ h++ cc hh cxx hxx C H tcc ipp", "//",
     "auto class const concept enum extern inline namespace register static struct template typedef union "
     "volatile"},
    {"csharp c# cs", "cs", "//", "class struct enum interface abstract static extern namespace using var dynamic async"},
    {"php", "php php3 php4 php5 phps phpt", "//",
     "abstract class const declare extends final finally function global implements include_once include "
     "interface namespace private protected public require_once require static trait use"},
    {"lua", "lua", "--",
     "and break do else elseif end false for function if in local nil not or repeat return then true until while"},
    {"scala", "scala sbt", "//",
     "abstract case class def do else enum extends final for given if implicit import lazy match new object "
     "override package private protected return sealed then throw trait try type val var while with yield"},
};

bool in_list(std::string_view list, std::string_view word) {
  while (!list.empty()) {
    const size_t sp = list.find(' ');
    if (list.substr(0, sp) == word) return true;
    if (sp == std::string_view::npos) break;
    list.remove_prefix(sp + 1);
  }
  return false;
}

std::string_view first_word(std::string_view list) { return list.substr(0, list.find(' ')); }

bool is_word_cp(uint32_t cp) { return cp == '_' || (tok::cp_class(cp) & (tok::kLetter | tok::kNumber)) != 0; }

bool has_word_char(std::string_view s) {
  size_t i = 0;
  while (i < s.size())
    if (is_word_cp(tok::next_code_point(s, i, nullptr))) return true;
  return false;
}

int bracket_balance(std::string_view s) {
  int b = 0;
  for (char c : s) {
    if (c == '(' || c == '[' || c == '{') ++b;
    if (c == ')' || c == ']' || c == '}') --b;
  }
  return b;
}

}  // namespace

FimPromptBuilder::FimPromptBuilder(const tok::Tokenizer& tok) : tok_(&tok) {
  const auto pick = [&](std::optional<int32_t> id, std::string_view text) -> std::optional<int32_t> {
    if (id) return id;
    return tok.find_token(text);
  };
  const auto pre = pick(tok.fim_prefix(), "<|fim_prefix|>");
  const auto suf = pick(tok.fim_suffix(), "<|fim_suffix|>");
  const auto mid = pick(tok.fim_middle(), "<|fim_middle|>");
  if (!pre || !suf || !mid) throw_error("the model's vocabulary has no FIM tokens (<|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>)");
  fim_pre_ = *pre;
  fim_suf_ = *suf;
  fim_mid_ = *mid;
  const auto rep = pick(tok.repo_name(), "<|repo_name|>");
  const auto sep = pick(tok.file_sep(), "<|file_sep|>");
  if (rep && sep) {
    repo_name_ = *rep;
    file_sep_ = *sep;
  }
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_control(id) && !tok.token_text(id).empty()) specials_.push_back(tok.token_text(id));
}

std::vector<int32_t> FimPromptBuilder::encode_text(std::string_view text) const {
  const auto is_special = [&](int32_t id) { return tok_->is_control(id); };
  auto ids = tok_->encode(text, /*parse_special=*/false, /*add_bos=*/false);
  if (std::none_of(ids.begin(), ids.end(), is_special)) return ids;
  // The text spells special tokens the tokenizer still matches (USER_DEFINED ones such as
  // <|fim_prefix|> in Qwen's vocabulary): encode the text between them normally and each spelled
  // token as its first byte plus the rest, which no longer matches at that place.
  std::vector<int32_t> out;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    size_t best = 0;
    for (const auto& s : specials_)
      if (s.size() > best && text.substr(i).starts_with(s)) best = s.size();
    if (best == 0) {
      ++i;
      continue;
    }
    append(out, tok_->encode(text.substr(start, i - start), false, false));
    out.push_back(tok_->byte_token(static_cast<uint8_t>(text[i])));
    append(out, encode_text(text.substr(i + 1, best - 1)));
    i += best;
    start = i;
  }
  append(out, tok_->encode(text.substr(start), false, false));
  if (std::any_of(out.begin(), out.end(), is_special))
    throw_error("internal: plain-text encoding produced a special token");
  return out;
}

FimPrompt FimPromptBuilder::build(const FimRequest& req, const FimOptions& opt) const {
  constexpr int32_t kFimTokens = 3;
  if (req.budget < kFimTokens)
    throw_error("a FIM prompt needs at least {} tokens, the budget is {}", kFimTokens, req.budget);
  const auto piece_len = [&](int32_t id) { return tok_->token_to_piece(id).size(); };

  FimPrompt out;
  const auto pre = encode_text(req.prefix);
  const auto suf = encode_text(req.suffix);
  const auto total_p = static_cast<int32_t>(pre.size());
  const auto total_s = static_cast<int32_t>(suf.size());
  out.prefix_tokens_total = total_p;
  out.suffix_tokens_total = total_s;

  // Prefix and suffix first: the tail of the prefix and the head of the suffix.
  int32_t code = req.budget - kFimTokens;
  if (opt.max_code_tokens > 0) code = std::min(code, opt.max_code_tokens);
  int32_t np = total_p, ns = total_s;
  if (np + ns > code) {
    const int32_t share_p = std::clamp(static_cast<int32_t>(code * opt.prefix_share), 0, code);
    const int32_t share_s = code - share_p;
    if (np <= share_p) {
      ns = code - np;
    } else if (ns <= share_s) {
      np = code - ns;
    } else {
      np = share_p;
      ns = share_s;
    }
  }
  // Cut at whole characters: a byte-level token may hold part of a multi-byte character.
  size_t kept_p = 0;
  for (int32_t k = 0; k < np; ++k) kept_p += piece_len(pre[total_p - 1 - k]);
  if (kept_p > req.prefix.size()) throw_error("internal: prefix tokens do not decode to the prefix");
  size_t off = req.prefix.size() - kept_p;
  while (np > 0 && off < req.prefix.size() && is_continuation(req.prefix[off])) {
    off += piece_len(pre[total_p - np]);
    --np;
  }
  size_t sb = 0;
  for (int32_t k = 0; k < ns; ++k) sb += piece_len(suf[k]);
  while (ns > 0 && sb < req.suffix.size() && is_continuation(req.suffix[sb])) {
    --ns;
    sb -= piece_len(suf[ns]);
  }
  out.prefix_tokens = np;
  out.suffix_tokens = ns;
  out.prefix_offset = off;
  out.suffix_bytes = sb;

  // Extra context gets what is left, in the client's priority order.
  std::vector<int32_t> extra;
  const auto n_snippets = static_cast<int32_t>(req.extra.size());
  if (repo_name_ >= 0 && n_snippets > 0) {
    const int32_t left = req.budget - kFimTokens - np - ns;
    std::string repo = repo_name_from_git_url(req.repo);
    if (repo.empty()) repo = opt.repo_name;
    std::vector<int32_t> header{repo_name_};
    append(header, encode_text(one_line(repo) + "\n"));
    std::vector<int32_t> current{file_sep_};
    append(current, encode_text(one_line(req.filepath.empty() ? opt.current_path : req.filepath) + "\n"));
    int64_t room = int64_t{left} - static_cast<int64_t>(header.size() + current.size());
    const auto newline = encode_text("\n");
    std::vector<int32_t> bodies;
    for (const auto& sn : req.extra) {
      if (sn.body.empty() || room <= 0) {
        ++out.snippets_dropped;
        continue;
      }
      std::vector<int32_t> head{file_sep_};
      append(head, encode_text(one_line(sn.filepath.empty() ? opt.snippet_path : sn.filepath) + "\n"));
      std::string body = sn.body;
      if (body.back() != '\n') body += '\n';
      const auto b = encode_text(body);
      const auto whole = static_cast<int64_t>(head.size() + b.size());
      if (whole <= room) {
        append(bodies, head);
        append(bodies, b);
        room -= whole;
        ++out.snippets_kept;
        continue;
      }
      // The head of the body, whole characters, then a newline.
      auto fit = static_cast<int32_t>(room - static_cast<int64_t>(head.size() + newline.size()));
      if (fit < std::max(opt.min_snippet_tokens, 1)) {
        ++out.snippets_dropped;
        continue;
      }
      size_t bytes = 0;
      for (int32_t k = 0; k < fit; ++k) bytes += piece_len(b[k]);
      while (fit > 0 && bytes < body.size() && is_continuation(body[bytes])) {
        --fit;
        bytes -= piece_len(b[fit]);
      }
      append(bodies, head);
      bodies.insert(bodies.end(), b.begin(), b.begin() + fit);
      append(bodies, newline);
      room -= static_cast<int64_t>(head.size() + newline.size()) + fit;
      ++out.snippets_cut;
    }
    if (out.snippets_kept + out.snippets_cut > 0) {
      out.layout = FimLayout::Repo;
      extra = std::move(header);
      append(extra, bodies);
      append(extra, current);
    }
  } else {
    out.snippets_dropped = n_snippets;
  }
  out.extra_tokens = static_cast<int32_t>(extra.size());

  out.tokens = std::move(extra);
  out.tokens.reserve(out.tokens.size() + kFimTokens + np + ns);
  out.tokens.push_back(fim_pre_);
  out.tokens.insert(out.tokens.end(), pre.end() - np, pre.end());
  out.tokens.push_back(fim_suf_);
  out.tokens.insert(out.tokens.end(), suf.begin(), suf.begin() + ns);
  out.tokens.push_back(fim_mid_);
  out.truncated = np < total_p || ns < total_s || out.snippets_cut > 0 || out.snippets_dropped > 0;
  return out;
}

std::string_view fim_language(std::string_view language, std::string_view filepath) {
  std::string lower(language);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& l : kLanguages)
    if (!lower.empty() && in_list(l.names, lower)) return first_word(l.names);
  const size_t slash = filepath.find_last_of("/\\");
  const std::string_view name = slash == std::string_view::npos ? filepath : filepath.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  const std::string_view ext = name.substr(dot + 1);
  for (const auto& l : kLanguages)
    if (!ext.empty() && in_list(l.exts, ext)) return first_word(l.names);
  return {};
}

std::vector<std::string> language_stop_words(std::string_view language) {
  std::vector<std::string> out;
  const std::string_view id = fim_language(language);
  for (const auto& l : kLanguages) {
    if (first_word(l.names) != id || id.empty()) continue;
    out.push_back("\n" + std::string(l.comment));
    std::string_view kw = l.keywords;
    while (!kw.empty()) {
      const size_t sp = kw.find(' ');
      const std::string word = "\n" + std::string(kw.substr(0, sp));
      if (std::find(out.begin(), out.end(), word) == out.end()) out.push_back(word);
      if (sp == std::string_view::npos) break;
      kw.remove_prefix(sp + 1);
    }
  }
  out.push_back("\n\n");
  return out;
}

bool fim_single_line(std::string_view suffix) { return has_word_char(suffix.substr(0, suffix.find('\n'))); }

FimStopRules fim_stop_rules(const tok::Tokenizer& tok, std::string_view language, std::string_view filepath,
                            std::string_view suffix) {
  FimStopRules r;
  r.stop_tokens = tok.eog_ids();
  for (const auto id : {tok.fim_prefix(), tok.fim_suffix(), tok.fim_middle(), tok.fim_pad(), tok.repo_name(),
                        tok.file_sep()})
    if (id) r.stop_tokens.push_back(*id);
  for (const auto* text : {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|repo_name|>",
                           "<|file_sep|>", "<|endoftext|>"})
    if (const auto id = tok.find_token(text); id && tok.is_control(*id)) r.stop_tokens.push_back(*id);
  std::sort(r.stop_tokens.begin(), r.stop_tokens.end());
  r.stop_tokens.erase(std::unique(r.stop_tokens.begin(), r.stop_tokens.end()), r.stop_tokens.end());
  const std::string_view id = fim_language(language, filepath);
  r.stop_words = language_stop_words(id);
  r.single_line = fim_single_line(suffix);
  if (r.single_line) r.stop_words.insert(r.stop_words.begin(), "\n");
  return r;
}

StopScan scan_stop_words(std::string_view text, const std::vector<std::string>& stops) {
  StopScan r;
  size_t first = std::string_view::npos;
  for (const auto& s : stops)
    if (!s.empty()) first = std::min(first, text.find(s));
  if (first != std::string_view::npos) return {true, first};
  // Hold back the longest tail that is the start of a stop word.
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t h = std::min(s.size() - (s.empty() ? 0 : 1), text.size()); h > hold; --h)
      if (s.starts_with(text.substr(text.size() - h))) {
        hold = h;
        break;
      }
  r.keep = text.size() - hold;
  return r;
}

std::string trim_suffix_overlap(std::string_view completion, std::string_view suffix) {
  for (size_t k = std::min(completion.size(), suffix.size()); k > 0; --k) {
    const std::string_view overlap = suffix.substr(0, k);
    if (k < suffix.size() && is_continuation(suffix[k])) continue;
    if (!completion.ends_with(overlap)) continue;
    if (overlap.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;
    const bool line_end = k == suffix.size() || suffix[k] == '\n' || suffix[k] == '\r';
    if (!line_end && has_word_char(overlap)) continue;
    const std::string_view kept = completion.substr(0, completion.size() - k);
    if (overlap.find_first_of(")]}") != std::string_view::npos && bracket_balance(kept) > 0) continue;
    return std::string(kept);
  }
  return std::string(completion);
}

std::string finish_completion(std::string_view generated, const FimStopRules& rules, std::string_view suffix) {
  std::string_view text = generated;
  const StopScan scan = scan_stop_words(text, rules.stop_words);
  if (scan.stopped) text = text.substr(0, scan.keep);
  if (rules.single_line) text = text.substr(0, text.find('\n'));
  return trim_suffix_overlap(text, suffix);
}

std::string repo_name_from_git_url(std::string_view url) {
  while (!url.empty() && (url.back() == '/' || url.back() == ' ' || url.back() == '\n' || url.back() == '\r'))
    url.remove_suffix(1);
  while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
  const size_t cut = url.find_last_of("/:");
  if (cut != std::string_view::npos) url.remove_prefix(cut + 1);
  if (url.ends_with(".git")) url.remove_suffix(4);
  return std::string(url);
}

std::string fim_trailing_indent(std::string_view prefix) {
  const size_t nl = prefix.find_last_of('\n');
  const std::string_view line = prefix.substr(nl == std::string_view::npos ? 0 : nl + 1);
  if (line.empty() || line.find_first_not_of(" \t") != std::string_view::npos) return {};
  return std::string(line);
}

std::string_view fim_drop_indent(std::string_view completion, std::string_view indent) {
  size_t n = 0;
  while (n < indent.size() && n < completion.size() && completion[n] == indent[n]) ++n;
  return completion.substr(n);
}

std::string_view fim_drop_repeated_line(std::string_view completion, std::string_view prefix) {
  const size_t nl = prefix.find_last_of('\n');
  const std::string_view line = prefix.substr(nl == std::string_view::npos ? 0 : nl + 1);
  if (line.size() < 2 || line.find_first_not_of(" \t") == std::string_view::npos) return completion;
  if (completion.size() > line.size() && completion.substr(0, line.size()) == line) return completion.substr(line.size());
  return completion;
}

std::string_view fim_drop_unfinished_line(std::string_view completion) {
  const size_t nl = completion.find_last_of('\n');
  if (nl == std::string_view::npos) return completion;
  std::string_view kept = completion.substr(0, nl);
  while (!kept.empty() && (kept.back() == '\n' || kept.back() == ' ' || kept.back() == '\t' || kept.back() == '\r'))
    kept.remove_suffix(1);
  return kept;
}

}  // namespace tessera::server
