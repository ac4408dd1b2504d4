// Request: the per-token step shared by generate() and the Scheduler (sample, detokenize, hold back
// possible stop-string starts, check the stop conditions, stream the safe text).
#include "engine/sched/request.h"

#include <algorithm>
#include <ctime>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tessera::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "?";
}

namespace {

double ms_between(Request::Clock::time_point a, Request::Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
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

Request::Request(const tok::Tokenizer& tok, std::vector<int32_t> prompt, GenerateParams params,
                 TokenCallback on_text)
    : tok_(&tok),
      prompt_(std::move(prompt)),
      params_(std::move(params)),
      on_text_(std::move(on_text)),
      sampler_(params_.sampler),
      dec_(tok),
      t_submit_(Clock::now()) {
  if (prompt_.empty()) throw_error("generate: empty prompt");
  // The decoder only ever yields valid UTF-8, so a stop string is read the same way (invalid bytes
  // as U+FFFD): then it can only match, or be held back, at character boundaries.
  for (const std::string& s : params_.stop) {
    std::string valid;
    tok::append_valid_utf8(valid, s, true);
    if (!valid.empty()) stops_.push_back(std::move(valid));
  }
  for (int32_t id : prompt_) sampler_.accept(id);
  res_.n_prompt = static_cast<int>(prompt_.size());
}

std::vector<int32_t> Request::context_tokens() const {
  std::vector<int32_t> all(prompt_);
  all.insert(all.end(), res_.tokens.begin(), res_.tokens.end());
  return all;
}

void Request::begin_prompt() {
  if (prompt_started_) return;
  prompt_started_ = true;
  t_prompt_ = Clock::now();
  c_prompt_ = process_cpu_ms();
}

bool Request::advance(std::span<const float> logits) {
  if (done_) return false;
  const Clock::time_point now = Clock::now();
  if (!gen_started_) {  // the prompt's logits: the prompt phase ends, generation starts
    begin_prompt();
    gen_started_ = true;
    res_.prompt_ms = ms_between(t_prompt_, now);
    res_.prompt_cpu_ms = process_cpu_ms() - c_prompt_;
    t_gen_ = now;
    c_gen_ = process_cpu_ms();
  }
  if (cancel_requested()) {
    finish(FinishReason::Cancelled);
    return false;
  }
  if (now >= deadline_ || (params_.max_tokens >= 0 && res_.n_generated >= params_.max_tokens)) {
    finish(FinishReason::Length);  // past the deadline, or max_tokens 0
    return false;
  }
  if (logits_hook_) logits_hook_(logits);
  const int32_t id = sampler_.sample(logits);
  sampler_.accept(id);
  res_.tokens.push_back(id);
  if (++res_.n_generated == 1) res_.ttft_ms = ms_between(t_submit_, Clock::now());
  if (params_.stop_at_eog && tok_->is_eog(id)) {
    finish(FinishReason::Stop);
    return false;
  }
  const size_t before = text_.size();
  text_ += dec_.push(id);
  for (const std::string& s : stops_) {  // a stop string can only end in the new bytes
    const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
    const size_t at = text_.find(s, from);
    if (at != std::string::npos) {
      text_.resize(at);
      res_.stop_matched = s;
      finish(FinishReason::Stop);
      return false;
    }
  }
  const size_t safe = text_.size() - held_for_stop(text_, stops_);
  const std::string_view piece(text_.data() + emitted_, safe > emitted_ ? safe - emitted_ : 0);
  emitted_ = std::max(emitted_, safe);
  if (on_text_ && !on_text_(piece, id)) {
    finish(FinishReason::Cancelled);
    return false;
  }
  if (params_.max_tokens >= 0 && res_.n_generated >= params_.max_tokens) {
    finish(FinishReason::Length);
    return false;
  }
  return true;
}

void Request::finish(FinishReason reason, std::string error) {
  if (done_) return;
  done_ = true;
  res_.finish = reason;
  res_.error = std::move(error);
  if (reason != FinishReason::Cancelled && reason != FinishReason::Error) {
    if (res_.stop_matched.empty()) text_ += dec_.flush();
    if (text_.size() > emitted_ && on_text_) on_text_(std::string_view(text_).substr(emitted_), -1);
  }
  res_.text = text_;
  if (gen_started_) {
    res_.gen_ms = ms_between(t_gen_, Clock::now());
    res_.gen_cpu_ms = process_cpu_ms() - c_gen_;
  } else if (prompt_started_) {  // ended before its prompt finished: the time went to the prompt
    res_.prompt_ms = ms_between(t_prompt_, Clock::now());
    res_.prompt_cpu_ms = process_cpu_ms() - c_prompt_;
  }
}

}  // namespace tessera::engine
