// The generation loop (see generate.h): prompt, then sample / stream / feed until a stop condition.
#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tessera::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

// Length of the longest suffix of text that is a proper prefix of some stop string (text that must
// be held back because the next tokens could complete a stop string).
size_t held_for_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > held; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace

GenerateResult generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                        const TokenCallback& on_token, int seq) {
  if (prompt.empty()) throw_error("generate: empty prompt");
  const tok::Tokenizer& tok = ctx.model().tokenizer();
  // The decoder only ever yields valid UTF-8, so a stop string is read the same way (invalid bytes
  // as U+FFFD): then it can only match, or be held back, at character boundaries.
  std::vector<std::string> stops;
  for (const std::string& s : params.stop) {
    std::string valid;
    tok::append_valid_utf8(valid, s, true);
    if (!valid.empty()) stops.push_back(std::move(valid));
  }

  GenerateResult res;
  res.n_prompt = static_cast<int>(prompt.size());
  Sampler sampler(params.sampler);
  for (int32_t id : prompt) sampler.accept(id);

  auto t0 = std::chrono::steady_clock::now();
  double c0 = process_cpu_ms();
  std::span<const float> logits = ctx.eval(prompt, false, seq);
  res.prompt_ms = ms_since(t0);
  res.prompt_cpu_ms = process_cpu_ms() - c0;
  t0 = std::chrono::steady_clock::now();
  c0 = process_cpu_ms();

  tok::StreamDecoder dec(tok);
  std::string text;      // everything decoded so far (minus a matched stop string)
  size_t emitted = 0;    // bytes of text already passed to on_token
  res.finish = FinishReason::Length;
  const int n_ctx = ctx.options().n_ctx;
  while (params.max_tokens < 0 || res.n_generated < params.max_tokens) {
    const int32_t id = sampler.sample(logits);
    sampler.accept(id);
    res.tokens.push_back(id);
    ++res.n_generated;
    if (params.stop_at_eog && tok.is_eog(id)) {
      res.finish = FinishReason::Stop;
      break;
    }
    const size_t before = text.size();
    text += dec.push(id);
    bool stopped = false;
    for (const std::string& s : stops) {  // a stop string can only end in the new bytes
      const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
      const size_t at = text.find(s, from);
      if (at != std::string::npos) {
        text.resize(at);
        res.stop_matched = s;
        stopped = true;
        break;
      }
    }
    if (stopped) {
      res.finish = FinishReason::Stop;
      break;
    }
    const size_t safe = text.size() - held_for_stop(text, stops);
    const std::string_view piece(text.data() + emitted, safe > emitted ? safe - emitted : 0);
    emitted = std::max(emitted, safe);
    if (on_token && !on_token(piece, id)) {
      res.finish = FinishReason::Cancelled;
      break;
    }
    if (params.max_tokens >= 0 && res.n_generated >= params.max_tokens) break;
    if (ctx.n_past(seq) >= n_ctx) break;  // context full: length
    const int32_t next[1] = {id};
    logits = ctx.eval(next, false, seq);
  }
  if (res.finish != FinishReason::Cancelled) {
    if (res.stop_matched.empty()) text += dec.flush();
    if (text.size() > emitted && on_token) on_token(std::string_view(text).substr(emitted), -1);
  }
  res.text = std::move(text);
  res.gen_ms = ms_since(t0);
  res.gen_cpu_ms = process_cpu_ms() - c0;
  return res;
}

}  // namespace tessera::engine
