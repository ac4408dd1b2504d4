// Tokenizer: vocabulary and merges from GGUF, special-token splitting, encode and decode.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace tessera::tok {

namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Vocabulary string -> id: open addressing over ids, comparing against the vocabulary itself
// (no per-entry allocation; loading 150k tokens stays fast).
class VocabIndex {
 public:
  void build(const std::vector<std::string>& text) {
    text_ = &text;
    size_t cap = 16;
    while (cap < text.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    for (int32_t id = 0; id < static_cast<int32_t>(text.size()); ++id) {
      const size_t h = hash(text[id]);
      size_t k = h & (cap - 1);
      bool duplicate = false;
      while (slots_[k].id >= 0 && !duplicate) {
        duplicate = slots_[k].tag == static_cast<uint32_t>(h) && (*text_)[slots_[k].id] == text[id];  // first id wins
        k = (k + 1) & (cap - 1);
      }
      if (!duplicate) slots_[k] = {id, static_cast<uint32_t>(h)};
    }
  }
  std::optional<int32_t> find(std::string_view s) const {
    const size_t mask = slots_.size() - 1;
    const size_t h = hash(s);
    for (size_t k = h & mask; slots_[k].id >= 0; k = (k + 1) & mask)
      if (slots_[k].tag == static_cast<uint32_t>(h) && (*text_)[slots_[k].id] == s) return slots_[k].id;
    return std::nullopt;
  }

 private:
  struct Slot {
    int32_t id = -1;
    uint32_t tag = 0;  // low hash bits: most mismatches never touch the string
  };
  static size_t hash(std::string_view s) {
    const size_t h = std::hash<std::string_view>{}(s);
    return h ^ (h >> 32);
  }
  const std::vector<std::string>* text_ = nullptr;
  std::vector<Slot> slots_;
};

// Texts that mark end-of-generation and FIM roles when the metadata has no id for them.
constexpr std::string_view kEogTexts[] = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>",
                                          "<|end|>", "<end_of_turn>", "<EOT>", "<|end_of_text|>"};
constexpr std::string_view kFimPrefixTexts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>"};
constexpr std::string_view kFimSuffixTexts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>"};
constexpr std::string_view kFimMiddleTexts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"};
constexpr std::string_view kRepoNameTexts[] = {"<|repo_name|>", "<fim-repo>", "<repo_name>", "<REPO>"};
constexpr std::string_view kFileSepTexts[] = {"<|file_sep|>", "<file_sep>", "<SEP>"};

}  // namespace

struct TokenizerImpl {
  std::vector<std::string> text;    // [n_vocab] vocabulary strings as stored
  std::vector<TokenType> type;      // [n_vocab]
  std::vector<std::string> piece;   // [n_vocab] decoded bytes
  VocabIndex text_to_id;  // refers to `text`
  MergeTable merges;
  std::array<int32_t, 256> byte_token{};  // token of each single byte
  const PreTokenizer* pre = nullptr;
  std::string pre_name;
  std::vector<int32_t> specials;  // CONTROL / USER_DEFINED / UNKNOWN ids, longest text first
  bool add_bos = false;
  bool ignore_merges = false;  // llama-bpe (Llama 3): a piece that is a whole vocabulary entry is that token
  std::optional<int32_t> bos, eos, pad, fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  std::vector<int32_t> eog;  // sorted
  std::string chat_template;

  // Piece cache: raw piece bytes -> [offset, count) into cache_ids. Guarded by cache_mutex.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> cache;
  mutable std::vector<int32_t> cache_ids;

  bool is_special_type(int32_t id) const {
    const TokenType t = type[id];
    return t == TokenType::CONTROL || t == TokenType::USER_DEFINED || t == TokenType::UNKNOWN;
  }
  void encode_text(std::string_view s, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out, BpeScratch& scratch) const;
};

namespace {

std::optional<int32_t> id_from_meta(const gguf::File& f, std::string_view key, int32_t n_vocab) {
  const auto* v = f.find(key);
  if (!v) return std::nullopt;
  const int64_t id = f.get_int(key);
  if (id < 0 || id >= n_vocab) return std::nullopt;  // llama.cpp-converted files use -1 / out-of-range for "none"
  return static_cast<int32_t>(id);
}

std::optional<int32_t> id_from_texts(const TokenizerImpl& t, std::span<const std::string_view> texts) {
  for (const auto s : texts)
    if (auto id = t.text_to_id.find(s)) return id;
  return std::nullopt;
}

// Maps a vocabulary string through the inverse byte table (code points outside it keep their UTF-8).
std::string unmap_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const uint32_t cp = next_code_point(text, i, nullptr);
    const int b = code_point_to_byte(cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text.substr(start, i - start));
    }
  }
  return out;
}

// "<0x41>" -> 'A'; -1 when the text is not in that form.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (size_t k = 3; k < 5; ++k) {
    const char c = s[k];
    const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const gguf::File& f) {
  auto t = std::make_unique<TokenizerImpl>();
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2") throw_error("{}: tokenizer.ggml.model '{}' is not supported (only 'gpt2', byte-level BPE)", f.path(), model);
  t->pre_name = f.get_string_or("tokenizer.ggml.pre", "gpt2");
  if (t->pre_name == "default") t->pre_name = "gpt2";
  t->pre = find_pre_tokenizer(t->pre_name);
  // As llama.cpp (and HF's ignore_merges) for Llama 3's tokenizer: no merging when the piece is a token.
  t->ignore_merges = t->pre_name == "llama-bpe" || t->pre_name == "llama3";
  if (!t->pre) {
    std::string known;
    for (auto n : pre_tokenizer_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    throw_error("{}: tokenizer.ggml.pre '{}' is not supported (known: {})", f.path(), t->pre_name, known);
  }

  const auto& tokens = f.get_array("tokenizer.ggml.tokens");
  if (tokens.elem_type != gguf::ValueType::STRING) throw_error("{}: tokenizer.ggml.tokens is not an array of strings", f.path());
  const size_t n = tokens.strings.size();
  if (n == 0 || n > (1u << 30)) throw_error("{}: tokenizer.ggml.tokens has {} entries", f.path(), n);
  const auto n_vocab = static_cast<int32_t>(n);
  t->text = tokens.strings;
  t->type.assign(n, TokenType::NORMAL);
  if (const auto* tt = f.find("tokenizer.ggml.token_type")) {
    (void)tt;
    const auto& types = f.get_array("tokenizer.ggml.token_type");
    if (types.ints.size() != n)
      throw_error("{}: tokenizer.ggml.token_type has {} entries, tokens has {}", f.path(), types.ints.size(), n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t v = types.ints[i];
      if (v < 0 || v > 6) throw_error("{}: tokenizer.ggml.token_type[{}] = {} is not a token type", f.path(), i, v);
      t->type[i] = static_cast<TokenType>(v);
    }
  }
  t->text_to_id.build(t->text);

  // Single bytes: the token whose text is the byte's mapped code point.
  const auto& b2c = byte_to_code_point();
  int n_byte_tokens = 0;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, b2c[b]);
    const auto id = t->text_to_id.find(s);
    t->byte_token[b] = id ? *id : -1;  // SmolLM2 lacks a few control bytes: llama.cpp drops them from text
    if (id) ++n_byte_tokens;
  }
  if (n_byte_tokens < 128)  // a vocabulary that is not byte-level at all
    throw_error("{}: vocabulary has tokens for only {} of the 256 bytes (not a byte-level BPE vocabulary)", f.path(),
                n_byte_tokens);

  const auto& merges = f.get_array("tokenizer.ggml.merges");
  if (merges.elem_type != gguf::ValueType::STRING) throw_error("{}: tokenizer.ggml.merges is not an array of strings", f.path());
  t->merges.reserve(merges.strings.size());
  std::string joined;
  for (size_t r = 0; r < merges.strings.size(); ++r) {
    const std::string& m = merges.strings[r];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= m.size())
      throw_error("{}: tokenizer.ggml.merges[{}] = '{}' is not 'A B'", f.path(), r, m);
    const std::string_view a(m.data(), sp), b(m.data() + sp + 1, m.size() - sp - 1);
    joined.assign(a);
    joined.append(b);
    const auto ia = t->text_to_id.find(a), ib = t->text_to_id.find(b), ij = t->text_to_id.find(joined);
    // A merge whose parts or result are not tokens can never produce a token: skip it.
    if (!ia || !ib || !ij) continue;
    t->merges.insert(*ia, *ib, {static_cast<int32_t>(r), *ij});
  }

  t->add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", false);
  t->bos = id_from_meta(f, "tokenizer.ggml.bos_token_id", n_vocab);
  t->eos = id_from_meta(f, "tokenizer.ggml.eos_token_id", n_vocab);
  t->pad = id_from_meta(f, "tokenizer.ggml.padding_token_id", n_vocab);
  if (t->add_bos && !t->bos) throw_error("{}: add_bos_token is set but there is no valid bos_token_id", f.path());
  // Tokens found by their text act as CONTROL tokens (as in llama.cpp): the Qwen GGUFs store the
  // FIM tokens as USER_DEFINED, yet with special parsing off they must be plain text.
  const auto promote = [&](std::optional<int32_t> id) {
    if (id && t->type[*id] != TokenType::CONTROL) t->type[*id] = TokenType::CONTROL;
    return id;
  };
  const auto meta_or_text = [&](std::initializer_list<std::string_view> keys, std::span<const std::string_view> texts) {
    for (auto k : keys)
      if (auto id = id_from_meta(f, k, n_vocab)) return id;
    return promote(id_from_texts(*t, texts));
  };
  t->fim_pre = meta_or_text({"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"}, kFimPrefixTexts);
  t->fim_suf = meta_or_text({"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"}, kFimSuffixTexts);
  t->fim_mid = meta_or_text({"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"}, kFimMiddleTexts);
  t->fim_pad = meta_or_text({"tokenizer.ggml.fim_pad_token_id"}, kFimPadTexts);
  t->fim_rep = meta_or_text({"tokenizer.ggml.fim_rep_token_id"}, kRepoNameTexts);
  t->fim_sep = meta_or_text({"tokenizer.ggml.fim_sep_token_id"}, kFileSepTexts);

  // End of generation: eos / eot / eom from metadata, the usual end texts, and the FIM pad,
  // repo-name and file-separator tokens (a model that writes them has left the current file).
  const auto add_eog = [&](std::optional<int32_t> id) {
    if (id) t->eog.push_back(*id);
  };
  add_eog(t->eos);
  add_eog(id_from_meta(f, "tokenizer.ggml.eot_token_id", n_vocab));
  add_eog(id_from_meta(f, "tokenizer.ggml.eom_token_id", n_vocab));
  for (auto s : kEogTexts)
    if (auto id = t->text_to_id.find(s)) t->eog.push_back(*promote(id));
  add_eog(t->fim_pad);
  add_eog(t->fim_rep);
  add_eog(t->fim_sep);
  std::sort(t->eog.begin(), t->eog.end());
  t->eog.erase(std::unique(t->eog.begin(), t->eog.end()), t->eog.end());

  // Decoded bytes of every token.
  t->piece.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (t->type[i]) {
      case TokenType::NORMAL:
      case TokenType::UNDEFINED: t->piece[i] = unmap_bytes(t->text[i]); break;
      case TokenType::BYTE: {
        const int b = parse_byte_token(t->text[i]);
        t->piece[i] = b >= 0 ? std::string(1, static_cast<char>(b)) : unmap_bytes(t->text[i]);
        break;
      }
      case TokenType::UNUSED: break;  // prints nothing
      default: t->piece[i] = t->text[i];  // CONTROL, USER_DEFINED, UNKNOWN print their text
    }
  }

  // Special tokens for splitting, longest first (ties: lower id first).
  for (int32_t id = 0; id < n_vocab; ++id)
    if (t->is_special_type(id) && !t->text[id].empty()) t->specials.push_back(id);
  std::sort(t->specials.begin(), t->specials.end(), [&](int32_t a, int32_t b) {
    const size_t la = t->text[a].size(), lb = t->text[b].size();
    return la != lb ? la > lb : a < b;
  });

  t->chat_template = f.get_string_or("tokenizer.chat_template", "");
  return Tokenizer(std::move(t));
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void TokenizerImpl::encode_piece(std::string_view p, std::vector<int32_t>& out, BpeScratch& scratch) const {
  if (p.size() == 1) {
    if (const int32_t id = byte_token[static_cast<uint8_t>(p[0])]; id >= 0) out.push_back(id);
    return;
  }
  // A byte the vocabulary has no token for merges with nothing and is dropped (as llama.cpp does):
  // encode the runs between such bytes on their own.
  for (size_t i = 0; i < p.size(); ++i) {
    if (byte_token[static_cast<uint8_t>(p[i])] >= 0) continue;
    if (i > 0) encode_piece(p.substr(0, i), out, scratch);
    if (i + 1 < p.size()) encode_piece(p.substr(i + 1), out, scratch);
    return;
  }
  {
    std::lock_guard lock(cache_mutex);
    if (auto it = cache.find(p); it != cache.end()) {
      const auto [off, cnt] = it->second;
      out.insert(out.end(), cache_ids.begin() + off, cache_ids.begin() + off + cnt);
      return;
    }
  }
  std::vector<int32_t> ids;
  if (ignore_merges) {  // the piece's bytes through the byte table: a vocabulary entry as a whole?
    const auto& b2c = byte_to_code_point();
    std::string mapped;
    mapped.reserve(p.size() * 2);
    for (const char ch : p) append_utf8(mapped, b2c[static_cast<uint8_t>(ch)]);
    if (const auto id = text_to_id.find(mapped)) ids.push_back(*id);
  }
  if (ids.empty()) {
    ids.resize(p.size());
    for (size_t i = 0; i < p.size(); ++i) ids[i] = byte_token[static_cast<uint8_t>(p[i])];
    bpe_merge(merges, ids, scratch);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_mutex);
  if (cache_ids.size() > (16u << 20)) {  // bound the memory: start over after ~16M cached ids
    cache.clear();
    cache_ids.clear();
  }
  if (cache.emplace(std::string(p), std::pair{static_cast<uint32_t>(cache_ids.size()), static_cast<uint32_t>(ids.size())}).second)
    cache_ids.insert(cache_ids.end(), ids.begin(), ids.end());
}

void TokenizerImpl::encode_text(std::string_view s, std::vector<int32_t>& out) const {
  // Code points and their classes; text with invalid UTF-8 is first rewritten the way it is
  // read (U+FFFD for bad bytes), so pieces and code points agree.
  std::vector<uint32_t> cps;
  std::vector<uint8_t> cls;
  std::vector<uint32_t> offs;  // byte offset of each code point, plus the end
  std::string clean;
  cps.reserve(s.size());
  bool irregular = false;
  for (size_t i = 0; i < s.size();) cps.push_back(next_code_point(s, i, &irregular));
  if (irregular) {
    for (uint32_t cp : cps) append_utf8(clean, cp);
    s = clean;
  }
  cls.resize(cps.size());
  offs.resize(cps.size() + 1);
  uint32_t off = 0;
  for (size_t k = 0; k < cps.size(); ++k) {
    cls[k] = cp_class(cps[k]);
    offs[k] = off;
    const uint32_t c = cps[k];
    off += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  offs[cps.size()] = off;

  std::vector<uint32_t> ends;
  pre_tokenize(*pre, cps, cls, ends);
  BpeScratch scratch;
  uint32_t start = 0;
  for (uint32_t e : ends) {
    encode_piece(s.substr(offs[start], offs[e] - offs[start]), out, scratch);
    start = e;
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  return encode(text, parse_special, impl_->add_bos);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special, bool add_bos) const {
  const TokenizerImpl& t = *impl_;
  // Fragments: either raw text [begin, end) or a special token (id >= 0).
  struct Fragment {
    int32_t id;
    size_t begin, end;
  };
  std::vector<Fragment> frags = {{-1, 0, text.size()}};
  if (!text.empty()) {
    for (const int32_t sid : t.specials) {
      if (!parse_special && t.type[sid] != TokenType::USER_DEFINED) continue;  // CONTROL is plain text
      const std::string_view st = t.text[sid];
      std::vector<Fragment> next;
      next.reserve(frags.size());
      bool any = false;
      for (const Fragment& fr : frags) {
        if (fr.id >= 0) {
          next.push_back(fr);
          continue;
        }
        size_t pos = fr.begin;
        while (pos < fr.end) {
          const size_t hit = text.substr(0, fr.end).find(st, pos);
          if (hit == std::string_view::npos) break;
          if (hit > pos) next.push_back({-1, pos, hit});
          next.push_back({sid, hit, hit + st.size()});
          pos = hit + st.size();
          any = true;
        }
        if (pos < fr.end) next.push_back({-1, pos, fr.end});
      }
      if (any) frags = std::move(next);
    }
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_bos && t.bos) out.push_back(*t.bos);
  for (const Fragment& fr : frags) {
    if (fr.id >= 0) {
      out.push_back(fr.id);
    } else if (fr.end > fr.begin) {
      t.encode_text(text.substr(fr.begin, fr.end - fr.begin), out);
    }
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) throw_error("token id {} is out of range [0, {})", id, n_vocab());
  return impl_->piece[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) throw_error("token id {} is out of range [0, {})", id, n_vocab());
    out += impl_->piece[id];
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->text.size()); }
TokenType Tokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= n_vocab()) throw_error("token id {} is out of range [0, {})", id, n_vocab());
  return impl_->type[id];
}
const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab()) throw_error("token id {} is out of range [0, {})", id, n_vocab());
  return impl_->text[id];
}
bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id); }
bool Tokenizer::is_control(int32_t id) const { return id >= 0 && id < n_vocab() && impl_->is_special_type(id); }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
int32_t Tokenizer::byte_token(uint8_t b) const { return impl_->byte_token[b]; }
std::optional<int32_t> Tokenizer::bos() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::pad() const { return impl_->pad; }
std::optional<int32_t> Tokenizer::fim_prefix() const { return impl_->fim_pre; }
std::optional<int32_t> Tokenizer::fim_suffix() const { return impl_->fim_suf; }
std::optional<int32_t> Tokenizer::fim_middle() const { return impl_->fim_mid; }
std::optional<int32_t> Tokenizer::fim_pad() const { return impl_->fim_pad; }
std::optional<int32_t> Tokenizer::repo_name() const { return impl_->fim_rep; }
std::optional<int32_t> Tokenizer::file_sep() const { return impl_->fim_sep; }
const std::vector<int32_t>& Tokenizer::eog_ids() const { return impl_->eog; }
std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  return impl_->text_to_id.find(text);
}
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
const std::string& Tokenizer::pre_tokenizer() const { return impl_->pre_name; }

std::string StreamDecoder::push(int32_t id) {
  held_ += tok_->token_to_piece(id);
  std::string out;
  held_.erase(0, append_valid_utf8(out, held_, false));
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  append_valid_utf8(out, held_, true);
  held_.clear();
  return out;
}

}  // namespace tessera::tok
