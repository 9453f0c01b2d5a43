// Choosing the next token from logits the way the RWKV reference pipeline does
// (rwkv.utils.PIPELINE.generate and sample_logits): banned tokens removed, presence and
// frequency penalties with decaying occurrence counts, then top-p and top-k on the softmax,
// then temperature. Reproducible: the random numbers come from our own generator.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/random.h"

namespace rwkvc {

struct SamplingOptions {
  double temperature = 1.0;      // 0: greedy
  double top_p = 1.0;            // keep the smallest most-likely set whose probability reaches top_p
  std::int64_t top_k = 0;        // keep at most top_k tokens; 0: no limit; 1: greedy
  double presence_penalty = 0;   // subtracted from a token's logit once it has occurred
  double frequency_penalty = 0;  // subtracted once per (decayed) occurrence
  double penalty_decay = 1.0;    // every count is multiplied by this after each sampled token
  std::vector<std::int32_t> banned;

  bool greedy() const { return temperature == 0 || top_k == 1; }
  // Throws std::invalid_argument naming the option that is out of range.
  void validate() const;
};

class Sampler {
 public:
  Sampler(SamplingOptions options, std::uint64_t seed);

  // The distribution `sample` draws from (one-hot when greedy), over the whole vocabulary.
  // Throws std::invalid_argument for a NaN logit, a banned or counted token outside the
  // vocabulary, or when every token is banned.
  std::vector<double> distribution(std::span<const float> logits) const;
  // Greedy sampling uses no random number; any other sampling uses exactly one.
  std::int32_t sample(std::span<const float> logits);
  // Records a generated token: every count decays, then the token's count grows by `weight`
  // (see occurrence_weight). A token with a count, even zero, has the presence penalty.
  void accept(std::int32_t token, double weight = 1.0);

  const SamplingOptions& options() const { return options_; }
  // What a paused generation must carry to resume exactly.
  const Rng& rng() const { return rng_; }
  void set_rng(const Rng& rng) { rng_ = rng; }
  const std::map<std::int32_t, double>& occurrences() const { return occurrences_; }
  void set_occurrences(std::map<std::int32_t, double> counts) { occurrences_ = std::move(counts); }

 private:
  // A token still in the running, with its probability at temperature 1 (unnormalised).
  struct Ranked {
    double p;
    std::int32_t id;
  };
  // Most likely first; equal probabilities by id, so every cut is reproducible.
  static bool more_likely(const Ranked& a, const Ranked& b) { return a.p != b.p ? a.p > b.p : a.id < b.id; }
  // How many of the most likely tokens it takes for their probability to reach `wanted` (at
  // least one), moved to the front.
  static std::size_t most_likely_reaching(std::vector<Ranked>& ranked, double wanted);

  // Each token's unnormalised probability after every option; 0 for a token never drawn.
  const std::vector<double>& weights(std::span<const float> logits) const;

  SamplingOptions options_;
  Rng rng_;
  std::map<std::int32_t, double> occurrences_;
  // Vocabulary-sized buffers reused from token to token: allocating them anew costs more
  // (in page faults) than the sampling itself.
  struct Scratch {
    std::vector<double> adjusted, weights;
    std::vector<Ranked> ranked;
  };
  mutable Scratch scratch_;
};

// The weight the reference gives a generated token's occurrence: 0 when its text is a piece of
// " \t0123456789" (blanks and digits may repeat freely; they still get the presence penalty),
// else 1.
double occurrence_weight(std::string_view token_text);

// Cuts generated text at the first stop string. Text arrives in pieces; a tail that could be
// the start of a stop string is held back until the next piece decides it.
class StopStrings {
 public:
  // Throws std::invalid_argument for an empty stop string.
  explicit StopStrings(std::vector<std::string> stops);

  // The text now safe to print. Once a stop string appears: the text before it, and from then
  // on nothing.
  std::string push(std::string_view text);
  // The held-back tail, at the end of a generation that met no stop string.
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace rwkvc
