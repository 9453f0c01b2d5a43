#include "frontend/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

namespace {

void check_token(std::int32_t id, std::size_t vocab, const char* what) {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab)
    throw std::invalid_argument(fmt::format("{} token {} is outside the vocabulary of {} tokens", what, id, vocab));
}

}  // namespace

void SamplingOptions::validate() const {
  auto require = [](bool ok, const std::string& why) {
    if (!ok) throw std::invalid_argument(why);
  };
  require(std::isfinite(temperature) && temperature >= 0, fmt::format("temperature {} must be >= 0", temperature));
  require(top_p >= 0 && top_p <= 1, fmt::format("top-p {} must be in [0, 1]", top_p));
  require(top_k >= 0, fmt::format("top-k {} must be >= 0 (0: no limit)", top_k));
  require(std::isfinite(presence_penalty), "presence penalty must be finite");
  require(std::isfinite(frequency_penalty), "frequency penalty must be finite");
  require(std::isfinite(penalty_decay) && penalty_decay >= 0,
          fmt::format("penalty decay {} must be >= 0", penalty_decay));
  for (std::int32_t id : banned) require(id >= 0, fmt::format("banned token {} is negative", id));
}

Sampler::Sampler(SamplingOptions options, std::uint64_t seed) : options_(std::move(options)), rng_(seed) {
  options_.validate();
}

// A quickselect on mass: linear time, where sorting a large vocabulary would cost more than
// the rest of the sampling.
std::size_t Sampler::most_likely_reaching(std::vector<Ranked>& ranked, double wanted) {
  auto at = [&](std::size_t i) { return ranked.begin() + static_cast<std::ptrdiff_t>(i); };
  // ranked[0, lo) are kept, with mass `wanted - need`; the cut lies in (lo, hi].
  std::size_t lo = 0, hi = ranked.size();
  double need = wanted;
  while (hi - lo > 32) {
    const std::size_t mid = lo + (hi - lo) / 2;
    std::nth_element(at(lo), at(mid), at(hi), more_likely);
    double mass = 0;
    for (std::size_t i = lo; i < mid; ++i) mass += ranked[i].p;
    if (mass >= need) {
      hi = mid;
    } else {
      need -= mass;
      lo = mid;
    }
  }
  std::sort(at(lo), at(hi), more_likely);
  double mass = 0;
  for (std::size_t i = lo; i < hi; ++i)
    if ((mass += ranked[i].p) >= need) return i + 1;
  return std::max<std::size_t>(hi, 1);
}

const std::vector<double>& Sampler::weights(std::span<const float> logits) const {
  const std::size_t vocab = logits.size();
  std::vector<double>& adjusted = scratch_.adjusted;
  adjusted.resize(vocab);
  for (std::size_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i])) throw std::invalid_argument(fmt::format("the logit of token {} is NaN", i));
    adjusted[i] = logits[i];
  }
  constexpr double kNever = -std::numeric_limits<double>::infinity();
  for (std::int32_t id : options_.banned) {
    check_token(id, vocab, "banned");
    adjusted[static_cast<std::size_t>(id)] = kNever;
  }
  for (const auto& [id, count] : occurrences_) {
    check_token(id, vocab, "penalised");
    adjusted[static_cast<std::size_t>(id)] -= options_.presence_penalty + options_.frequency_penalty * count;
  }

  double top = kNever;
  std::size_t best = 0;
  for (std::size_t i = 0; i < vocab; ++i)
    if (adjusted[i] > top) top = adjusted[best = i];  // the lowest id among equals
  if (top == kNever) throw std::invalid_argument(fmt::format("every one of the {} tokens is banned", vocab));
  if (top == std::numeric_limits<double>::infinity())
    throw std::invalid_argument(fmt::format("the logit of token {} is +infinity; the distribution is undefined", best));

  std::vector<double>& w = scratch_.weights;
  w.assign(vocab, 0.0);
  if (options_.greedy()) {
    w[best] = 1.0;
    return w;
  }

  // The softmax at temperature 1 (unnormalised): what top-k and top-p rank and measure, as in
  // the reference.
  double total = 0;
  for (std::size_t i = 0; i < vocab; ++i) total += w[i] = std::exp(adjusted[i] - top);  // exp(-inf) = 0
  // Tokens below `floor` hold at most half the mass top-p leaves out, so the most likely ones
  // reach top-p without them: they need no ranking (most of a trained model's vocabulary).
  const double floor = options_.top_p < 1 ? 0.5 * (1 - options_.top_p) * total / static_cast<double>(vocab) : 0;
  std::vector<Ranked>& ranked = scratch_.ranked;
  ranked.clear();
  for (std::size_t i = 0; i < vocab; ++i) {
    if (adjusted[i] != kNever && w[i] >= floor) ranked.push_back({w[i], static_cast<std::int32_t>(i)});
    w[i] = 0;
  }
  if (options_.top_k > 0 && static_cast<std::size_t>(options_.top_k) < ranked.size()) {
    auto kth = ranked.begin() + static_cast<std::ptrdiff_t>(options_.top_k);
    std::nth_element(ranked.begin(), kth, ranked.end(), more_likely);
    ranked.erase(kth, ranked.end());
  }
  if (options_.top_p < 1) ranked.resize(most_likely_reaching(ranked, options_.top_p * total));

  // Temperature last, on the kept tokens: p^(1/T), which is exp((logit - top) / T).
  for (const Ranked& r : ranked) {
    auto i = static_cast<std::size_t>(r.id);
    w[i] = options_.temperature == 1.0 ? r.p : std::exp((adjusted[i] - top) / options_.temperature);
  }
  return w;
}

std::vector<double> Sampler::distribution(std::span<const float> logits) const {
  std::vector<double> probabilities = weights(logits);  // a copy: the caller keeps it
  double total = 0;
  for (double w : probabilities) total += w;
  for (double& w : probabilities) w /= total;
  return probabilities;
}

std::int32_t Sampler::sample(std::span<const float> logits) {
  const std::vector<double>& w = weights(logits);
  if (options_.greedy()) return static_cast<std::int32_t>(std::max_element(w.begin(), w.end()) - w.begin());
  double total = 0;
  for (double x : w) total += x;
  // Walking the ids in order keeps the draw independent of how the cut arranged them.
  const double target = rng_.uniform() * total;
  double mass = 0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] == 0) continue;
    if ((mass += w[i]) > target) return static_cast<std::int32_t>(i);
    last = i;
  }
  return static_cast<std::int32_t>(last);  // rounding left the target at the very top
}

void Sampler::accept(std::int32_t token, double weight) {
  for (auto& [id, count] : occurrences_) count *= options_.penalty_decay;
  occurrences_[token] += weight;
}

double occurrence_weight(std::string_view token_text) {
  constexpr std::string_view kFree = " \t0123456789";
  return kFree.find(token_text) != std::string_view::npos ? 0.0 : 1.0;
}

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& stop : stops_)
    if (stop.empty()) throw std::invalid_argument("a stop string is empty");
}

std::string StopStrings::push(std::string_view text) {
  if (stopped_) return {};
  held_ += text;
  std::size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  std::size_t hold = 0;
  for (const std::string& stop : stops_)
    for (std::size_t n = std::min(stop.size() - 1, held_.size()); n > hold; --n)
      if (std::string_view(held_).substr(held_.size() - n) == std::string_view(stop).substr(0, n)) {
        hold = n;
        break;
      }
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStrings::finish() {
  std::string out = std::move(held_);
  held_.clear();
  return stopped_ ? std::string() : out;
}

}  // namespace rwkvc
