#include "frontend/random_model.h"

#include "frontend/random.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace rwkvc {

namespace {

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

// Uniforms from Rng, normals by Box-Muller (keeping the second value of each pair): fully
// specified, unlike <random>'s distributions.
class Random {
 public:
  explicit Random(std::uint64_t seed) : rng_(seed) {}

  double uniform(double low, double high) { return rng_.uniform(low, high); }

  double normal(double mean, double std) {
    if (has_spare_) {
      has_spare_ = false;
      return mean + std * spare_;
    }
    double radius = std::sqrt(-2.0 * std::log(1.0 - rng_.uniform()));  // 1 - u lies in (0, 1]
    double angle = 2.0 * std::numbers::pi * rng_.uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return mean + std * radius * std::cos(angle);
  }

 private:
  Rng rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Noise on the init curves, so no two channels or layers are exactly alike.
constexpr double kMixNoise = 0.02;
constexpr double kCurveNoise = 0.05;
constexpr double kLoraStd = 0.1;
constexpr double kBiasStd = 0.02;
// head ~ N(0, kLogitStd / sqrt(C)): LN output has unit-variance rows, so logits have std ~kLogitStd.
constexpr double kLogitStd = 3.0;

void check_config(const ModelConfig& c) {
  auto require = [](bool ok, const std::string& why) {
    if (!ok) throw std::invalid_argument("cannot make a random model: " + why);
  };
  for (auto [name, value] : {std::pair<const char*, std::int64_t>{"layers", c.layers},
                             {"embd", c.embd}, {"vocab", c.vocab}, {"ffn", c.ffn}})
    require(value > 0, fmt::format("{} must be positive, got {}", name, value));
  if (c.arch != Arch::rwkv7) return;
  require(c.head_size > 0, fmt::format("head_size must be positive, got {}", c.head_size));
  require(c.embd % c.head_size == 0,
          fmt::format("embd {} is not a multiple of the head size {}", c.embd, c.head_size));
  for (auto [name, value] : {std::pair<const char*, std::int64_t>{"decay_lora", c.decay_lora},
                             {"aaa_lora", c.aaa_lora}, {"gate_lora", c.gate_lora}})
    require(value > 0, fmt::format("{} must be positive, got {}", name, value));
  if (c.layers > 1)
    require(c.mv_lora > 0, fmt::format("mv_lora must be positive with {} layers, got {}", c.layers, c.mv_lora));
  else
    require(c.mv_lora == 0, fmt::format("mv_lora must be 0 for a 1-layer model (layer 0 has no value-mix LoRA), got {}",
                                        c.mv_lora));
}

class RandomModelMaker {
 public:
  RandomModelMaker(const ModelConfig& config, std::uint64_t seed) : cfg_(config), seed_(seed), C(config.embd) {}

  WeightMap make() {
    normal("emb.weight", {cfg_.vocab, C}, 0.0, 1.0);
    layer_norm("blocks.0.ln0");
    for (std::int64_t i = 0; i < cfg_.layers; ++i) {
      std::string p = fmt::format("blocks.{}.", i);
      layer_norm(p + "ln1");
      layer_norm(p + "ln2");
      if (cfg_.arch == Arch::rwkv7) {
        rwkv7_time_mix(p + "att.", i);
        rwkv7_channel_mix(p + "ffn.", i);
      } else {
        rwkv4_time_mix(p + "att.", i);
        rwkv4_channel_mix(p + "ffn.", i);
      }
    }
    layer_norm("ln_out");
    normal("head.weight", {cfg_.vocab, C}, 0.0, kLogitStd / std::sqrt(static_cast<double>(C)));
    return std::move(weights_);
  }

 private:
  // The training inits' per-layer ratios: 0 -> 1 and 1 -> almost 0 from the first layer to the last.
  double ratio_0_to_1(std::int64_t layer) const {
    return cfg_.layers > 1 ? static_cast<double>(layer) / static_cast<double>(cfg_.layers - 1) : 0.0;
  }
  double ratio_1_to_almost0(std::int64_t layer) const {
    return 1.0 - static_cast<double>(layer) / static_cast<double>(cfg_.layers);
  }
  // c / C: the channel's position, 0 for the first.
  double ddd(std::int64_t c) const { return static_cast<double>(c) / static_cast<double>(C); }
  // c / (C - 1): 0 for the first channel, 1 for the last.
  double span(std::int64_t c) const { return C > 1 ? static_cast<double>(c) / static_cast<double>(C - 1) : 0.0; }

  void rwkv7_time_mix(const std::string& p, std::int64_t layer) {
    double r0 = ratio_0_to_1(layer), r1 = ratio_1_to_almost0(layer);
    auto mix = [&](const char* name, double power) {
      curve(p + name, {1, 1, C}, [&](std::int64_t c) { return 1.0 - std::pow(ddd(c), power * r1); }, kMixNoise);
    };
    mix("x_r", 0.2);
    mix("x_w", 0.9);
    mix("x_k", 0.7);
    mix("x_v", 0.7);
    mix("x_a", 0.9);
    mix("x_g", 0.2);

    // Decay speeds from slow (-6.5) to fast (-1.5), faster in deeper layers.
    curve(p + "w0", {1, 1, C}, [&](std::int64_t c) { return -7.0 + 5.0 * std::pow(span(c), 0.85 + std::sqrt(r0)) + 0.5; },
          kCurveNoise);
    lora(p + "w", cfg_.decay_lora);
    normal(p + "a0", {1, 1, C}, 0.0, 0.3);
    lora(p + "a", cfg_.aaa_lora);
    if (layer > 0) {
      normal(p + "v0", {1, 1, C}, 1.0, 0.3);
      lora(p + "v", cfg_.mv_lora);
    }
    lora(p + "g", cfg_.gate_lora);
    normal(p + "k_k", {1, 1, C}, 0.85, kCurveNoise);
    normal(p + "k_a", {1, 1, C}, 1.0, kCurveNoise);
    normal(p + "r_k", {cfg_.heads(), cfg_.head_size}, 0.0, 0.3);

    double bound = 1.0 / std::sqrt(static_cast<double>(C));
    uniform(p + "receptance.weight", {C, C}, bound);
    uniform(p + "key.weight", {C, C}, bound);
    uniform(p + "value.weight", {C, C}, bound);
    normal(p + "output.weight", {C, C}, 0.0, bound);
    double ln_x_scale = std::pow(static_cast<double>(layer + 1) / static_cast<double>(cfg_.layers), 0.7);
    normal(p + "ln_x.weight", {C}, ln_x_scale, kCurveNoise);
    normal(p + "ln_x.bias", {C}, 0.0, kBiasStd);
  }

  void rwkv7_channel_mix(const std::string& p, std::int64_t layer) {
    double r1 = ratio_1_to_almost0(layer);
    curve(p + "x_k", {1, 1, C}, [&](std::int64_t c) { return 1.0 - std::pow(ddd(c), std::pow(r1, 4)); }, kMixNoise);
    ffn_matrices(p);
  }

  void rwkv4_time_mix(const std::string& p, std::int64_t layer) {
    double r0 = ratio_0_to_1(layer), r1 = ratio_1_to_almost0(layer);
    curve(p + "time_decay", {C}, [&](std::int64_t c) { return -5.0 + 8.0 * std::pow(span(c), 0.7 + 1.3 * r0); },
          kCurveNoise);
    // log(0.3) zigzagged by -0.5, 0, +0.5 across channels.
    curve(p + "time_first", {C}, [&](std::int64_t c) { return std::log(0.3) + static_cast<double>((c + 1) % 3 - 1) * 0.5; },
          kCurveNoise);
    mix_curve(p + "time_mix_k", [&](std::int64_t c) { return std::pow(ddd(c), r1); });
    mix_curve(p + "time_mix_v", [&](std::int64_t c) { return std::pow(ddd(c), r1) + 0.3 * r0; });
    mix_curve(p + "time_mix_r", [&](std::int64_t c) { return std::pow(ddd(c), 0.5 * r1); });
    double bound = 1.0 / std::sqrt(static_cast<double>(C));
    uniform(p + "receptance.weight", {C, C}, bound);
    uniform(p + "key.weight", {C, C}, bound);
    uniform(p + "value.weight", {C, C}, bound);
    normal(p + "output.weight", {C, C}, 0.0, bound);
  }

  void rwkv4_channel_mix(const std::string& p, std::int64_t layer) {
    double r1 = ratio_1_to_almost0(layer);
    mix_curve(p + "time_mix_k", [&](std::int64_t c) { return std::pow(ddd(c), r1); });
    mix_curve(p + "time_mix_r", [&](std::int64_t c) { return std::pow(ddd(c), r1); });
    uniform(p + "receptance.weight", {C, C}, 1.0 / std::sqrt(static_cast<double>(C)));
    ffn_matrices(p);
  }

  void ffn_matrices(const std::string& p) {
    normal(p + "key.weight", {cfg_.ffn, C}, 0.0, 1.0 / std::sqrt(static_cast<double>(C)));
    normal(p + "value.weight", {C, cfg_.ffn}, 0.0, 1.0 / std::sqrt(static_cast<double>(cfg_.ffn)));
  }

  void layer_norm(const std::string& prefix) {
    normal(prefix + ".weight", {C}, 1.0, 0.1);
    normal(prefix + ".bias", {C}, 0.0, kBiasStd);
  }

  // x @ prefix1 @ prefix2, factors [C, rank] and [rank, C].
  void lora(const std::string& prefix, std::int64_t rank) {
    normal(prefix + "1", {C, rank}, 0.0, kLoraStd);
    normal(prefix + "2", {rank, C}, 0.0, kLoraStd);
  }

  // An RWKV-4 mix: a curve with noise, kept strictly between 0 and 1.
  template <typename Curve>
  void mix_curve(const std::string& name, Curve value) {
    add(name, {1, 1, C}, [&](std::int64_t c, Random& rng) {
      return std::clamp(value(c) + rng.normal(0.0, kMixNoise), 0.01, 0.99);
    });
  }

  template <typename Curve>
  void curve(const std::string& name, Shape shape, Curve value, double noise) {
    add(name, std::move(shape), [&](std::int64_t c, Random& rng) { return value(c) + rng.normal(0.0, noise); });
  }

  void normal(const std::string& name, Shape shape, double mean, double std) {
    add(name, std::move(shape), [&](std::int64_t, Random& rng) { return rng.normal(mean, std); });
  }

  void uniform(const std::string& name, Shape shape, double bound) {
    add(name, std::move(shape), [&](std::int64_t, Random& rng) { return rng.uniform(-bound, bound); });
  }

  // Element j is value(j, rng), drawn from a stream of its own seeded by the model seed, the name
  // and j's block, so a tensor does not change when others are added or reordered, nor with the
  // number of threads that fill its blocks (a 7B model's matrices are billions of draws).
  template <typename Value>
  void add(const std::string& name, Shape shape, Value value) {
    std::uint64_t mixed = seed_;
    std::uint64_t stream = splitmix64(mixed) ^ fnv1a(name);
    std::vector<float> values(static_cast<std::size_t>(shape.numel()));
    std::size_t blocks = (values.size() + kBlock - 1) / kBlock;
    auto fill = [&](std::size_t block) {
      Random rng(stream + block);
      std::size_t end = std::min(values.size(), (block + 1) * kBlock);
      for (std::size_t j = block * kBlock; j < end; ++j)
        values[j] = static_cast<float>(value(static_cast<std::int64_t>(j), rng));
    };
    std::size_t threads = std::min<std::size_t>(blocks, std::max(1u, std::thread::hardware_concurrency()));
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t block = next++; block < blocks; block = next++) fill(block);
    };
    {
      std::vector<std::jthread> helpers;
      for (std::size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
      work();
    }
    weights_.emplace(name, HostTensor::from_f32(std::move(shape), std::move(values)));
  }
  static constexpr std::size_t kBlock = std::size_t{1} << 18;

  const ModelConfig& cfg_;
  std::uint64_t seed_;
  std::int64_t C;
  WeightMap weights_;
};

}  // namespace

WeightMap make_random_model(const ModelConfig& config, std::uint64_t seed) {
  check_config(config);
  return RandomModelMaker(config, seed).make();
}

}  // namespace rwkvc
