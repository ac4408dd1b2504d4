// Token sampling: repetition/presence/frequency penalties, top-k, top-p, min-p, temperature and a
// seeded random draw (reproducible for a given seed); greedy (argmax) when temperature <= 0.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace tessera::engine {

struct SamplerParams {
  static constexpr uint64_t kRandomSeed = ~0ull;  // draw a seed from std::random_device

  float temperature = 0.8f;      // <= 0: greedy
  int top_k = 40;                // <= 0: off
  float top_p = 0.95f;           // >= 1: off
  float min_p = 0.05f;           // <= 0: off
  float repeat_penalty = 1.0f;   // 1: off (divides positive logits, multiplies negative ones)
  float presence_penalty = 0.0f;   // subtracted once per token present in the window
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the window
  int penalty_last_n = 64;       // window of recent tokens for the penalties (0: off, -1: all)
  uint64_t seed = kRandomSeed;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params = {});

  // Picks a token from one row of logits (uses the accepted history for penalties; does not
  // record the pick — call accept()).
  int32_t sample(std::span<const float> logits);
  // Records a token (prompt or generated) for the penalty window.
  void accept(int32_t token);
  void reset();  // clears history (the random state continues)

  const SamplerParams& params() const { return params_; }
  uint64_t seed() const { return seed_; }

 private:
  void apply_penalties();
  SamplerParams params_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  std::vector<std::pair<float, int32_t>> cand_;  // (logit or prob, id), reused between calls
  std::vector<std::pair<int32_t, int32_t>> counts_;  // (id, count) in the penalty window
  std::vector<float> prob_;  // probabilities of the kept candidates
};

// Index of the largest value (the first one on ties).
int32_t argmax(std::span<const float> logits);

}  // namespace tessera::engine
