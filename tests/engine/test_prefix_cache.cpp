// The shared paged KV's prefix cache (issue 10), one behaviour per test on a tiny model: a sequence
// resumed from cached blocks has the logits of the same tokens evaluated alone; fork then diverge
// copies the shared partial block (the parent's logits do not change); truncating into a full indexed
// block and writing into it takes it out of the index; eviction under pressure takes the least
// recently used cached block; hit/miss/eviction counters are exact on a scripted run.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
#include "engine/model/model.h"

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

constexpr int kB = kKvBlock;

std::shared_ptr<Model> load_tiny(const std::string& backend = "cpu") {
  LoadOptions lo;
  lo.backend = backend;
  lo.print_plan = false;
  return Model::load((fs::path(TESSERA_GOLDEN_DIR) / "models" / "tiny-qwen3-q8_0.gguf").string(), lo);
}

ContextOptions opts(int n_seq = 2, int kv_tokens = 0, int n_batch = 64, bool prefix_cache = true) {
  ContextOptions co;
  co.n_ctx = 256;
  co.kv_tokens = kv_tokens;
  co.n_batch = n_batch;
  co.n_seq_max = n_seq;
  co.n_threads = 2;
  co.prefix_cache = prefix_cache;
  co.print_plan = false;
  return co;
}

double nmse(std::span<const float> ref, std::span<const float> got) {
  EXPECT_EQ(ref.size(), got.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return num / den;
}

std::vector<int32_t> ids(int n, int seed) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back(static_cast<int32_t>((i * 733 + seed * 7919 + 11) % 4000));
  return v;
}
std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }
std::span<const int32_t> first(const std::vector<int32_t>& v, size_t n) { return std::span(v).first(n); }
std::span<const int32_t> from(const std::vector<int32_t>& v, size_t n) { return std::span(v).subspan(n); }

// Prompt A evaluated in seq 0 and cleared; A + tail in seq 1 adopts A's full blocks and evaluates
// the rest. The reference evaluates the same tokens in a fresh context without prefix cache in the same
// chunks (so the same kernels run: NMSE <= 1e-6), and in one batch (golden threshold).
TEST(PrefixCache, ResumedMatchesAlone) {
  auto model = load_tiny();
  for (const int a_len : {96, 100, 130}) {
    SCOPED_TRACE("prefix of " + std::to_string(a_len));
    const auto a = ids(a_len, 1), tail = ids(20, 2), prompt = cat(a, tail);
    const size_t cached = static_cast<size_t>(a_len / kB * kB);

    Context ctx(model, opts());
    ctx.eval(first(a, cached), false, 0);  // the cached blocks, then the rest of A
    if (cached < a.size()) ctx.eval(from(a, cached), false, 0);
    ctx.clear(0);
    EXPECT_EQ(ctx.kv_cache().n_cached(), a_len / kB);
    ASSERT_EQ(ctx.reuse_prefix(1, prompt), static_cast<int>(cached));
    EXPECT_EQ(ctx.kv_cache().stats().hits, static_cast<uint64_t>(a_len / kB));
    const auto got = copy(ctx.eval(from(prompt, cached), false, 1));

    Context same_chunks(model, opts(1, 0, 64, false));
    same_chunks.eval(first(prompt, cached));
    const auto ref = copy(same_chunks.eval(from(prompt, cached)));
    EXPECT_LE(nmse(ref, got), 1e-6);

    Context one_batch(model, opts(1, 0, 512, false));
    const auto ref1 = copy(one_batch.eval(prompt));
    EXPECT_LE(nmse(ref1, got), 5e-4);  // a batch of another size: other kernels (gemm vs gemv) may run
  }
}

// fork, then both sides write into the shared partial block: each side gets its own copy, and each
// side's logits are those of its tokens alone (on both backends: each has its own kv_copy).
class ForkTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ForkTest, ForkThenDivergeCopiesOnWrite) {
  auto model = load_tiny(GetParam());
  const auto p = ids(40, 3), x = ids(5, 4), y = ids(7, 5);
  Context ref(model, opts(1, 0, 64, false));
  ref.eval(p);
  const auto want_x = copy(ref.eval(x));
  ref.clear();
  ref.eval(p);
  const auto want_y = copy(ref.eval(y));

  for (const bool parent_first : {false, true}) {
    SCOPED_TRACE(parent_first ? "parent writes first" : "child writes first");
    Context ctx(model, opts(2));
    ctx.eval(p, false, 0);
    ctx.fork(0, 1);
    const std::vector<int32_t> shared(ctx.blocks(0).begin(), ctx.blocks(0).end());
    ASSERT_EQ(shared.size(), 2u);
    EXPECT_TRUE(std::ranges::equal(ctx.blocks(1), shared));
    EXPECT_EQ(ctx.kv_cache().refcount(shared[0]), 2);
    EXPECT_EQ(ctx.kv_cache().refcount(shared[1]), 2);
    EXPECT_EQ(ctx.blocks_needed(0, 1), 1);  // a copy of the shared partial block
    const int free0 = ctx.n_free_blocks();

    std::vector<float> got_x, got_y;
    if (parent_first) {
      got_x = copy(ctx.eval(x, false, 0));
      got_y = copy(ctx.eval(y, false, 1));
    } else {
      got_y = copy(ctx.eval(y, false, 1));
      got_x = copy(ctx.eval(x, false, 0));
    }
    EXPECT_EQ(ctx.n_free_blocks(), free0 - 1);  // one copy; the last writer keeps the original
    const int writer_first = parent_first ? 0 : 1, writer_last = parent_first ? 1 : 0;
    EXPECT_NE(ctx.blocks(writer_first)[1], shared[1]);
    EXPECT_EQ(ctx.blocks(writer_last)[1], shared[1]);
    EXPECT_EQ(ctx.blocks(0)[0], shared[0]);  // the full block stays shared
    EXPECT_EQ(ctx.blocks(1)[0], shared[0]);
    EXPECT_EQ(ctx.kv_cache().refcount(shared[0]), 2);
    EXPECT_EQ(ctx.kv_cache().refcount(shared[1]), 1);
    EXPECT_LE(nmse(want_x, got_x), 1e-6);
    EXPECT_LE(nmse(want_y, got_y), 1e-6);
    EXPECT_NO_THROW(ctx.kv_cache().check());
  }

  // both sides in one batch: the over-count of copies must not make it fail with one block left
  Context ctx(model, opts(2, 3 * kB));
  ctx.eval(p, false, 0);
  ctx.fork(0, 1);
  ASSERT_EQ(ctx.n_free_blocks(), 1);
  const std::array<int32_t, 1> t0{x[0]}, t1{y[0]};
  const SeqInput both[] = {{0, t0, false}, {1, t1, false}};
  EXPECT_NO_THROW(ctx.eval_batch(both));
  EXPECT_NO_THROW(ctx.kv_cache().check());
}

INSTANTIATE_TEST_SUITE_P(Backends, ForkTest, ::testing::Values("cpu", "ref"));

// A sequence truncated into one of its full, indexed blocks and extended with other tokens: the block
// leaves the index before it is written, so a later prompt with the original tokens misses it (and
// gets the right logits) instead of adopting the overwritten block.
TEST(PrefixCache, TruncateIntoIndexedBlockThenExtendUnpublishes) {
  auto model = load_tiny();
  const auto a = ids(64, 6), other = ids(10, 7), more = ids(12, 8);
  Context ctx(model, opts(2));
  ctx.eval(first(a, kB), false, 0);  // chunks as the reference's below
  ctx.eval(from(a, kB), false, 0);
  const int b1 = ctx.blocks(0)[1];
  EXPECT_TRUE(ctx.kv_cache().indexed(b1));
  EXPECT_EQ(ctx.kv_cache().n_indexed(), 2);
  ctx.truncate(0, 40);
  EXPECT_TRUE(ctx.kv_cache().indexed(b1));  // still intact: nothing wrote into it yet
  ctx.eval(other, false, 0);                // positions 40..49 of block 1 change
  EXPECT_EQ(ctx.blocks(0)[1], b1);          // ours alone: written in place
  EXPECT_FALSE(ctx.kv_cache().indexed(b1));
  EXPECT_EQ(ctx.kv_cache().n_indexed(), 1);
  EXPECT_NO_THROW(ctx.kv_cache().check());

  const auto prompt = cat(a, more);
  EXPECT_EQ(ctx.reuse_prefix(1, prompt), kB);  // block 0 only
  const auto got = copy(ctx.eval(from(prompt, kB), false, 1));
  Context ref(model, opts(1, 0, 64, false));
  ref.eval(first(prompt, kB));
  EXPECT_LE(nmse(copy(ref.eval(from(prompt, kB))), got), 1e-6);

  // truncated into an indexed block another sequence holds too: copy-on-write, the block stays
  // indexed for the other holder
  Context ctx2(model, opts(2));
  ctx2.eval(a, false, 0);
  ASSERT_EQ(ctx2.reuse_prefix(1, prompt), 2 * kB);
  const int c1 = ctx2.blocks(0)[1];
  EXPECT_EQ(ctx2.kv_cache().refcount(c1), 2);
  ctx2.truncate(0, 40);
  ctx2.eval(other, false, 0);
  EXPECT_NE(ctx2.blocks(0)[1], c1);
  EXPECT_TRUE(ctx2.kv_cache().indexed(c1));
  EXPECT_EQ(ctx2.kv_cache().refcount(c1), 1);
  const auto got2 = copy(ctx2.eval(from(prompt, 2 * kB), false, 1));
  Context ref2(model, opts(1, 0, 64, false));
  ref2.eval(first(prompt, 2 * kB));
  EXPECT_LE(nmse(copy(ref2.eval(from(prompt, 2 * kB))), got2), 1e-6);
  EXPECT_NO_THROW(ctx2.kv_cache().check());
}

// Four blocks, four cached one-block prompts: a new block evicts the least recently used one (a hit
// refreshes a block), and only that one.
TEST(PrefixCache, EvictionTakesLeastRecentlyUsed) {
  auto model = load_tiny();
  Context ctx(model, opts(2, 4 * kB));
  std::vector<std::vector<int32_t>> p;
  std::vector<int> block;
  for (int i = 0; i < 4; ++i) {
    p.push_back(ids(kB, 20 + i));
    ctx.eval(p.back(), false, 0);
    block.push_back(ctx.blocks(0)[0]);
    ctx.clear(0);
  }
  EXPECT_EQ(ctx.kv_cache().n_cached(), 4);
  EXPECT_EQ(ctx.kv_cache().n_free(), 4);
  // touch prompt 0: LRU order becomes 1, 2, 3, 0
  auto p0 = cat(p[0], {1});
  EXPECT_EQ(ctx.reuse_prefix(1, p0), kB);
  EXPECT_EQ(ctx.blocks(1)[0], block[0]);
  ctx.clear(1);
  // one new block: evicts prompt 1's
  ctx.eval(ids(5, 30), false, 0);
  EXPECT_EQ(ctx.blocks(0)[0], block[1]);
  EXPECT_EQ(ctx.kv_cache().stats().evictions, 1u);
  EXPECT_FALSE(ctx.kv_cache().indexed(block[1]));
  EXPECT_EQ(ctx.reuse_prefix(1, cat(p[1], {1})), 0);  // gone
  for (int i : {0, 2, 3}) {
    EXPECT_EQ(ctx.reuse_prefix(1, cat(p[static_cast<size_t>(i)], {1})), kB) << "prompt " << i;
    EXPECT_EQ(ctx.blocks(1)[0], block[static_cast<size_t>(i)]);
    ctx.clear(1);
  }
  // 0, 2 and 3 were touched in this order: the next eviction takes 0's block
  ctx.eval(ids(kB - 5, 31), false, 0);  // fills seq 0's first block
  ctx.eval(ids(1, 32), false, 0);       // a second block: evicts
  EXPECT_EQ(ctx.blocks(0)[1], block[0]);
  EXPECT_EQ(ctx.kv_cache().stats().evictions, 2u);
  EXPECT_NO_THROW(ctx.kv_cache().check());
}

// Hit, miss and eviction counts on a scripted run, step by step.
TEST(PrefixCache, CountersAreExact) {
  auto model = load_tiny();
  Context ctx(model, opts(2, 6 * kB));
  const auto& st = ctx.kv_cache().stats();
  auto expect = [&](uint64_t h, uint64_t m, uint64_t e, const char* step) {
    EXPECT_EQ(st.hits, h) << step;
    EXPECT_EQ(st.misses, m) << step;
    EXPECT_EQ(st.evictions, e) << step;
  };
  const auto p = ids(100, 40);  // 3 full blocks + 4 tokens
  EXPECT_EQ(ctx.reuse_prefix(0, p), 0);  // empty cache: the first lookup misses, the rest are not tried
  expect(0, 1, 0, "cold");
  ctx.eval(p, false, 0);  // 4 blocks, 3 indexed
  EXPECT_EQ(ctx.kv_cache().n_indexed(), 3);
  EXPECT_EQ(ctx.reuse_prefix(1, p), 3 * kB);  // all three full blocks (limit: 99 tokens)
  expect(3, 1, 0, "warm");
  ctx.eval(from(p, 3 * kB), false, 1);  // one more block: 5 of 6 used
  // a prompt sharing two blocks, then different: 2 hits, 1 miss
  const auto q = cat(std::vector<int32_t>(p.begin(), p.begin() + 2 * kB), ids(40, 41));
  ctx.clear(0);  // block 3 (partial) freed; 0..2 still held by seq 1
  EXPECT_EQ(ctx.reuse_prefix(0, q), 2 * kB);
  expect(5, 2, 0, "partial");
  ctx.eval(from(q, 2 * kB), false, 0);  // 40 tokens: one full block (indexed) + 8, 2 blocks: 6 of 6 used
  EXPECT_EQ(ctx.n_free_blocks(), 0);
  EXPECT_EQ(ctx.kv_cache().n_indexed(), 4);
  // the same prompt again: the sequence holds it already (all but the last token), no lookup
  EXPECT_EQ(ctx.reuse_prefix(0, q), static_cast<int>(q.size()) - 1);
  expect(5, 2, 0, "own prefix");
  // full: 103 + 40 tokens take a 5th block, none is free; nothing changes
  EXPECT_THROW(ctx.eval(ids(40, 42), false, 0), tessera::Error);
  EXPECT_EQ(ctx.n_past(0), 103);
  expect(5, 2, 0, "full");
  // seq 1 cleared: its partial block is freed, blocks 0..2 stay (held by seq 0 for 0, 1; 2 cached)
  ctx.clear(1);
  EXPECT_EQ(ctx.kv_cache().n_cached(), 1);
  EXPECT_EQ(ctx.n_free_blocks(), 2);
  // seq 0 grows by two blocks (103 + 60 tokens): the free block first, then cached block 2 is evicted
  ctx.eval(ids(60, 43), false, 0);
  expect(5, 2, 1, "evicted");
  // p again in seq 1: blocks 0, 1 hit (held by seq 0), block 2 was evicted: a miss
  EXPECT_EQ(ctx.reuse_prefix(1, p), 2 * kB);
  expect(7, 3, 1, "after eviction");
  EXPECT_NO_THROW(ctx.kv_cache().check());
}

}  // namespace
