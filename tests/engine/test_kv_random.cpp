// Randomized test of the shared paged KV cache (issue 10): thousands of operations on a Context with
// 8 sequences over a tiny model and a KV cache too small for all of them (so the cache fills up,
// cached blocks get evicted and sequences get preempted): add (reuse_prefix, then evaluate the rest),
// extend, a decode step of every running sequence in one batch, fork from a shared prefix and
// diverge (copy-on-write), truncate, cancel, evict (fill until a cached block is evicted), preempt
// (clear, and later re-add the same tokens through reuse_prefix).
//
// After every operation it checks the cache against a model kept by the test:
//  - KvCache::check() passes; free + cached + held == n_blocks;
//  - every block's refcount is the number of sequence positions-blocks naming it;
//  - each sequence holds exactly its tokens in ceil(n_past / 32) blocks;
//  - a shadow of the KV contents: for every block slot, a hash of the token prefix whose key/value the
//    last write put there (a copy-on-write copies the shadow too). Every position a sequence holds must
//    carry the hash of that sequence's own prefix, so a write into a shared block, an adopted block
//    with other contents or a held block handed out again is caught on the spot.
// Every logits row returned is finite; on a sample of re-added sequences (resumed from the prefix
// cache), the next-token logits match the same tokens evaluated alone in a context without prefix
// cache, and a failed (full) evaluation changes nothing.
//
// TESSERA_KV_RANDOM_OPS / TESSERA_KV_RANDOM_SEED override the op count / seed (soak runs).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
#include "engine/model/model.h"
#include "kernels/registry.h"

#ifndef KV_RANDOM_OPS
#define KV_RANDOM_OPS 10000
#endif

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

constexpr int kB = kKvBlock;
constexpr int kSeqs = 8;
constexpr int kCtx = 320;                // tokens per sequence (10 blocks)
constexpr int kKvBlocks = 24;            // shared by 8 sequences: fills up

long env_or(const char* name, long dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : dflt;
}

double nmse(std::span<const float> ref, std::span<const float> got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return num / den;
}

uint64_t mix(uint64_t h, int32_t t) {  // the shadow's prefix hash: splitmix64 of (parent, token)
  uint64_t z = h * 0x9e3779b97f4a7c15ull + static_cast<uint32_t>(t) + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (z ^ (z >> 31)) | 1;  // never 0 (0: slot never written)
}

// One matmul kernel for every token count (the GEMM's, also for one token): logits then do not
// depend on how tokens were batched, so a sequence resumed from blocks computed in other batches must
// match the same tokens evaluated alone to the bit. (With the default policy the fused GEMV of decode
// steps and the GEMM of prefill differ by NMSE ~1e-6.)
std::shared_ptr<Model> load_tiny() {
  LoadOptions lo;
  lo.print_plan = false;
  const ops::BoundMatmul gemm = ops::BoundMatmul::bind(ops::KernelPolicy{}, GgmlType::Q8_0, 256, 256, ops::host_caps());
  lo.kernels.set("gemv_q8_0", gemm.many->variant);
  lo.kernels.set("gemm_q8_0", gemm.many->variant);
  return Model::load((fs::path(TESSERA_GOLDEN_DIR) / "models" / "tiny-qwen3-q8_0.gguf").string(), lo);
}

ContextOptions options(bool prefix_cache, int n_seq, int kv_tokens) {
  ContextOptions co;
  co.n_ctx = kCtx;
  co.kv_tokens = kv_tokens;
  co.n_batch = 64;
  co.n_seq_max = n_seq;
  co.n_threads = 1;
  co.prefix_cache = prefix_cache;
  co.print_plan = false;
  return co;
}

bool is_full_error(const Error& e) {  // the capacity check before anything runs
  const std::string m = e.what();
  return m.rfind("KV cache is full:", 0) == 0 && m.find("needed") != std::string::npos;
}

class Harness {
 public:
  explicit Harness(uint64_t seed)
      : model_(load_tiny()),
        ctx_(model_, options(true, kSeqs, kKvBlocks * kB)),
        ref_(model_, options(false, 1, kCtx)),
        rng_(seed),
        V_(static_cast<int32_t>(model_->config().n_vocab)),
        toks_(kSeqs),
        shadow_(static_cast<size_t>(ctx_.kv_cache().n_blocks())) {
    // A few base prompts of 40-200 tokens: requests share their prefixes, so the cache hits.
    for (int i = 0; i < 6; ++i) base_.push_back(random_tokens(static_cast<int>(uniform(40, 200))));
  }

  void run(long n_ops) {
    for (long op = 0; op < n_ops; ++op) {
      const int kind = static_cast<int>(uniform(0, 99));
      if (kind < 22) op_add();
      else if (kind < 47) op_extend();
      else if (kind < 57) op_step();
      else if (kind < 67) op_fork();
      else if (kind < 75) op_truncate();
      else if (kind < 85) op_cancel();
      else if (kind < 90) op_evict();
      else op_preempt();
      verify();
      if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) {
        ADD_FAILURE() << "stopped after operation " << op;
        return;
      }
    }
  }

  void report() const {
    const auto& st = ctx_.kv_cache().stats();
    std::printf(
        "kv random: hits %llu misses %llu evictions %llu | adds %d (resumed %d, re-added %d) extends %d steps %d "
        "forks %d (copy-on-write %d) truncates %d cancels %d evicts %d preempts %d (on full %d) | full errors %d | "
        "resumed logits checked %d, max NMSE %.3g\n",
        (unsigned long long)st.hits, (unsigned long long)st.misses, (unsigned long long)st.evictions, n_add_, n_resumed_,
        n_readd_, n_extend_, n_step_, n_fork_, n_cow_, n_truncate_, n_cancel_, n_evict_, n_preempt_, n_preempt_full_,
        n_full_, n_checked_, max_nmse_);
  }

  const KvCache& cache() const { return ctx_.kv_cache(); }
  int checked() const { return n_checked_; }
  int cow() const { return n_cow_; }
  int full() const { return n_full_; }

 private:
  int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  std::vector<int32_t> random_tokens(int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<int32_t>(uniform(0, V_ - 1));
    return t;
  }
  int pick(bool running) {  // a random sequence that is running (n_past > 0) or empty; -1 if none
    std::vector<int> c;
    for (int s = 0; s < kSeqs; ++s)
      if ((ctx_.n_past(s) > 0) == running) c.push_back(s);
    return c.empty() ? -1 : c[static_cast<size_t>(uniform(0, static_cast<int64_t>(c.size()) - 1))];
  }

  // Preemption when the cache is full: a random running sequence other than `keep` is cleared and
  // parked, to be re-added later. False when there is none.
  bool preempt_other(std::span<const int> keep) {
    std::vector<int> c;
    for (int s = 0; s < kSeqs; ++s)
      if (ctx_.n_past(s) > 0 && std::find(keep.begin(), keep.end(), s) == keep.end()) c.push_back(s);
    if (c.empty()) return false;
    const int s = c[static_cast<size_t>(uniform(0, static_cast<int64_t>(c.size()) - 1))];
    park(s);
    ++n_preempt_full_;
    return true;
  }
  void park(int s) {
    parked_.push_back(toks_[static_cast<size_t>(s)]);
    if (parked_.size() > 16) parked_.erase(parked_.begin());
    clear(s);
  }
  void clear(int s) {
    ctx_.clear(s);
    toks_[static_cast<size_t>(s)].clear();
  }

  // One eval_batch with the model updated. False (and nothing changed: checked) when the cache is full.
  bool eval(std::span<const SeqInput> ins) {
    std::vector<std::vector<int32_t>> before(kSeqs);
    for (int s = 0; s < kSeqs; ++s) before[static_cast<size_t>(s)].assign(ctx_.blocks(s).begin(), ctx_.blocks(s).end());
    // The blocks this takes: new ones, and copies of shared partial last blocks (of k writers into a
    // block held r times, min(k, r - 1) copy; the last writes in place).
    const int free_before = ctx_.n_free_blocks();
    int need = 0;
    std::vector<int> writers(static_cast<size_t>(cache().n_blocks()), 0);
    std::vector<int> grow(kSeqs, 0);
    for (const SeqInput& in : ins) grow[static_cast<size_t>(in.seq)] += static_cast<int>(in.tokens.size());
    for (int s = 0; s < kSeqs; ++s) {
      const int p0 = static_cast<int>(toks_[static_cast<size_t>(s)].size()), k = grow[static_cast<size_t>(s)];
      if (k == 0) continue;
      need += (p0 + k + kB - 1) / kB - (p0 + kB - 1) / kB;
      if (p0 % kB != 0) ++writers[static_cast<size_t>(ctx_.blocks(s).back())];
    }
    for (int b = 0; b < cache().n_blocks(); ++b)
      need += std::min(writers[static_cast<size_t>(b)], cache().refcount(b) - 1 > 0 ? cache().refcount(b) - 1 : 0);
    std::span<const float> logits;
    try {
      logits = ctx_.eval_batch(ins);
    } catch (const Error& e) {
      if (!is_full_error(e)) throw;
      ++n_full_;
      EXPECT_GT(need, free_before) << "refused as full, but " << need << " blocks of " << free_before << " would do";
      for (int s = 0; s < kSeqs; ++s) {
        EXPECT_TRUE(std::ranges::equal(ctx_.blocks(s), before[static_cast<size_t>(s)])) << "failed eval changed seq " << s;
        EXPECT_TRUE(std::ranges::equal(ctx_.tokens(s), toks_[static_cast<size_t>(s)])) << "failed eval changed seq " << s;
      }
      return false;
    }
    for (float x : logits)
      if (!std::isfinite(x)) {
        ADD_FAILURE() << "non-finite logit";
        break;
      }
    last_logits_.assign(logits.end() - V_, logits.end());
    EXPECT_EQ(ctx_.n_free_blocks(), free_before - need) << "blocks taken";
    // The shadow: copies (copy-on-write of a partial last block) first, then the writes.
    std::vector<bool> seen(kSeqs, false);
    for (const SeqInput& in : ins) {
      const auto s = static_cast<size_t>(in.seq);
      if (seen[s]) continue;
      seen[s] = true;
      const auto& old = before[s];
      const auto now = ctx_.blocks(in.seq);
      const size_t p0 = toks_[s].size();
      for (size_t j = 0; j < p0 / kB; ++j) EXPECT_EQ(now[j], old[j]) << "a full block of seq " << s << " changed";
      if (p0 % kB != 0 && now[p0 / kB] != old[p0 / kB]) {
        shadow_[static_cast<size_t>(now[p0 / kB])] = shadow_[static_cast<size_t>(old[p0 / kB])];
        ++n_cow_;
      }
    }
    for (const SeqInput& in : ins) {
      auto& t = toks_[static_cast<size_t>(in.seq)];
      uint64_t h = hash_prefix(t);
      const auto blocks = ctx_.blocks(in.seq);
      for (int32_t id : in.tokens) {
        h = mix(h, id);
        const size_t p = t.size();
        shadow_[static_cast<size_t>(blocks[p / kB])][p % kB] = h;
        t.push_back(id);
      }
    }
    return true;
  }
  static uint64_t hash_prefix(std::span<const int32_t> t) {
    uint64_t h = 0;
    for (int32_t id : t) h = mix(h, id);
    return h;
  }
  // eval of one sequence, preempting others while the cache is full. False if it cannot fit at all.
  bool eval_one(int s, std::span<const int32_t> tokens, std::span<const int> keep = {}) {
    const SeqInput in{s, tokens, false};
    std::vector<int> k(keep.begin(), keep.end());
    k.push_back(s);
    while (!eval(std::span<const SeqInput>(&in, 1)))
      if (!preempt_other(k)) return false;
    return true;
  }

  void op_add() {
    const int s = pick(false);
    if (s < 0) return op_preempt();
    std::vector<int32_t> prompt;
    const bool readd = !parked_.empty() && uniform(0, 2) == 0;
    if (readd) {
      const size_t i = static_cast<size_t>(uniform(0, static_cast<int64_t>(parked_.size()) - 1));
      prompt = parked_[i];
      parked_.erase(parked_.begin() + static_cast<std::ptrdiff_t>(i));
      ++n_readd_;
    } else {
      const auto& b = base_[static_cast<size_t>(uniform(0, static_cast<int64_t>(base_.size()) - 1))];
      const int n = uniform(0, 3) == 0 ? static_cast<int>(uniform(1, static_cast<int64_t>(b.size()))) : static_cast<int>(b.size());
      prompt.assign(b.begin(), b.begin() + n);
      const auto tail = random_tokens(static_cast<int>(uniform(0, 40)));
      prompt.insert(prompt.end(), tail.begin(), tail.end());
      if (prompt.empty()) prompt.push_back(1);
    }
    ++n_add_;
    const int n = ctx_.reuse_prefix(s, prompt);
    EXPECT_EQ(n % kB, 0);  // an empty sequence adopts whole blocks only
    EXPECT_LE(n, static_cast<int>(prompt.size()) - 1);
    toks_[static_cast<size_t>(s)].assign(prompt.begin(), prompt.begin() + n);
    verify();  // the adopted blocks hold this prefix
    if (!eval_one(s, std::span(prompt).subspan(static_cast<size_t>(n)))) {
      clear(s);
      return;
    }
    if (n > 0) {
      ++n_resumed_;
      // A sample: the resumed sequence's next-token logits vs the same tokens alone.
      if (uniform(0, 9) == 0) {
        ref_.clear();
        const auto l = ref_.eval(prompt);
        const double e = nmse(l.last(static_cast<size_t>(V_)), last_logits_);
        max_nmse_ = std::max(max_nmse_, e);
        EXPECT_LE(e, 1e-6) << "resumed after " << n << " cached tokens of " << prompt.size();
        ++n_checked_;
      }
    }
  }

  void op_extend() {
    const int s = pick(true);
    if (s < 0) return op_add();
    const int k = static_cast<int>(uniform(1, 12));
    if (ctx_.n_past(s) + k > kCtx) return clear(s);  // done: the sequence hit its context
    const auto t = random_tokens(k);
    ++n_extend_;
    if (!eval_one(s, t)) clear(s);
  }

  void op_step() {  // one decode token of every running sequence in one forward pass
    ++n_step_;
    for (;;) {
      std::vector<SeqInput> ins;
      std::vector<std::array<int32_t, 1>> ids(kSeqs);
      for (int s = 0; s < kSeqs; ++s) {
        if (ctx_.n_past(s) == 0) continue;
        if (ctx_.n_past(s) + 1 > kCtx) {
          clear(s);
          continue;
        }
        ids[static_cast<size_t>(s)][0] = static_cast<int32_t>(uniform(0, V_ - 1));
        ins.push_back({s, ids[static_cast<size_t>(s)], false});
      }
      if (ins.empty() || eval(ins)) return;
      park(ins[static_cast<size_t>(uniform(0, static_cast<int64_t>(ins.size()) - 1))].seq);  // preempt one
      ++n_preempt_full_;
    }
  }

  void op_fork() {
    const int src = pick(true), dst = pick(false);
    if (src < 0 || dst < 0) return op_add();
    ++n_fork_;
    ctx_.fork(src, dst);
    toks_[static_cast<size_t>(dst)] = toks_[static_cast<size_t>(src)];
    verify();
    // both sides diverge: the child first half the time, the parent first the other half, or together
    const int keep[] = {src, dst};
    const int order = static_cast<int>(uniform(0, 2));
    const auto a = random_tokens(static_cast<int>(uniform(1, 6))), b = random_tokens(static_cast<int>(uniform(1, 6)));
    if (ctx_.n_past(src) + 6 > kCtx) return;
    if (order == 2) {
      const SeqInput ins[] = {{src, a, false}, {dst, b, false}};
      while (!eval(ins))
        if (!preempt_other(keep)) return clear(dst);
      return;
    }
    const int first = order == 0 ? dst : src, second = order == 0 ? src : dst;
    if (!eval_one(first, a, keep)) return clear(first);
    verify();
    if (!eval_one(second, b, keep)) clear(second);
  }

  void op_truncate() {
    const int s = pick(true);
    if (s < 0) return op_add();
    ++n_truncate_;
    const int n = ctx_.n_past(s);
    // into a full block (often an indexed one), at a block boundary, or anywhere
    int keep = 0;
    switch (uniform(0, 2)) {
      case 0: keep = static_cast<int>(uniform(0, n / kB)) * kB + static_cast<int>(uniform(1, kB - 1)); break;
      case 1: keep = static_cast<int>(uniform(0, n / kB)) * kB; break;
      default: keep = static_cast<int>(uniform(0, n)); break;
    }
    keep = std::min(keep, n);
    ctx_.truncate(s, keep);
    toks_[static_cast<size_t>(s)].resize(static_cast<size_t>(keep));
    if (keep > 0 && uniform(0, 1) == 0) {  // and write into it again
      verify();
      const auto t = random_tokens(static_cast<int>(uniform(1, 8)));
      if (!eval_one(s, t)) clear(s);
    }
  }

  void op_cancel() {
    const int s = pick(true);
    if (s < 0) return op_add();
    ++n_cancel_;
    clear(s);
  }

  void op_preempt() {
    const int s = pick(true);
    if (s < 0) return;
    ++n_preempt_;
    park(s);
  }

  void op_evict() {  // fresh tokens into an empty sequence until a cached block is evicted
    int s = pick(false);
    if (s < 0) {
      s = pick(true);
      park(s);
    }
    ++n_evict_;
    const uint64_t e0 = cache().stats().evictions;
    while (cache().stats().evictions == e0 && cache().n_cached() > 0 && ctx_.n_past(s) + 64 <= kCtx) {
      const auto t = random_tokens(64);
      if (!eval(std::span<const SeqInput>(std::array<SeqInput, 1>{SeqInput{s, t, false}}))) break;
    }
    if (uniform(0, 1) == 0) clear(s);
  }

  // The checks after every operation.
  void verify() {
    const KvCache& kv = cache();
    ASSERT_NO_THROW(kv.check());
    const int nb = kv.n_blocks();
    std::vector<int> refs(static_cast<size_t>(nb), 0);
    for (int s = 0; s < kSeqs; ++s) {
      const auto& t = toks_[static_cast<size_t>(s)];
      ASSERT_EQ(ctx_.n_past(s), static_cast<int>(t.size())) << "seq " << s;
      ASSERT_TRUE(std::ranges::equal(ctx_.tokens(s), t)) << "seq " << s;
      const auto blocks = ctx_.blocks(s);
      ASSERT_EQ(blocks.size(), (t.size() + kB - 1) / kB) << "seq " << s;
      uint64_t h = 0;
      for (size_t p = 0; p < t.size(); ++p) {
        h = mix(h, t[p]);
        const int32_t b = blocks[p / kB];
        ASSERT_TRUE(b >= 0 && b < nb) << "seq " << s << " block " << b;
        ASSERT_EQ(shadow_[static_cast<size_t>(b)][p % kB], h) << "seq " << s << " position " << p << " in block " << b
                                                              << ": the KV there is not this sequence's";
      }
      for (int32_t b : blocks) ++refs[static_cast<size_t>(b)];
    }
    int held = 0;
    for (int b = 0; b < nb; ++b) {
      ASSERT_EQ(kv.refcount(b), refs[static_cast<size_t>(b)]) << "block " << b;
      held += refs[static_cast<size_t>(b)] > 0;
    }
    ASSERT_EQ((kv.n_free() - kv.n_cached()) + kv.n_cached() + held, nb);
    ASSERT_EQ(ctx_.n_free_blocks(), nb - held);
  }

  std::shared_ptr<Model> model_;
  Context ctx_, ref_;
  std::mt19937_64 rng_;
  int32_t V_;
  std::vector<std::vector<int32_t>> base_, toks_, parked_;
  std::vector<std::array<uint64_t, kB>> shadow_;
  std::vector<float> last_logits_;
  int n_add_ = 0, n_resumed_ = 0, n_readd_ = 0, n_extend_ = 0, n_step_ = 0, n_fork_ = 0, n_cow_ = 0, n_truncate_ = 0,
      n_cancel_ = 0, n_evict_ = 0, n_preempt_ = 0, n_preempt_full_ = 0, n_full_ = 0, n_checked_ = 0;
  double max_nmse_ = 0;
};

TEST(KvRandom, TenThousandOperations) {
  const long n_ops = env_or("TESSERA_KV_RANDOM_OPS", KV_RANDOM_OPS);
  const auto seed = static_cast<uint64_t>(env_or("TESSERA_KV_RANDOM_SEED", 1));
  Harness h(seed);
  h.run(n_ops);
  h.report();
  const auto& st = h.cache().stats();
  EXPECT_GT(st.hits, 0u);
  EXPECT_GT(st.misses, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_GT(h.cow(), 0);
  EXPECT_GT(h.full(), 0);
  EXPECT_GT(h.checked(), 0);
}

}  // namespace
