// A hidden speed probe for the device machine (not a ctest case: run it by its tag,
// `rwkvc_vulkan_tests "[.speed]"`): random RWKV-7 models with f16 weights at released shapes
// (RWKVC_SPEED_SHAPES, default "12x768"; layers x embedding), decode and prefill device time.
// It asserts only that the device time was measured; the numbers are printed.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "frontend/random_model.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void measure(Backend& vulkan, std::int64_t layers, std::int64_t embd) {
  ModelConfig config;
  config.arch = Arch::rwkv7;
  config.layers = layers;
  config.embd = embd;
  config.vocab = 65536;
  config.ffn = 4 * embd;
  config.head_size = 64;
  config.decay_lora = config.aaa_lora = 64;
  config.mv_lora = 32;
  config.gate_lora = 128;
  WeightMap weights = make_random_model(config, 1);
  std::string pipeline = passes::preset_pipeline(2) + "," + passes::precision_step(DType::f16);
  Graph graph = passes::run_pipeline(build_graph(config), passes::parse_pipeline(pipeline));
  auto exe = vulkan.compile(graph, weights);

  // Decode reads every matrix once per token, but one row of the embedding table.
  std::int64_t table = 2 * config.vocab * config.embd;
  double bytes_per_token = static_cast<double>(exe->stats().weight_bytes - table + 2 * config.embd);
  State state = exe->new_state();
  std::vector<double> decode;
  for (int i = 0; i < 200; ++i) {  // the first ones also bring the GPU to its clocks
    std::int32_t token = i % 1000;
    exe->forward(std::span(&token, 1), state, {.time_on_device = true});
    if (i >= 160) decode.push_back(exe->stats().device_seconds);
  }
  std::vector<std::int32_t> prompt = random_tokens(2048, config.vocab, 2);
  std::vector<double> prefill;
  for (int i = 0; i < 3; ++i) {
    State fresh = exe->new_state();
    exe->forward(prompt, fresh, {.time_on_device = true});
    prefill.push_back(exe->stats().device_seconds);
  }
  double step = median(decode), whole = median(prefill);
  fmt::print("speed L{} D{} f16: decode {:.3f} ms/token ({:.0f} tokens/s, {:.0f} GB/s of weights, {} kernels), "
             "prefill 2048 tokens {:.1f} ms ({:.0f} tokens/s)\n",
             layers, embd, step * 1e3, 1.0 / step, bytes_per_token / step * 1e-9, exe->stats().kernels_per_forward,
             whole * 1e3, 2048 / whole);
  CHECK(step > 0.0);
}

}  // namespace

TEST_CASE("Vulkan decode and prefill speed on released RWKV-7 shapes", "[.speed]") {
  ::setenv("RWKVC_VULKAN_VALIDATION", "0", 1);  // the layer's checks would dominate the host time
  auto vulkan = make_vulkan_backend({});
  fmt::print("{}\n", vulkan->device_name());
  const char* shapes = std::getenv("RWKVC_SPEED_SHAPES");
  std::istringstream list(shapes ? shapes : "12x768");
  std::string shape;
  while (std::getline(list, shape, ',')) {
    std::size_t x = shape.find('x');
    measure(*vulkan, std::stoll(shape.substr(0, x)), std::stoll(shape.substr(x + 1)));
  }
}

}  // namespace rwkvc::test
