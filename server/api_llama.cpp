// llama.cpp server endpoints: /completion, /infill, /health, /tokenize, /detokenize, /props, /slots,
// /metrics. Field names and meanings as llama-server reports them (shared reference "HTTP APIs").
#include <fmt/format.h>

#include "server/routes.h"
#include "tokenizer/unicode.h"

namespace tessera::server {
namespace {

const char* stop_type(const engine::GenerateResult& r) {
  switch (r.finish) {
    case engine::FinishReason::Stop: return r.stop_matched.empty() ? "eos" : "word";
    case engine::FinishReason::Length: return "limit";
    default: return "none";
  }
}

json timings(const engine::GenerateResult& r) {
  const int computed = r.n_prompt - r.n_prompt_cached;
  auto per_token = [](double ms, int n) { return n > 0 ? ms / n : 0.0; };
  auto per_second = [](double ms, int n) { return ms > 0 ? 1e3 * n / ms : 0.0; };
  return json{{"cache_n", r.n_prompt_cached},
              {"prompt_n", computed},
              {"prompt_ms", r.prompt_ms},
              {"prompt_per_token_ms", per_token(r.prompt_ms, computed)},
              {"prompt_per_second", per_second(r.prompt_ms, computed)},
              {"predicted_n", r.n_generated},
              {"predicted_ms", r.gen_ms},
              {"predicted_per_token_ms", per_token(r.gen_ms, r.n_generated)},
              {"predicted_per_second", per_second(r.gen_ms, r.n_generated)}};
}

// /completion and /infill answer alike.
class LlamaFormat : public ResponseFormat {
 public:
  explicit LlamaFormat(std::string model) : model_(std::move(model)) {}
  std::string stream_text(std::string_view piece) override {
    return sse_data(json{{"content", std::string(piece)}, {"stop", false}, {"id_slot", 0}});
  }
  std::string stream_end(const engine::GenerateResult& r) override {
    json j = body(r);
    j["content"] = "";  // already streamed
    return sse_data(j);
  }
  json body(const engine::GenerateResult& r) override {
    return json{{"content", r.text},
                {"id_slot", 0},
                {"stop", true},
                {"model", model_},
                {"tokens_predicted", r.n_generated},
                {"tokens_evaluated", r.n_prompt},
                {"stop_type", stop_type(r)},
                {"stopping_word", r.stop_matched},
                {"tokens_cached", r.n_prompt + r.n_generated},
                {"truncated", false},
                {"timings", timings(r)}};
  }

 private:
  std::string model_;
};

void completion(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = parse_body(req.body);
  ModelSlot& model = st.route(body, false);
  EngineService& eng = model.ready();
  const Fields f(body);
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) throw ApiError(400, "'prompt' is required");
  JobSpec job;
  job.prompt = prompt_tokens(eng, *it);
  check_prompt_fits(eng, job.prompt.size());
  job.params.max_tokens = read_max_tokens(f, {"n_predict", "max_tokens"}, -1);
  read_sampling(f, job.params);
  job.deadline = job_deadline(st);
  job.t_max_predict_ms = static_cast<int>(f.get_int("t_max_predict_ms", 0, 0, 1 << 30));
  respond_generation(req, res, st, model, std::move(job), std::make_unique<LlamaFormat>(model.id()), f.get_bool("stream", false));
}

void infill(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = parse_body(req.body);
  ModelSlot& model = st.route(body, false);
  EngineService& eng = model.ready();
  const FimPromptBuilder& fim = model.fim_builder();
  const Fields f(body);
  FimRequest fr;
  fr.prefix = f.get_string("input_prefix");
  fr.suffix = f.get_string("input_suffix");
  if (const json* extra = f.get_array("input_extra")) {
    for (const json& e : *extra) {
      if (!e.is_object()) throw ApiError(400, "'input_extra' must be an array of {\"filename\", \"text\"} objects");
      const Fields ef(e);
      fr.extra.push_back({ef.get_string("filename"), ef.get_string("text")});
    }
  }
  JobSpec job;
  job.params.max_tokens = model.cap_max_tokens(read_max_tokens(f, {"n_predict", "max_tokens"}, -1));
  read_sampling(f, job.params);
  const int reserve = job.params.max_tokens > 0 ? job.params.max_tokens : 0;
  fr.budget = std::max(3, std::min(st.opts.fim_max_prompt, eng.n_ctx() - 1 - reserve));
  FimPrompt p = fim.build(fr);
  // llama.cpp: `prompt` goes after <|fim_middle|> (text the completion must start with).
  const std::string after = f.get_string("prompt");
  if (!after.empty()) {
    const std::vector<int32_t> t = fim.encode_text(after);
    p.tokens.insert(p.tokens.end(), t.begin(), t.end());
  }
  job.prompt = std::move(p.tokens);
  check_prompt_fits(eng, job.prompt.size());
  for (std::string& s : fim_stop_strings(eng.tokenizer())) job.params.stop.push_back(std::move(s));
  job.deadline = job_deadline(st);
  job.t_max_predict_ms = static_cast<int>(f.get_int("t_max_predict_ms", 0, 0, 1 << 30));
  respond_generation(req, res, st, model, std::move(job), std::make_unique<LlamaFormat>(model.id()), f.get_bool("stream", false));
}

void tokenize(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = parse_body(req.body);
  const tok::Tokenizer& tok = st.route(body, false).ready().tokenizer();
  const Fields f(body);
  const std::string content = f.get_string("content");
  const bool parse_special = f.get_bool("parse_special", true);
  const bool add_special = f.get_bool("add_special", false);
  const bool with_pieces = f.get_bool("with_pieces", false);
  const std::vector<int32_t> ids = tok.encode(content, parse_special, add_special && tok.add_bos());
  json tokens = json::array();
  for (int32_t id : ids) {
    if (!with_pieces) {
      tokens.push_back(id);
      continue;
    }
    const std::string piece = tok.token_to_piece(id);
    std::string valid;
    tok::append_valid_utf8(valid, piece, true);
    json jp;
    if (valid == piece) {
      jp = piece;
    } else {  // a piece that is part of a character: its bytes
      jp = json::array();
      for (unsigned char c : piece) jp.push_back(c);
    }
    tokens.push_back(json{{"id", id}, {"piece", jp}});
  }
  send_json(res, json{{"tokens", tokens}});
}

void detokenize(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = parse_body(req.body);
  const EngineService& eng = st.route(body, false).ready();
  const tok::Tokenizer& tok = eng.tokenizer();
  const Fields f(body);
  const json* arr = f.get_array("tokens");
  std::vector<int32_t> ids;
  if (arr) ids = prompt_tokens(eng, *arr);
  std::string text;
  tok::append_valid_utf8(text, tok.decode(ids), true);
  send_json(res, json{{"content", text}});
}

json generation_settings(const ModelSlot& model, const EngineService& eng) {
  const engine::SamplerParams d;
  return json{{"n_ctx", eng.n_ctx()},
              {"params", json{{"n_predict", -1}, {"temperature", d.temperature}, {"top_k", d.top_k},
                              {"top_p", d.top_p}, {"min_p", d.min_p}, {"repeat_penalty", d.repeat_penalty},
                              {"repeat_last_n", d.penalty_last_n}}},
              {"model", model.id()}};
}

}  // namespace

std::vector<std::string> fim_stop_strings(const tok::Tokenizer& tok) {
  std::vector<std::string> out;
  for (const auto& id : {tok.fim_prefix(), tok.fim_suffix(), tok.fim_middle(), tok.fim_pad(), tok.repo_name(), tok.file_sep()})
    if (id && !tok.is_eog(*id)) out.push_back(tok.token_text(*id));
  return out;
}

void register_llama_routes(httplib::Server& svr, ServerState& st) {
  post(svr, st, "/completion", [&st](const httplib::Request& q, httplib::Response& r) { completion(q, r, st); });
  post(svr, st, "/completions", [&st](const httplib::Request& q, httplib::Response& r) { completion(q, r, st); });
  post(svr, st, "/infill", [&st](const httplib::Request& q, httplib::Response& r) { infill(q, r, st); });
  post(svr, st, "/tokenize", [&st](const httplib::Request& q, httplib::Response& r) { tokenize(q, r, st); });
  post(svr, st, "/detokenize", [&st](const httplib::Request& q, httplib::Response& r) { detokenize(q, r, st); });
  svr.Get("/health", guarded([&st](const httplib::Request&, httplib::Response& r) {
    for (const auto& m : st.models) m->ready();  // 503 until every model is loaded
    send_json(r, json{{"status", "ok"}});
  }));
  // The default model's settings (or ?model=NAME's), every model, and the memory plan.
  svr.Get("/props", guarded([&st](const httplib::Request& q, httplib::Response& r) {
    const ModelSlot& model = st.route(json{{"model", q.get_param_value("model")}}, false);
    EngineService& eng = model.ready();
    json models = json::array();
    for (const auto& m : st.models) {
      const EngineService* e = m->engine.load();
      models.push_back(json{{"id", m->id()}, {"model_path", m->spec.path}, {"loaded", e != nullptr},
                            {"n_ctx", m->spec.ctx}, {"total_slots", m->spec.parallel},
                            {"max_tokens", m->spec.max_tokens > 0 ? json(m->spec.max_tokens) : json(nullptr)}});
    }
    send_json(r, json{{"default_generation_settings", generation_settings(model, eng)},
                      {"total_slots", eng.n_parallel()},
                      {"model_path", model.spec.path},
                      {"model_alias", model.id()},
                      {"chat_template", eng.tokenizer().chat_template()},
                      {"models", models},
                      {"default_model", st.default_model().id()},
                      {"memory_plan", st.plan.to_json()},
                      {"build_info", "tessera"}});
  }));
  svr.Get("/slots", guarded([&st](const httplib::Request& q, httplib::Response& r) {
    EngineService& eng = st.route(json{{"model", q.get_param_value("model")}}, false).ready();
    const EngineSnapshot s = eng.snapshot();
    json slots = json::array();
    for (int i = 0; i < eng.n_parallel(); ++i)
      slots.push_back(json{{"id", i}, {"n_ctx", eng.n_ctx()}, {"is_processing", i < s.running}});
    send_json(r, slots);
  }));
  svr.Get("/metrics", guarded([&st](const httplib::Request&, httplib::Response& r) {
    r.set_content(st.render_metrics(), "text/plain; version=0.0.4");
  }));
}

}  // namespace tessera::server
