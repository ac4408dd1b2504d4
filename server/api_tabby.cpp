// Tabby endpoints: POST /v1/completions with `segments` (FIM prompt from prefix, suffix and
// repository context; per-language stop words; single-line mode; suffix-overlap trimming),
// GET|POST /v1/health, POST /v1/events. Tabby's defaults: 64 tokens, temperature 0.1.
#include <thread>

#include <fmt/format.h>

#include "server/routes.h"

namespace tessera::server {
namespace {

void add_snippets(const json* arr, const char* key, std::vector<FimSnippet>& out) {
  if (!arr) return;
  for (const json& s : *arr) {
    if (!s.is_object()) throw ApiError(400, fmt::format("'segments.{}' must be an array of {{\"filepath\", \"body\"}} objects", key));
    const Fields sf(s);
    FimSnippet snip{sf.get_string("filepath"), sf.get_string("body")};
    if (!snip.body.empty()) out.push_back(std::move(snip));
  }
}

class TabbyFormat : public ResponseFormat {
 public:
  TabbyFormat(FimStopRules rules, std::string prefix, std::string suffix, std::string indent)
      : rules_(std::move(rules)), prefix_(std::move(prefix)), suffix_(std::move(suffix)), indent_(std::move(indent)) {}
  std::string stream_text(std::string_view) override { return {}; }  // Tabby does not stream
  std::string stream_end(const engine::GenerateResult&) override { return {}; }
  json body(const engine::GenerateResult& r) override {
    return json{{"id", random_id("cmpl-")},
                {"choices", json::array({json{{"index", 0}, {"text", text(r)}}})}};
  }

 private:
  std::string text(const engine::GenerateResult& r) const {
    std::string_view t = fim_drop_repeated_line(fim_drop_indent(r.text, indent_), prefix_);
    if (r.finish == engine::FinishReason::Length) t = fim_drop_unfinished_line(t);
    return finish_completion(t, rules_, suffix_);
  }
  FimStopRules rules_;
  std::string prefix_, suffix_, indent_;
};

json health(const ServerState& st) {
  const ModelSlot& model = st.default_model();
  const EngineService& eng = model.ready();
  return json{{"model", model.id()},
              {"chat_model", model.chat && model.chat->has_template() ? json(model.id()) : json(nullptr)},
              {"device", "cpu"},
              {"arch", eng.model().config().arch},
              {"cpu_info", "x86_64"},
              {"cpu_count", std::thread::hardware_concurrency()},
              {"cuda_devices", json::array()},
              {"version", json{{"build_date", __DATE__}, {"git_describe", "tessera"}, {"git_sha", ""}}}};
}

}  // namespace

void handle_tabby_completion(const httplib::Request& req, httplib::Response& res, ServerState& st, const json& body) {
  ModelSlot& model = st.route(body, false);  // Tabby sends its own model names: unknown ones get the default
  EngineService& eng = model.ready();
  const FimPromptBuilder& fim = model.fim_builder();
  const Fields f(body);
  const json* segs = f.get_object("segments");
  if (!segs) throw ApiError(400, "'segments' must be an object");
  const Fields sf(*segs);
  FimRequest fr;
  fr.prefix = sf.get_string("prefix");
  std::string indent = fim_trailing_indent(fr.prefix);
  fr.prefix.resize(fr.prefix.size() - indent.size());
  fr.suffix = sf.get_string("suffix");
  fr.filepath = sf.get_string("filepath");
  fr.language = f.get_string("language");
  fr.repo = repo_name_from_git_url(sf.get_string("git_url"));
  add_snippets(sf.get_array("declarations"), "declarations", fr.extra);
  add_snippets(sf.get_array("relevant_snippets_from_changed_files"), "relevant_snippets_from_changed_files", fr.extra);
  add_snippets(sf.get_array("relevant_snippets_from_recently_opened_files"),
               "relevant_snippets_from_recently_opened_files", fr.extra);
  const std::string clipboard = sf.get_string("clipboard");
  if (!clipboard.empty()) fr.extra.push_back({"", clipboard});

  JobSpec job;
  job.params.max_tokens = model.cap_max_tokens(static_cast<int>(f.get_int("max_tokens", 64, 1, 1 << 20)));
  job.params.sampler.temperature = 0.1f;
  read_sampling(f, job.params);
  fr.budget = std::max(3, std::min(st.opts.fim_max_prompt, eng.n_ctx() - 1 - job.params.max_tokens));
  job.prompt = fim.build(fr).tokens;
  check_prompt_fits(eng, job.prompt.size());
  FimStopRules rules = fim_stop_rules(eng.tokenizer(), fr.language, fr.filepath, fr.suffix);
  for (const std::string& w : rules.stop_words) job.params.stop.push_back(w);
  for (std::string& s : fim_stop_strings(eng.tokenizer())) job.params.stop.push_back(std::move(s));
  job.deadline = job_deadline(st);
  respond_generation(req, res, st, model, std::move(job), std::make_unique<TabbyFormat>(std::move(rules), fr.prefix, fr.suffix, std::move(indent)), false);
}

void register_tabby_routes(httplib::Server& svr, ServerState& st) {
  auto h = guarded([&st](const httplib::Request&, httplib::Response& r) { send_json(r, health(st)); });
  svr.Get("/v1/health", h);
  post(svr, st, "/v1/health", h);
  post(svr, st, "/v1/events", [](const httplib::Request& q, httplib::Response& r) {
    if (!q.body.empty()) parse_body(q.body);  // events are accepted and dropped; a broken body is still 400
    r.status = 200;
  });
}

}  // namespace tessera::server
