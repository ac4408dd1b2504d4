// Byte-level BPE tokenizer built from GGUF metadata (tokenizer.ggml.model "gpt2"): pre-tokenizer
// rules, special-token splitting, encode/decode and a UTF-8-safe streaming decoder.
// Facts: shared reference "Tokenizer" section.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace tessera::tok {

// Token types as stored in tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
};

struct TokenizerImpl;

class Tokenizer {
 public:
  // Throws tessera::Error on bad or unsupported metadata (unknown model or pre-tokenizer, sizes
  // that disagree, merges naming unknown tokens, ...).
  static Tokenizer from_gguf(const gguf::File& f);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Adds BOS only when the model asks (tokenizer.ggml.add_bos_token). parse_special=false:
  // CONTROL tokens are plain text, USER_DEFINED ones are still matched.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  std::vector<int32_t> encode(std::string_view text, bool parse_special, bool add_bos) const;

  // Raw bytes of one token (CONTROL / USER_DEFINED: their text). Throws on an id out of range.
  std::string token_to_piece(int32_t id) const;
  std::string decode(std::span<const int32_t> ids) const;

  int32_t n_vocab() const;
  TokenType token_type(int32_t id) const;
  const std::string& token_text(int32_t id) const;  // the vocabulary string as stored
  bool is_eog(int32_t id) const;                    // end-of-generation set
  bool is_control(int32_t id) const;                // CONTROL or USER_DEFINED (not plain text)
  bool add_bos() const;
  int32_t byte_token(uint8_t b) const;  // the token of one raw byte (-1: the vocabulary has none)

  std::optional<int32_t> bos() const;
  std::optional<int32_t> eos() const;
  std::optional<int32_t> pad() const;
  std::optional<int32_t> fim_prefix() const;
  std::optional<int32_t> fim_suffix() const;
  std::optional<int32_t> fim_middle() const;
  std::optional<int32_t> fim_pad() const;
  std::optional<int32_t> repo_name() const;
  std::optional<int32_t> file_sep() const;
  const std::vector<int32_t>& eog_ids() const;

  // Exact match of a vocabulary string (for NORMAL tokens this is the byte-mapped form, so
  // prefer it for special tokens such as "<|im_end|>").
  std::optional<int32_t> find_token(std::string_view text) const;
  const std::string& chat_template() const;  // "" when absent
  const std::string& pre_tokenizer() const;  // e.g. "qwen2"

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

// Streams decoded text as complete, valid UTF-8 only: a sequence cut off at the end of the text so
// far is held until the next token completes it or proves it invalid; bytes that can never form a
// character become U+FFFD, one per maximal invalid subpart (as Python's
// bytes.decode('utf-8', 'replace') and llama.cpp / HF servers do). flush() returns what is held,
// an incomplete tail as U+FFFD, and leaves the decoder empty.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string held_;  // an incomplete UTF-8 sequence at the end of the text so far
};

}  // namespace tessera::tok
