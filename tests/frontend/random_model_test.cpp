// Random models: the official tensors, deterministic by seed, at the scales of trained models.
#include <cmath>
#include <numeric>

#include <catch2/catch.hpp>

#include "frontend/random_model.h"
#include "frontend/safetensors.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats stats_of(std::span<const float> values) {
  Stats s{0, 0, values[0], values[0]};
  for (float v : values) {
    s.mean += v;
    s.min = std::min<double>(s.min, v);
    s.max = std::max<double>(s.max, v);
  }
  s.mean /= static_cast<double>(values.size());
  for (float v : values) s.std += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(values.size()));
  return s;
}

Stats stats_of(const WeightMap& w, const std::string& name) { return stats_of(w.at(name).f32()); }

std::map<std::string, Shape> shapes_of(const WeightMap& weights) {
  std::map<std::string, Shape> shapes;
  for (const auto& [name, tensor] : weights) shapes.emplace(name, tensor.shape());
  return shapes;
}

double decay_of(double w) { return std::exp(-std::exp(-0.5) / (1.0 + std::exp(-w))); }

}  // namespace

TEST_CASE("random models have exactly the official tensors and shapes, all f32", "[frontend][random]") {
  for (const ModelConfig& config : {small_rwkv7(1), small_rwkv7(3), small_rwkv4(1), small_rwkv4(3)}) {
    INFO(arch_name(config.arch) << " with " << config.layers << " layers");
    WeightMap weights = make_random_model(config, 1);
    CHECK(shapes_of(weights) == official_shapes(config));
    for (const auto& [name, tensor] : weights) CHECK(tensor.dtype() == DType::f32);
  }
}

TEST_CASE("infer_config recovers the config of a random model", "[frontend][random]") {
  for (const ModelConfig& config : {small_rwkv7(1), small_rwkv7(2), small_rwkv4(1), small_rwkv4(4)})
    CHECK(infer_config(make_random_model(config, 5), "random") == config);
}

TEST_CASE("random models: the same seed writes a byte-identical file, another seed differs", "[frontend][random]") {
  TempDir dir;
  ModelConfig config = small_rwkv7(2);
  write_safetensors(dir.file("a"), make_random_model(config, 11));
  write_safetensors(dir.file("b"), make_random_model(config, 11));
  write_safetensors(dir.file("c"), make_random_model(config, 12));
  CHECK(read_bytes(dir.file("a")) == read_bytes(dir.file("b")));
  CHECK(read_bytes(dir.file("a")) != read_bytes(dir.file("c")));

  WeightMap x = make_random_model(config, 11), y = make_random_model(config, 12);
  for (const auto& [name, tensor] : x) {
    auto a = tensor.f32(), b = y.at(name).f32();
    CHECK_FALSE(std::equal(a.begin(), a.end(), b.begin()));
  }
}

TEST_CASE("a random tensor depends only on the seed and its name", "[frontend][random]") {
  ModelConfig shallow = small_rwkv7(2), deep = small_rwkv7(5);
  WeightMap a = make_random_model(shallow, 8), b = make_random_model(deep, 8);
  for (const char* name : {"emb.weight", "head.weight", "blocks.1.att.key.weight"}) {
    auto x = a.at(name).f32(), y = b.at(name).f32();
    CHECK(std::equal(x.begin(), x.end(), y.begin(), y.end()));
  }
}

TEST_CASE("random models are non-degenerate: finite, no zero element, no constant tensor", "[frontend][random]") {
  for (const ModelConfig& config : {small_rwkv7(3), small_rwkv4(3)}) {
    for (const auto& [name, tensor] : make_random_model(config, 2)) {
      INFO(name);
      Stats s = stats_of(tensor.f32());
      CHECK(s.max > s.min);
      auto values = tensor.f32();
      CHECK(std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v) && v != 0.0f; }));
    }
  }
}

TEST_CASE("random normals and uniforms have the distributions asked for", "[frontend][random]") {
  ModelConfig config = small_rwkv7(2);
  config.vocab = 1000;  // 48,000 samples per embedding-sized matrix
  WeightMap w = make_random_model(config, 4);
  auto emb = w.at("emb.weight").f32();
  Stats s = stats_of(emb);
  CHECK(std::abs(s.mean) < 0.02);
  CHECK(s.std == Approx(1.0).epsilon(0.02));
  double within_one = static_cast<double>(std::count_if(emb.begin(), emb.end(), [](float v) { return std::abs(v) < 1; }));
  CHECK(within_one / static_cast<double>(emb.size()) == Approx(0.6827).margin(0.01));

  double bound = 1.0 / std::sqrt(48.0);
  Stats r = stats_of(w, "blocks.1.att.receptance.weight");
  CHECK(r.min >= -bound);
  CHECK(r.max <= bound);
  CHECK(r.std == Approx(bound / std::sqrt(3.0)).epsilon(0.05));  // uniform(-b, b) has std b / sqrt(3)
}

TEST_CASE("random RWKV-7 follows the training init curves", "[frontend][random]") {
  ModelConfig config = small_rwkv7(4);
  WeightMap w = make_random_model(config, 6);
  auto at = [&](const std::string& name, std::size_t c) { return static_cast<double>(w.at(name).f32()[c]); };
  const std::size_t last = 47;

  // Token-shift mixes start near 1 at channel 0 and fall across channels.
  CHECK(at("blocks.0.att.x_r", 0) == Approx(1.0).margin(0.1));
  CHECK(at("blocks.0.att.x_k", last) == Approx(1.0 - std::pow(47.0 / 48.0, 0.7)).margin(0.1));
  CHECK(at("blocks.0.ffn.x_k", last) < 0.2);
  // Decay speeds: slow for the first channel, fast for the last, all decays in (0.85, 1).
  CHECK(at("blocks.0.att.w0", 0) == Approx(-6.5).margin(0.25));
  CHECK(at("blocks.0.att.w0", last) == Approx(-1.5).margin(0.25));
  Stats w0 = stats_of(w, "blocks.2.att.w0");
  CHECK(decay_of(w0.max) > 0.85);
  CHECK(decay_of(w0.min) < 1.0);
  // Deeper layers have larger GroupNorm weights.
  CHECK(stats_of(w, "blocks.0.att.ln_x.weight").mean < stats_of(w, "blocks.3.att.ln_x.weight").mean);
  CHECK(stats_of(w, "blocks.3.att.ln_x.weight").mean == Approx(1.0).margin(0.05));
  CHECK(stats_of(w, "blocks.1.att.k_k").mean == Approx(0.85).margin(0.05));
  CHECK(stats_of(w, "blocks.1.att.k_a").mean == Approx(1.0).margin(0.05));
  CHECK(stats_of(w, "blocks.1.att.w1").std == Approx(0.1).margin(0.03));
}

TEST_CASE("random RWKV-4 follows the training init curves", "[frontend][random]") {
  ModelConfig config = small_rwkv4(3);
  WeightMap w = make_random_model(config, 6);
  for (const auto& [name, tensor] : w) {
    if (name.find("time_mix") == std::string::npos) continue;
    INFO(name);
    Stats s = stats_of(tensor.f32());
    CHECK(s.min > 0.0);
    CHECK(s.max < 1.0);
  }
  auto decay = w.at("blocks.0.att.time_decay").f32();
  CHECK(decay[0] == Approx(-5.0).margin(0.25));
  CHECK(decay[39] == Approx(3.0).margin(0.25));
  // time_first zigzags around log(0.3) by half a unit.
  auto first = w.at("blocks.1.att.time_first").f32();
  CHECK(first[0] == Approx(std::log(0.3)).margin(0.2));
  CHECK(first[1] == Approx(std::log(0.3) + 0.5).margin(0.2));
  CHECK(first[2] == Approx(std::log(0.3) - 0.5).margin(0.2));
}

TEST_CASE("random model logits have a realistic spread", "[frontend][random]") {
  // logits = LN(x; ln_out) head^T; with LN's unit-variance rows the spread comes from head.
  ModelConfig config = small_rwkv7(2);
  WeightMap w = make_random_model(config, 9);
  const auto C = static_cast<std::size_t>(config.embd), V = static_cast<std::size_t>(config.vocab);
  auto emb = w.at("emb.weight").f32(), head = w.at("head.weight").f32();
  auto gain = w.at("ln_out.weight").f32(), bias = w.at("ln_out.bias").f32();
  std::vector<float> logits;
  for (std::size_t token = 0; token < 10; ++token) {
    Stats row = stats_of(emb.subspan(token * C, C));
    std::vector<double> x(C);
    for (std::size_t c = 0; c < C; ++c) x[c] = (emb[token * C + c] - row.mean) / row.std * gain[c] + bias[c];
    for (std::size_t v = 0; v < V; ++v)
      logits.push_back(static_cast<float>(std::inner_product(x.begin(), x.end(), head.begin() + static_cast<std::ptrdiff_t>(v * C), 0.0)));
  }
  double spread = stats_of(logits).std;
  CHECK(spread > 2.0);
  CHECK(spread < 5.0);
}

TEST_CASE("make_random_model refuses configs no model can have", "[frontend][random]") {
  auto refused = [](ModelConfig config, const std::string& part) {
    CHECK_THROWS_AS(make_random_model(config, 1), std::invalid_argument);
    CHECK_THROWS_WITH(make_random_model(config, 1), Contains(part));
  };
  ModelConfig c = small_rwkv7(2);
  SECTION("zero layers") {
    c.layers = 0;
    refused(c, "layers must be positive, got 0");
  }
  SECTION("negative vocab") {
    c.vocab = -1;
    refused(c, "vocab must be positive, got -1");
  }
  SECTION("embd not a multiple of the head size") {
    c.head_size = 20;
    refused(c, "embd 48 is not a multiple of the head size 20");
  }
  SECTION("no decay LoRA") {
    c.decay_lora = 0;
    refused(c, "decay_lora must be positive");
  }
  SECTION("no value-mix LoRA with two layers") {
    c.mv_lora = 0;
    refused(c, "mv_lora must be positive");
  }
  SECTION("a value-mix LoRA with one layer") {
    c.layers = 1;
    refused(c, "mv_lora must be 0 for a 1-layer model");
  }
  SECTION("RWKV-4 ignores the RWKV-7 fields but checks the sizes") {
    ModelConfig v4 = small_rwkv4(1);
    v4.head_size = 7;
    CHECK_NOTHROW(make_random_model(v4, 1));
    v4.ffn = 0;
    refused(v4, "ffn must be positive");
  }
}

}  // namespace rwkvc::test
