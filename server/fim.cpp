// FIM prompt builder: Qwen file-level and repo-level layouts, budgeted in tokens (see fim.h).
#include "server/fim.h"

#include <algorithm>

#include "core/error.h"

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

std::string repo_name_from_git_url(std::string_view url) {
  while (!url.empty() && (url.back() == '/' || url.back() == ' ' || url.back() == '\n' || url.back() == '\r'))
    url.remove_suffix(1);
  while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
  const size_t cut = url.find_last_of("/:");
  if (cut != std::string_view::npos) url.remove_prefix(cut + 1);
  if (url.ends_with(".git")) url.remove_suffix(4);
  return std::string(url);
}

}  // namespace tessera::server
