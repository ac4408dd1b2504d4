// OpenAI-compatible endpoints: /v1/completions (prompt, or FIM with `suffix`; Tabby's `segments`
// requests go to the Tabby handler), /v1/chat/completions (chat template, tool calls, streaming
// deltas, usage), /v1/models. Unknown fields are ignored.
#include <ctime>
#include <optional>

#include <fmt/format.h>

#include "server/routes.h"
#include "server/tool_calls.h"

namespace tessera::server {
namespace {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

const char* finish_reason(const engine::GenerateResult& r) {
  return r.finish == engine::FinishReason::Length ? "length" : "stop";
}

json usage(const engine::GenerateResult& r) {
  return json{{"prompt_tokens", r.n_prompt},
              {"completion_tokens", r.n_generated},
              {"total_tokens", r.n_prompt + r.n_generated},
              {"prompt_tokens_details", json{{"cached_tokens", r.n_prompt_cached}}}};
}

void check_n(const Fields& f) {
  if (f.get_int("n", 1, 1, 1 << 20) != 1) throw ApiError(400, "only n = 1 is supported");
}

class CompletionFormat : public ResponseFormat {
 public:
  CompletionFormat(std::string model, std::string echo, bool include_usage)
      : model_(std::move(model)), echo_(std::move(echo)), include_usage_(include_usage) {}
  std::string stream_text(std::string_view piece) override {
    std::string text = std::move(echo_);
    echo_.clear();
    text += piece;
    return sse_data(chunk(text, nullptr));
  }
  std::string stream_end(const engine::GenerateResult& r) override {
    std::string out = sse_data(chunk(echo_, finish_reason(r)));
    if (include_usage_) {
      json u = chunk("", nullptr);
      u["choices"] = json::array();
      u["usage"] = usage(r);
      out += sse_data(u);
    }
    return out + "data: [DONE]\n\n";
  }
  json body(const engine::GenerateResult& r) override {
    json j = head();
    j["choices"] = json::array({json{{"text", echo_ + r.text}, {"index", 0}, {"logprobs", nullptr},
                                     {"finish_reason", finish_reason(r)}}});
    j["usage"] = usage(r);
    return j;
  }

 private:
  json head() const {
    return json{{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_}};
  }
  json chunk(const std::string& text, const char* finish) const {
    json j = head();
    j["choices"] = json::array({json{{"text", text}, {"index", 0}, {"logprobs", nullptr},
                                     {"finish_reason", finish ? json(finish) : json(nullptr)}}});
    return j;
  }
  std::string model_, echo_;
  bool include_usage_;
  std::string id_ = random_id("cmpl-");
  int64_t created_ = unix_now();
};

void completions(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = parse_body(req.body);
  if (body.contains("segments")) return handle_tabby_completion(req, res, st, body);
  ModelSlot& model = st.route(body);
  EngineService& eng = model.ready();
  const Fields f(body);
  check_n(f);
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) throw ApiError(400, "'prompt' is required");
  JobSpec job;
  job.params.max_tokens = model.cap_max_tokens(read_max_tokens(f, {"max_tokens"}, 16));
  read_sampling(f, job.params);
  std::string echo;
  if (f.has("suffix")) {  // fill in the middle: prompt is the prefix
    const FimPromptBuilder& fim = model.fim_builder();
    if (!it->is_string()) throw ApiError(400, "'prompt' must be a string when 'suffix' is given");
    FimRequest fr;
    fr.prefix = it->get<std::string>();
    fr.suffix = f.get_string("suffix");
    const int reserve = job.params.max_tokens > 0 ? job.params.max_tokens : 0;
    fr.budget = std::max(3, std::min(st.opts.fim_max_prompt, eng.n_ctx() - 1 - reserve));
    job.prompt = fim.build(fr).tokens;
    for (std::string& s : fim_stop_strings(eng.tokenizer())) job.params.stop.push_back(std::move(s));
  } else {
    job.prompt = prompt_tokens(eng, *it);
    if (f.get_bool("echo", false)) echo = eng.tokenizer().decode(job.prompt);
  }
  check_prompt_fits(eng, job.prompt.size());
  job.deadline = job_deadline(st);
  bool include_usage = false;
  if (const json* so = f.get_object("stream_options")) include_usage = Fields(*so).get_bool("include_usage", false);
  respond_generation(req, res, st, model, std::move(job),
                     std::make_unique<CompletionFormat>(model.id(), std::move(echo), include_usage),
                     f.get_bool("stream", false));
}

json tool_call_json(const ToolCall& c, int index, bool with_index) {
  json j;
  if (with_index) j["index"] = index;
  j["id"] = c.id;
  j["type"] = "function";
  j["function"] = json{{"name", c.name}, {"arguments", c.arguments}};
  return j;
}

// Small models sometimes answer a tool request with the call's JSON alone, without the
// <tool_call> tags: {"name": "get_weather", "arguments": {...}}. Taken as a call only when the
// whole answer is such an object naming one of the request's tools.
std::optional<ToolCall> bare_json_call(std::string_view text, const json& tools) {
  const size_t a = text.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos || text[a] != '{') return std::nullopt;
  json j;
  try {
    j = json::parse(text.substr(a));
  } catch (const json::exception&) {
    return std::nullopt;
  }
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("arguments")) return std::nullopt;
  const std::string name = j["name"].get<std::string>();
  bool known = false;
  for (const json& t : tools)
    if (t.is_object() && t.contains("function") && t["function"].is_object() && t["function"].value("name", "") == name)
      known = true;
  if (!known) return std::nullopt;
  json args = j["arguments"];
  if (args.is_string()) {
    try {
      args = json::parse(args.get<std::string>());
    } catch (const json::exception&) {
      return std::nullopt;
    }
  }
  if (!args.is_object()) return std::nullopt;
  return ToolCall{random_id("call_"), name, dump(args)};
}

class ChatFormat : public ResponseFormat {
 public:
  ChatFormat(std::string model, const json& tools, bool include_usage)
      : model_(std::move(model)), include_usage_(include_usage) {
    if (tools.is_array() && !tools.empty()) {
      parser_ = std::make_unique<ToolCallParser>(tools);
      tools_ = tools;
    }
  }
  std::string stream_text(std::string_view piece) override {
    if (!parser_) return piece.empty() ? std::string() : delta(json{{"content", std::string(piece)}});
    ToolParseOutput out = parser_->feed(piece);
    // An answer that starts like a bare JSON call is held until the end (see bare_json_call).
    if (n_calls_ == 0 && (holding_ || (!streamed_content_ && !out.content.empty() &&
                                       out.content.find_first_not_of(" \t\r\n") != std::string::npos &&
                                       out.content[out.content.find_first_not_of(" \t\r\n")] == '{'))) {
      holding_ = true;
      held_ += out.content;
      out.content.clear();
    }
    if (!out.content.empty()) streamed_content_ = true;
    return deltas(out);
  }
  std::string stream_end(const engine::GenerateResult& r) override {
    std::string out;
    if (parser_) {
      ToolParseOutput last = parser_->finish();
      if (holding_) {
        held_ += last.content;
        last.content.clear();
        if (auto call = bare_json_call(held_, tools_); call && last.calls.empty()) last.calls.push_back(*call);
        else last.content = held_;
      }
      out = deltas(last);
    }
    if (!sent_role_) out += delta(json::object());
    json last = head();
    last["choices"] = json::array({json{{"index", 0}, {"delta", json::object()}, {"logprobs", nullptr},
                                        {"finish_reason", finish(r)}}});
    out += sse_data(last);
    if (include_usage_) {
      json u = head();
      u["choices"] = json::array();
      u["usage"] = usage(r);
      out += sse_data(u);
    }
    return out + "data: [DONE]\n\n";
  }
  json body(const engine::GenerateResult& r) override {
    std::string content = r.text;
    json calls = json::array();
    if (parser_) {
      ToolParseOutput a = parser_->feed(r.text), b = parser_->finish();
      content = a.content + b.content;
      for (auto* out : {&a, &b})
        for (const ToolCall& c : out->calls) calls.push_back(tool_call_json(c, n_calls_++, false));
      if (calls.empty()) {
        if (auto call = bare_json_call(content, tools_)) {
          calls.push_back(tool_call_json(*call, n_calls_++, false));
          content.clear();
        }
      }
    }
    json msg{{"role", "assistant"}, {"content", content}};
    if (!calls.empty()) {
      msg["tool_calls"] = calls;
      if (content.empty()) msg["content"] = nullptr;
    }
    json j = head();
    j["object"] = "chat.completion";
    j["choices"] = json::array({json{{"index", 0}, {"message", msg}, {"logprobs", nullptr}, {"finish_reason", finish(r)}}});
    j["usage"] = usage(r);
    return j;
  }

 private:
  const char* finish(const engine::GenerateResult& r) const {
    if (n_calls_ > 0) return "tool_calls";
    return finish_reason(r);
  }
  json head() const {
    return json{{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_}};
  }
  std::string delta(json d) {
    if (!sent_role_) {
      d["role"] = "assistant";
      if (!d.contains("content")) d["content"] = "";
      sent_role_ = true;
    }
    json j = head();
    j["choices"] = json::array({json{{"index", 0}, {"delta", d}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
    return sse_data(j);
  }
  std::string deltas(const ToolParseOutput& out) {
    std::string s;
    if (!out.content.empty()) s += delta(json{{"content", out.content}});
    for (const ToolCall& c : out.calls) {
      json d;
      d["tool_calls"] = json::array({tool_call_json(c, n_calls_++, true)});
      s += delta(d);
    }
    return s;
  }
  std::string model_;
  bool include_usage_;
  std::unique_ptr<ToolCallParser> parser_;
  json tools_;
  bool holding_ = false, streamed_content_ = false;
  std::string held_;
  bool sent_role_ = false;
  int n_calls_ = 0;
  std::string id_ = random_id("chatcmpl-");
  int64_t created_ = unix_now();
};

void chat_completions(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = parse_body(req.body);
  ModelSlot& model = st.route(body);
  EngineService& eng = model.ready();
  const Fields f(body);
  check_n(f);
  const json* messages = f.get_array("messages");
  if (!messages) throw ApiError(400, "'messages' is required");
  const json* tools = f.get_array("tools");
  const json none;
  const json& tool_choice = body.contains("tool_choice") ? body["tool_choice"] : none;
  std::string prompt;
  try {
    prompt = model.chat->render(*messages, tools ? *tools : none, tool_choice);
  } catch (const ChatError& e) {
    throw ApiError(400, e.what());
  }
  JobSpec job;
  job.prompt = eng.tokenizer().encode(prompt, true);
  check_prompt_fits(eng, job.prompt.size());
  job.params.max_tokens = read_max_tokens(f, {"max_completion_tokens", "max_tokens"}, -1);
  read_sampling(f, job.params);
  job.deadline = job_deadline(st);
  bool include_usage = false;
  if (const json* so = f.get_object("stream_options")) include_usage = Fields(*so).get_bool("include_usage", false);
  const bool use_tools = tools && !(tool_choice.is_string() && tool_choice == "none");
  respond_generation(req, res, st, model, std::move(job),
                     std::make_unique<ChatFormat>(model.id(), use_tools ? *tools : none, include_usage),
                     f.get_bool("stream", false));
}

json model_list(const ServerState& st) {
  json data = json::array();
  for (const auto& slot : st.models) {
    json m{{"id", slot->id()}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "tessera"}};
    if (EngineService* eng = slot->engine.load()) {
      const auto& c = eng->model().config();
      m["meta"] = json{{"n_ctx", eng->n_ctx()}, {"n_ctx_train", c.n_ctx_train}, {"n_vocab", c.n_vocab}, {"arch", c.arch},
                       {"parallel", eng->n_parallel()}};
    }
    if (slot->spec.max_tokens > 0) m["max_tokens"] = slot->spec.max_tokens;
    m["loaded"] = slot->engine.load() != nullptr;
    m["default"] = slot.get() == &st.default_model();
    data.push_back(std::move(m));
  }
  return json{{"object", "list"}, {"data", data}};
}

}  // namespace

void register_openai_routes(httplib::Server& svr, ServerState& st) {
  post(svr, st, "/v1/completions", [&st](const httplib::Request& q, httplib::Response& r) { completions(q, r, st); });
  post(svr, st, "/v1/chat/completions", [&st](const httplib::Request& q, httplib::Response& r) { chat_completions(q, r, st); });
  post(svr, st, "/chat/completions", [&st](const httplib::Request& q, httplib::Response& r) { chat_completions(q, r, st); });
  svr.Get("/v1/models", guarded([&st](const httplib::Request&, httplib::Response& r) { send_json(r, model_list(st)); }));
  svr.Get("/models", guarded([&st](const httplib::Request&, httplib::Response& r) { send_json(r, model_list(st)); }));
}

}  // namespace tessera::server
