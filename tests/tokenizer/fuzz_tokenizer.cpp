// libFuzzer target: any bytes encode (with and without special parsing) and decode back; valid
// UTF-8 must round-trip exactly with special parsing off, and streaming decode must equal the
// one-shot UTF-8 repair of the decoded bytes. Uses the golden Qwen3 vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tessera::gguf::File file = tessera::gguf::File::open(TESSERA_GOLDEN_DIR "/models/vocab-qwen3.gguf");
  static const tessera::tok::Tokenizer tok = tessera::tok::Tokenizer::from_gguf(file);
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto special = tok.encode(text, true);
  const auto plain = tok.encode(text, false);
  bool valid = true;
  for (size_t i = 0; i < text.size() && valid;) {
    bool irregular = false;
    tessera::tok::next_code_point(text, i, &irregular);
    valid = !irregular;
  }
  if (valid && (tok.decode(plain) != text || tok.decode(special) != text)) std::abort();
  tessera::tok::StreamDecoder dec(tok);
  std::string streamed;
  for (int32_t id : special) streamed += dec.push(id);
  streamed += dec.flush();
  std::string whole;  // the same repair done in one go
  tessera::tok::append_valid_utf8(whole, tok.decode(special), true);
  if (streamed != whole) std::abort();
  return 0;
}
