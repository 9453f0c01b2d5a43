// Sampling: each option's effect on hand-made logits, with the expected distribution worked out
// here from the definitions (softmax, top-p prefix, top-k, p^(1/T), penalties), and the draws.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "frontend/sampler.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

// Logits whose softmax is exactly {0.1, 0.2, 0.3, 0.4}.
std::vector<float> one_to_four() {
  return {std::log(1.0f), std::log(2.0f), std::log(3.0f), std::log(4.0f)};
}

SamplingOptions plain() { return {}; }

void check_distribution(const std::vector<double>& actual, const std::vector<double>& expected, double tolerance = 1e-6) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("token " << i);
    CHECK(actual[i] == Approx(expected[i]).margin(tolerance));
  }
}

std::vector<double> distribution_of(const SamplingOptions& options, const std::vector<float>& logits) {
  return Sampler(options, 1).distribution(logits);
}

}  // namespace

TEST_CASE("the generator follows splitmix64 seeding and xoshiro256**", "[frontend][sampler]") {
  // Worked out with an independent Python transcription of the published algorithms; the first
  // word is splitmix64's well-known first output for seed 0.
  Rng rng(0);
  CHECK(rng.words()[0] == 0xe220a8397b1dcdafULL);
  CHECK(rng.words()[3] == 0xf88bb8a8724c81ecULL);
  CHECK(rng.next() == 0x99ec5f36cb75f2b4ULL);
  CHECK(rng.next() == 0xbf6e1f784956452aULL);
  Rng other(12345);
  CHECK(other.next() == 0xbe6a36374160d49bULL);

  Rng resumed = Rng::from_words(rng.words());
  CHECK(resumed.next() == rng.next());
  CHECK_THROWS_WITH(Rng::from_words({}), Contains("all zeros"));
  for (int i = 0; i < 1000; ++i) {
    double u = rng.uniform();
    REQUIRE((u >= 0 && u < 1));
  }
}

TEST_CASE("the distribution is the softmax, computed stably", "[frontend][sampler]") {
  check_distribution(distribution_of(plain(), one_to_four()), {0.1, 0.2, 0.3, 0.4}, 1e-7);
  // exp(1000) overflows; the softmax does not: e^0 / (e^0 + e^1) and e^1 / (e^0 + e^1).
  const double e = std::exp(1.0);
  check_distribution(distribution_of(plain(), {1000.0f, 1001.0f}), {1 / (1 + e), e / (1 + e)}, 1e-12);
  check_distribution(distribution_of(plain(), {-1001.0f, -1000.0f}), {1 / (1 + e), e / (1 + e)}, 1e-12);
}

TEST_CASE("top-p keeps the smallest most-likely set whose probability reaches p", "[frontend][sampler]") {
  // Sorted: token 3 (0.4), 2 (0.3, total 0.7), 1 (0.2, total 0.9), 0 (0.1).
  SamplingOptions o;
  o.top_p = 0.35;
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 0, 1});
  o.top_p = 0.5;
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 0.3 / 0.7, 0.4 / 0.7});
  o.top_p = 0.75;
  check_distribution(distribution_of(o, one_to_four()), {0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9});
  o.top_p = 0.95;
  check_distribution(distribution_of(o, one_to_four()), {0.1, 0.2, 0.3, 0.4});
  o.top_p = 0;  // still the single most likely token
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 0, 1});
}

TEST_CASE("top-p in a large vocabulary keeps exactly the sorted prefix", "[frontend][sampler]") {
  // 1000 tokens in 20 levels of 50 equal logits each; the expected set comes from sorting here
  // (ties: the lowest ids first). Spread levels need hundreds of tokens for the mass; steep
  // ones leave most of the vocabulary far below the cut.
  auto check = [](float step, double top_p) {
    std::vector<float> logits(1000);
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = -step * static_cast<float>((i * 7) % 20);
    std::vector<std::pair<double, std::size_t>> order;
    double total = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      order.push_back({std::exp(static_cast<double>(logits[i])), i});
      total += order.back().first;
    }
    std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    std::vector<bool> expected(logits.size(), false);
    double mass = 0;
    std::size_t need = 0;
    for (auto& [p, id] : order) {
      expected[id] = true;
      ++need;
      if ((mass += p) >= top_p * total) break;
    }
    SamplingOptions o;
    o.top_p = top_p;
    std::vector<double> d = distribution_of(o, logits);
    for (std::size_t i = 0; i < d.size(); ++i) {
      INFO("step " << step << ", top-p " << top_p << ", token " << i);
      CHECK((d[i] > 0) == expected[i]);
    }
    return need;
  };
  CHECK(check(0.7f, 0.999) > 256);
  CHECK(check(0.7f, 0.5) > 32);
  check(3.0f, 0.999);
  check(3.0f, 0.9);
  check(0.0f, 0.37);  // all equal: the first 370 ids
}

TEST_CASE("top-k keeps the k most likely tokens, and top-p and top-k together keep the fewer", "[frontend][sampler]") {
  SamplingOptions o;
  o.top_k = 2;
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 3.0 / 7, 4.0 / 7});
  o.top_k = 10;
  check_distribution(distribution_of(o, one_to_four()), {0.1, 0.2, 0.3, 0.4});
  o.top_k = 3;
  o.top_p = 0.5;  // top-p alone keeps 2
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 3.0 / 7, 4.0 / 7});
  o.top_k = 2;
  o.top_p = 0.95;  // top-p alone keeps all 4
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 3.0 / 7, 4.0 / 7});
}

TEST_CASE("temperature reshapes the kept set as p^(1/T), after top-p measured the plain softmax", "[frontend][sampler]") {
  SamplingOptions o;
  o.temperature = 0.5;  // p^2: 1, 4, 9, 16 over 30
  check_distribution(distribution_of(o, one_to_four()), {1.0 / 30, 4.0 / 30, 9.0 / 30, 16.0 / 30});
  o.temperature = 2;  // sqrt(p)
  const double s = 1 + std::sqrt(2.0) + std::sqrt(3.0) + 2;
  check_distribution(distribution_of(o, one_to_four()), {1 / s, std::sqrt(2.0) / s, std::sqrt(3.0) / s, 2 / s});
  // At T = 0.5 token 3 alone would have 16/30 > 0.5; top-p still keeps tokens 3 and 2, as the
  // reference measures p before the temperature.
  o.temperature = 0.5;
  o.top_p = 0.5;
  check_distribution(distribution_of(o, one_to_four()), {0, 0, 9.0 / 25, 16.0 / 25});
}

TEST_CASE("temperature 0 and top-k 1 are greedy and draw no random number", "[frontend][sampler]") {
  std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f, 1.9f};  // tie at 1 and 3: the lower id wins
  for (int variant = 0; variant < 2; ++variant) {
    SamplingOptions o;
    if (variant == 0) o.temperature = 0;
    else o.top_k = 1;
    Sampler sampler(o, 7);
    Rng::Words before = sampler.rng().words();
    CHECK(sampler.sample(logits) == 1);
    CHECK(sampler.rng().words() == before);
    check_distribution(sampler.distribution(logits), {0, 1, 0, 0, 0});
  }
}

TEST_CASE("presence and frequency penalties with decay change the chosen token as computed", "[frontend][sampler]") {
  SamplingOptions o;
  o.temperature = 0;
  o.presence_penalty = 0.3;
  o.frequency_penalty = 0.4;
  o.penalty_decay = 0.5;
  Sampler sampler(o, 1);
  std::vector<float> logits{2.0f, 1.5f, 0.0f};
  CHECK(sampler.sample(logits) == 0);
  sampler.accept(0);
  // counts {0: 1}: token 0 at 2.0 - (0.3 + 0.4) = 1.3 < 1.5
  CHECK(sampler.sample(logits) == 1);
  sampler.accept(1);
  // counts {0: 0.5, 1: 1}: token 0 at 2.0 - 0.5 = 1.5, token 1 at 1.5 - 0.7 = 0.8
  CHECK(sampler.occurrences().at(0) == 0.5);
  CHECK(sampler.sample(logits) == 0);
  sampler.accept(0);
  // counts {0: 1.25, 1: 0.5}: token 0 at 2.0 - 0.8 = 1.2, token 1 at 1.5 - 0.5 = 1.0
  CHECK(sampler.occurrences().at(0) == 1.25);
  CHECK(sampler.sample(logits) == 0);

  // The same penalties shape the distribution: softmax of {1.2, 1.0, 0.0}.
  SamplingOptions soft = o;
  soft.temperature = 1;
  Sampler shaped(soft, 1);
  shaped.set_occurrences(sampler.occurrences());
  const double z = std::exp(1.2) + std::exp(1.0) + 1;
  check_distribution(shaped.distribution(logits), {std::exp(1.2) / z, std::exp(1.0) / z, 1 / z}, 1e-6);
}

TEST_CASE("a token counted with weight 0 still gets the presence penalty", "[frontend][sampler]") {
  SamplingOptions o;
  o.temperature = 0;
  o.presence_penalty = 1.0;
  o.frequency_penalty = 5.0;
  Sampler sampler(o, 1);
  sampler.accept(0, 0.0);
  // token 0 at 3.0 - (1.0 + 5.0 * 0) = 2.0: above 1.5, below 2.5
  CHECK(sampler.sample(std::vector<float>{3.0f, 1.5f}) == 0);
  CHECK(sampler.sample(std::vector<float>{3.0f, 2.5f}) == 1);
}

TEST_CASE("occurrence weights follow the reference: blanks and digits count 0", "[frontend][sampler]") {
  CHECK(occurrence_weight(" ") == 0);
  CHECK(occurrence_weight("\t") == 0);
  CHECK(occurrence_weight("7") == 0);
  CHECK(occurrence_weight("123") == 0);  // a piece of " \t0123456789"
  CHECK(occurrence_weight("90") == 1);   // not a piece of it
  CHECK(occurrence_weight("\n") == 1);
  CHECK(occurrence_weight("the") == 1);
}

TEST_CASE("banned tokens are never drawn", "[frontend][sampler]") {
  SamplingOptions o;
  o.banned = {3, 1};
  check_distribution(distribution_of(o, one_to_four()), {0.25, 0, 0.75, 0});
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    std::int32_t t = Sampler(o, seed).sample(one_to_four());
    REQUIRE((t == 0 || t == 2));
  }
  o.temperature = 0;
  CHECK(Sampler(o, 1).sample(one_to_four()) == 2);

  o.banned = {0, 1, 2, 3};
  CHECK_THROWS_WITH(Sampler(o, 1).sample(one_to_four()), Contains("every one of the 4 tokens is banned"));
  o.banned = {4};
  CHECK_THROWS_WITH(Sampler(o, 1).sample(one_to_four()), Contains("banned token 4 is outside the vocabulary"));
}

TEST_CASE("the same seed gives the same sequence, another seed another", "[frontend][sampler]") {
  std::vector<float> logits(50);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = 0.1f * static_cast<float>(i % 7) - 0.05f * static_cast<float>(i % 3);
  SamplingOptions o;
  o.top_p = 0.9;
  o.presence_penalty = 0.2;
  o.frequency_penalty = 0.2;
  o.penalty_decay = 0.996;
  auto run = [&](std::uint64_t seed) {
    Sampler sampler(o, seed);
    std::vector<std::int32_t> tokens;
    for (int i = 0; i < 200; ++i) {
      tokens.push_back(sampler.sample(logits));
      sampler.accept(tokens.back());
    }
    return tokens;
  };
  CHECK(run(42) == run(42));
  CHECK(run(42) != run(43));
}

TEST_CASE("a sampler resumed from its generator and counts continues the same sequence", "[frontend][sampler]") {
  std::vector<float> logits{0.3f, -0.2f, 0.9f, 0.1f, 0.4f};
  SamplingOptions o;
  o.frequency_penalty = 0.3;
  o.penalty_decay = 0.9;
  Sampler whole(o, 5), first(o, 5);
  std::vector<std::int32_t> expected, actual;
  for (int i = 0; i < 40; ++i) {
    expected.push_back(whole.sample(logits));
    whole.accept(expected.back());
  }
  for (int i = 0; i < 20; ++i) {
    actual.push_back(first.sample(logits));
    first.accept(actual.back());
  }
  Sampler second(o, 999);
  second.set_rng(Rng::from_words(first.rng().words()));
  second.set_occurrences(first.occurrences());
  for (int i = 0; i < 20; ++i) {
    actual.push_back(second.sample(logits));
    second.accept(actual.back());
  }
  CHECK(actual == expected);
}

TEST_CASE("draws over many seeds follow the distribution (chi-square)", "[frontend][sampler]") {
  // Chi-square with 3 degrees of freedom; 16.27 is the 0.1% critical value.
  auto chi_square = [](const SamplingOptions& o, const std::vector<double>& expected_p) {
    constexpr int kDraws = 20000;
    std::vector<double> counts(expected_p.size(), 0);
    for (std::uint64_t seed = 0; seed < kDraws; ++seed) counts[static_cast<std::size_t>(Sampler(o, seed).sample(one_to_four()))] += 1;
    double chi = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
      if (expected_p[i] == 0) {
        CHECK(counts[i] == 0);
        continue;
      }
      double e = expected_p[i] * kDraws;
      chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
  };
  CHECK(chi_square(plain(), {0.1, 0.2, 0.3, 0.4}) < 16.27);
  SamplingOptions hot;
  hot.temperature = 0.5;
  CHECK(chi_square(hot, {1.0 / 30, 4.0 / 30, 9.0 / 30, 16.0 / 30}) < 16.27);
  // Two kept tokens: one degree of freedom, 10.83 at 0.1%.
  SamplingOptions cut;
  cut.top_k = 2;
  CHECK(chi_square(cut, {0, 0, 3.0 / 7, 4.0 / 7}) < 10.83);
}

TEST_CASE("bad options and bad logits are refused with the reason", "[frontend][sampler]") {
  SamplingOptions o;
  o.temperature = -1;
  CHECK_THROWS_WITH(Sampler(o, 1), Contains("temperature -1"));
  o = {};
  o.top_p = 1.5;
  CHECK_THROWS_WITH(Sampler(o, 1), Contains("top-p 1.5"));
  o = {};
  o.top_k = -2;
  CHECK_THROWS_WITH(Sampler(o, 1), Contains("top-k -2"));
  CHECK_THROWS_WITH(Sampler(plain(), 1).sample(std::vector<float>{0.0f, NAN}), Contains("token 1 is NaN"));
}

TEST_CASE("stop strings cut the text before the first one, holding back a possible start", "[frontend][sampler]") {
  StopStrings stop({"world", "\n\n"});
  CHECK(stop.push("Hello wor") == "Hello ");  // "wor" may begin "world"
  CHECK(stop.push("m") == "worm");
  CHECK(stop.push(" and the w") == " and the ");
  CHECK(stop.push("or") == "");
  CHECK_FALSE(stop.stopped());
  CHECK(stop.push("ld is big") == "");
  CHECK(stop.stopped());
  CHECK(stop.push("more") == "");
  CHECK(stop.finish() == "");

  StopStrings earliest({"END", "\n\n"});
  CHECK(earliest.push("a\n\nbEND") == "a");

  StopStrings unfinished({"</s>"});
  CHECK(unfinished.push("x</") == "x");
  CHECK(unfinished.finish() == "</");

  StopStrings none({});
  CHECK(none.push("anything") == "anything");
  CHECK_THROWS_WITH(StopStrings({""}), Contains("empty"));
}

}  // namespace rwkvc::test
