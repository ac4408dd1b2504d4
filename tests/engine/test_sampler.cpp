// Sampler: greedy is argmax, a seed reproduces the draws, top-k / top-p / min-p keep exactly the
// tokens they should, penalties move the logits as documented.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "engine/sample/sampler.h"

using namespace tessera::engine;

namespace {

std::vector<float> random_logits(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// Logits whose softmax is exactly the given probabilities.
std::vector<float> logits_of(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

SamplerParams plain(uint64_t seed) {  // temperature 1, no filters
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::set<int32_t> drawn(Sampler& s, const std::vector<float>& l, int n) {
  std::set<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.insert(s.sample(l));
  return ids;
}

TEST(Sampler, GreedyIsArgmax) {
  SamplerParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    auto l = random_logits(1000, seed);
    EXPECT_EQ(s.sample(l), argmax(l));
  }
  std::vector<float> tie = {1.0f, 5.0f, 5.0f, 2.0f};
  EXPECT_EQ(s.sample(tie), 1);  // first of equal maxima
  EXPECT_EQ(argmax(tie), 1);
}

TEST(Sampler, SeedReproducible) {
  auto l = random_logits(500, 7);
  Sampler a(plain(42)), b(plain(42)), c(plain(43));
  std::vector<int32_t> ra, rb, rc;
  for (int i = 0; i < 200; ++i) {
    ra.push_back(a.sample(l));
    rb.push_back(b.sample(l));
    rc.push_back(c.sample(l));
  }
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
  EXPECT_EQ(a.seed(), 42u);
}

TEST(Sampler, FollowsTheDistribution) {
  const std::vector<double> p = {0.5, 0.25, 0.125, 0.125};
  Sampler s(plain(1));
  std::map<int32_t, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[s.sample(logits_of(p))];
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(count[i] / double(n), p[static_cast<size_t>(i)], 0.015) << i;
}

TEST(Sampler, TopK) {
  auto l = random_logits(100, 3);
  std::vector<int32_t> order(100);
  for (int i = 0; i < 100; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return l[static_cast<size_t>(a)] > l[static_cast<size_t>(b)]; });
  SamplerParams p = plain(5);
  p.temperature = 50.0f;  // flat: every kept token shows up
  p.top_k = 3;
  Sampler s(p);
  EXPECT_EQ(drawn(s, l, 3000), (std::set<int32_t>{order[0], order[1], order[2]}));
  p.top_k = 1;
  Sampler one(p);
  EXPECT_EQ(drawn(one, l, 200), (std::set<int32_t>{order[0]}));
}

TEST(Sampler, TopP) {
  const auto l = logits_of({0.05, 0.5, 0.15, 0.3});
  SamplerParams p = plain(9);
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.5 + 0.3: keep ids 1 and 3
  Sampler s(p);
  EXPECT_EQ(drawn(s, l, 2000), (std::set<int32_t>{1, 3}));
  p.top_p = 0.9f;  // 0.9 needs 0.5 + 0.3 + 0.15
  Sampler s2(p);
  EXPECT_EQ(drawn(s2, l, 4000), (std::set<int32_t>{1, 3, 2}));
}

TEST(Sampler, MinP) {
  const auto l = logits_of({0.05, 0.5, 0.15, 0.3});
  SamplerParams p = plain(11);
  p.min_p = 0.5f;  // keep p >= 0.25: ids 1 and 3
  Sampler s(p);
  EXPECT_EQ(drawn(s, l, 2000), (std::set<int32_t>{1, 3}));
  p.min_p = 0.2f;  // keep p >= 0.1: ids 1, 3, 2
  Sampler s2(p);
  EXPECT_EQ(drawn(s2, l, 4000), (std::set<int32_t>{1, 3, 2}));
}

TEST(Sampler, RepeatPenalty) {
  std::vector<float> l = {4.0f, 3.0f, -1.0f};
  SamplerParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;  // 4 -> 2 < 3
  Sampler s(p);
  EXPECT_EQ(s.sample(l), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(l), 1);
  s.reset();
  EXPECT_EQ(s.sample(l), 0);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  std::vector<float> l = {4.0f, 3.0f};
  SamplerParams p;
  p.temperature = 0.0f;
  p.presence_penalty = 0.5f;  // 4 - 0.5 = 3.5 > 3: still 0
  Sampler s(p);
  s.accept(0);
  s.accept(0);
  EXPECT_EQ(s.sample(l), 0);
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.6f;  // two occurrences: 4 - 1.2 = 2.8 < 3
  Sampler f(p);
  f.accept(0);
  EXPECT_EQ(f.sample(l), 0);  // one occurrence: 3.4
  f.accept(0);
  EXPECT_EQ(f.sample(l), 1);
  p.penalty_last_n = 1;  // only the last token counts
  Sampler w(p);
  w.accept(0);
  w.accept(0);
  w.accept(1);
  EXPECT_EQ(w.sample(l), 0);
}

}  // namespace
