// Model specs and the memory plan: sizes, --model flags, the JSON config, and the plan's KV and
// scratch figures against what engine::Context really allocates for the same options.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/context.h"
#include "server/models.h"

namespace tessera::server {
namespace {

TEST(Models, ParseSize) {
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("2G"), 2ull << 30);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("1.5g"), 3ull << 29);
  EXPECT_EQ(parse_size("64k"), 64ull << 10);
  EXPECT_EQ(parse_size("1048576"), 1048576ull);
  EXPECT_EQ(parse_size("100MB"), 100ull << 20);
  for (const char* bad : {"", "M", "-1G", "12X", "1.2.3G", "nan"}) EXPECT_THROW(parse_size(bad), Error) << bad;
}

TEST(Models, ModelFlag) {
  const ModelSpec m = parse_model_flag("coder=/m/q.gguf,backend=ref,ctx=2048,kv-mem=256M,parallel=2,max-tokens=64");
  EXPECT_EQ(m.name, "coder");
  EXPECT_EQ(m.path, "/m/q.gguf");
  EXPECT_EQ(m.backend, "ref");
  EXPECT_EQ(m.ctx, 2048);
  EXPECT_EQ(m.kv_mem, 256ull << 20);
  EXPECT_EQ(m.parallel, 2);
  EXPECT_EQ(m.max_tokens, 64);
  const ModelSpec plain = parse_model_flag("small=models/s.gguf");
  EXPECT_EQ(plain.name, "small");
  EXPECT_EQ(plain.ctx, 0);
  EXPECT_THROW(parse_model_flag("nameonly"), Error);
  EXPECT_THROW(parse_model_flag("a=b,ctx=ten"), Error);
  EXPECT_THROW(parse_model_flag("a=b,ctx=1"), Error);  // below 64
  EXPECT_THROW(parse_model_flag("a=b,colour=red"), Error);
  EXPECT_THROW(parse_model_flag("a=b,parallel"), Error);
}

TEST(Models, FinishSpecs) {
  std::vector<ModelSpec> s = {parse_model_flag("a=x.gguf,ctx=128"), parse_model_flag("b=y.gguf,kv-mem=1M")};
  finish_specs(s, 4096, 4, 0);
  EXPECT_EQ(s[0].ctx, 128);
  EXPECT_EQ(s[0].parallel, 4);
  EXPECT_EQ(s[1].ctx, 4096);
  std::vector<ModelSpec> twice = {parse_model_flag("a=x.gguf"), parse_model_flag("a=y.gguf")};
  EXPECT_THROW(finish_specs(twice, 4096, 4, 0), Error);
}

TEST(Models, ConfigFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("tessera-models-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "models.json").string();
  std::ofstream(path) << R"({"models": [
      {"name": "coder", "path": "q.gguf", "ctx": 1024, "kv_mem": "64M", "parallel": 2, "max_tokens": 128},
      {"name": "small", "path": "/abs/s.gguf", "backend": "ref", "kv_mem": 1048576}],
    "default": "small"})";
  const ModelsConfig cfg = read_models_config(path);
  ASSERT_EQ(cfg.models.size(), 2u);
  EXPECT_EQ(cfg.models[0].path, (dir / "q.gguf").string());  // relative to the file
  EXPECT_EQ(cfg.models[0].kv_mem, 64ull << 20);
  EXPECT_EQ(cfg.models[0].max_tokens, 128);
  EXPECT_EQ(cfg.models[1].path, "/abs/s.gguf");
  EXPECT_EQ(cfg.models[1].backend, "ref");
  EXPECT_EQ(cfg.models[1].kv_mem, 1048576u);
  EXPECT_EQ(cfg.default_model, "small");
  std::ofstream(path) << R"({"models": [{"name": "x", "path": "p", "ctx": "big"}]})";
  EXPECT_THROW(read_models_config(path), Error);
  std::ofstream(path) << R"({"models": [{"name": "x", "path": "p", "gpu": 1}]})";
  EXPECT_THROW(read_models_config(path), Error);
  std::ofstream(path) << R"({"models": []})";
  EXPECT_THROW(read_models_config(path), Error);
  std::filesystem::remove_all(dir);
}

// The plan's KV and scratch match what a Context allocates with the same options (scratch: the
// workspace part exactly; the plan adds its estimate of stream buffers and logits on top).
TEST(Models, PlanMatchesContext) {
  for (const char* file : {"tiny-q8_0.gguf", "tiny-qwen3-q8_0.gguf"}) {
    ModelSpec spec;
    spec.name = "tiny";
    spec.path = std::string(TESSERA_GOLDEN_DIR "/models/") + file;
    spec.ctx = 200;
    spec.parallel = 3;
    std::vector<ModelSpec> specs = {spec};
    finish_specs(specs, 4096, 4, 0);
    const PlanRow row = plan_model(specs[0], 512);
    EXPECT_EQ(row.batch, 200);  // clamped to ctx as the context does
    EXPECT_LT(row.weights, std::filesystem::file_size(spec.path));
    engine::LoadOptions lo;
    lo.print_plan = false;
    auto model = engine::Model::load(spec.path, lo);
    EXPECT_EQ(row.weights, model->weight_bytes());
    engine::ContextOptions co;
    co.n_ctx = spec.ctx;
    co.n_seq_max = spec.parallel;
    co.n_batch = 512;
    co.kv_tokens = static_cast<int>(row.kv_tokens);
    co.print_plan = false;
    engine::Context ctx(model, co);
    EXPECT_EQ(row.kv, ctx.kv_bytes()) << file;
    EXPECT_GE(row.kv_tokens, 600);
    EXPECT_EQ(row.workspace, ctx.scratch_bytes()) << file;
    EXPECT_GT(row.scratch, row.workspace) << file;  // plus the stream's buffers and the logits

    // kv-mem: the tokens that fit, whole blocks; too small for one context is refused.
    ModelSpec budget = specs[0];
    budget.kv_tokens = 0;
    budget.kv_mem = row.kv;  // exactly the default's bytes
    EXPECT_EQ(plan_model(budget, 512).kv_tokens, row.kv_tokens);
    budget.kv_mem = row.kv / row.kv_tokens * 10;  // 10 tokens
    EXPECT_THROW(plan_model(budget, 512), Error);
  }
}

TEST(Models, PlanTable) {
  MemoryPlan p;
  PlanRow r;
  r.name = "coder";
  r.backend = "cpu";
  r.weights = 400u << 20;
  r.kv = 48u << 20;
  r.kv_tokens = 4096;
  r.scratch = 20u << 20;
  p.rows = {r};
  p.budget = 1u << 30;
  p.budget_source = "--mem-limit";
  EXPECT_TRUE(p.fits());
  const std::string t = p.table();
  EXPECT_NE(t.find("coder"), std::string::npos) << t;
  EXPECT_NE(t.find("468.0 MiB"), std::string::npos) << t;
  EXPECT_NE(t.find("fits"), std::string::npos) << t;
  p.budget = 100u << 20;
  EXPECT_FALSE(p.fits());
  EXPECT_NE(p.table().find("DOES NOT FIT"), std::string::npos);
  EXPECT_EQ(p.to_json()["models"][0]["total_bytes"], 468u << 20);
  EXPECT_GT(host_available_memory(), 0u);
}

}  // namespace
}  // namespace tessera::server
