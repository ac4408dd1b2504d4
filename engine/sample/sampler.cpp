// Sampler (see sampler.h). Order as llama.cpp's default chain: penalties, top-k, top-p, min-p,
// temperature, random draw. The draw uses its own uniform mapping of mt19937_64 output so a seed gives
// the same tokens on every platform.
#include "engine/sample/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tessera::engine {

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw_error("argmax of an empty row");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplerParams& params) : params_(params) {
  seed_ = params.seed == SamplerParams::kRandomSeed
              ? (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()
              : params.seed;
  rng_.seed(seed_);
}

void Sampler::accept(int32_t token) { history_.push_back(token); }
void Sampler::reset() { history_.clear(); }

void Sampler::apply_penalties() {
  const SamplerParams& p = params_;
  if (p.penalty_last_n == 0 || history_.empty()) return;
  if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
  const size_t window = p.penalty_last_n < 0 ? history_.size()
                                             : std::min(history_.size(), static_cast<size_t>(p.penalty_last_n));
  counts_.clear();
  for (size_t i = history_.size() - window; i < history_.size(); ++i) counts_.push_back({history_[i], 1});
  std::sort(counts_.begin(), counts_.end());
  size_t u = 0;  // merge equal ids into (id, count)
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (u > 0 && counts_[u - 1].first == counts_[i].first) ++counts_[u - 1].second;
    else counts_[u++] = counts_[i];
  }
  counts_.resize(u);
  for (auto [id, count] : counts_) {
    if (id < 0 || static_cast<size_t>(id) >= cand_.size()) continue;
    float& l = cand_[static_cast<size_t>(id)].first;  // cand_ is still indexed by id here
    if (p.repeat_penalty != 1.0f) l = l > 0.0f ? l / p.repeat_penalty : l * p.repeat_penalty;
    l -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw_error("sample: empty logits");
  const SamplerParams& p = params_;
  cand_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_[i] = {logits[i], static_cast<int32_t>(i)};
  apply_penalties();

  if (p.temperature <= 0.0f) {  // greedy
    size_t best = 0;
    for (size_t i = 1; i < cand_.size(); ++i)
      if (cand_[i].first > cand_[best].first) best = i;
    return cand_[best].second;
  }

  // Largest first (lower id first on ties); keep only the top k.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t n = cand_.size();
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    n = static_cast<size_t>(p.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(n), cand_.end(), better);
  } else {
    std::sort(cand_.begin(), cand_.end(), better);
  }

  // Probabilities at temperature 1 for top-p and min-p.
  const float lmax = cand_[0].first;
  std::vector<float>& prob = prob_;
  prob.resize(n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(cand_[i].first - lmax);
  for (size_t i = 0; i < n; ++i) prob[i] = static_cast<float>(prob[i] / sum);
  if (p.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }
  if (p.min_p > 0.0f) {  // drop tokens below min_p times the best probability
    const float floor = p.min_p * prob[0];
    size_t keep = 1;
    while (keep < n && prob[keep] >= floor) ++keep;
    n = keep;
  }

  // Temperature, then draw.
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) total += prob[i] = std::exp((cand_[i].first - lmax) / p.temperature);
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += prob[i];
    if (u < cum) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace tessera::engine
