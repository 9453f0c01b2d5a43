// A hidden speed probe for the device machine (not a ctest case: run it by its tag,
// `rwkvc_vulkan_tests "[.speed]"`): random RWKV-7 models with f16 weights at released shapes
// (RWKVC_SPEED_SHAPES, default "12x768"; layers x embedding), decode and prefill device time,
// the decode roofline ratio against a device-to-device copy of 1 GiB timed in the same run,
// the kernels that take the most decode time, the decode with other decode folds
// (RWKVC_SPEED_FOLDS) or other settings (RWKVC_SPEED_VARIANTS), the prefill with the
// cooperative-matrix GEMM (RWKVC_SPEED_COOPMAT=0 skips it), and (with
// RWKVC_SPEED_COLD_COMPILE) a first -O0 compile. It asserts only that times were measured.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/vulkan/buffer.h"
#include "backends/vulkan/device.h"
#include "backends/vulkan/vk_error.h"
#include "frontend/random_model.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// DRAM bytes moved per second by vkCmdCopyBuffer of `bytes` (each byte read once and written
// once, so 2 * bytes per copy) in `regions` equal regions: the bandwidth a decode that reads
// its weights once can reach.
double copy_bandwidth(std::size_t bytes, std::size_t regions) {
  auto device = vulkan::Device::open(vulkan::Instance::create(), 0);
  if (device->features().timestamp_bits == 0) return 0.0;
  vulkan::Buffer from(device, bytes, vulkan::Memory::device), to(device, bytes, vulkan::Memory::device);
  VkQueryPoolCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO;
  info.queryType = VK_QUERY_TYPE_TIMESTAMP;
  info.queryCount = 2;
  VkQueryPool pool = VK_NULL_HANDLE;
  vulkan::check(vkCreateQueryPool(device->handle(), &info, nullptr, &pool), "vkCreateQueryPool");
  std::vector<double> seconds;
  for (int i = 0; i < 7; ++i) {
    device->run_now([&](VkCommandBuffer commands) {
      vkCmdResetQueryPool(commands, pool, 0, 2);
      vkCmdWriteTimestamp(commands, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pool, 0);
      std::vector<VkBufferCopy> parts;
      for (std::size_t r = 0; r < regions; ++r) parts.push_back({r * bytes / regions, r * bytes / regions, bytes / regions});
      vkCmdCopyBuffer(commands, from.handle(), to.handle(), static_cast<std::uint32_t>(parts.size()), parts.data());
      vkCmdWriteTimestamp(commands, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, 1);
    });
    std::array<std::uint64_t, 2> ticks{};
    vulkan::check(vkGetQueryPoolResults(device->handle(), pool, 0, 2, sizeof(ticks), ticks.data(), sizeof(std::uint64_t),
                                        VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
                  "vkGetQueryPoolResults");
    seconds.push_back(static_cast<double>(ticks[1] - ticks[0]) * device->features().timestamp_period_ns * 1e-9);
  }
  vkDestroyQueryPool(device->handle(), pool, nullptr);
  return 2.0 * static_cast<double>(bytes) / median(seconds);
}

// An f16 row GEMV's label ("gemv f16 B[N,K] ... M,N,K,..."): its weight bytes, else 0.
double gemv_bytes(const std::string& label) {
  if (label.rfind("gemv f16 B[N,K]", 0) != 0) return 0.0;
  std::istringstream push(label.substr(label.rfind(' ') + 1));
  std::string m, n, k;
  std::getline(push, m, ',');
  std::getline(push, n, ',');
  std::getline(push, k, ',');
  return 2.0 * std::stod(n) * std::stod(k);
}

// The weight bandwidth of the largest single GEMV of a profile (the head's [V, C]).
double largest_gemv_rate(const std::vector<vulkan::VulkanExecutable::StepTime>& steps) {
  double bytes = 0.0, rate = 0.0;
  for (const auto& step : steps)
    if (gemv_bytes(step.label) > bytes) {
      bytes = gemv_bytes(step.label);
      rate = bytes / step.seconds;
    }
  return rate;
}

// The steps' times summed by kernel label, the largest first.
void print_profile(const std::vector<vulkan::VulkanExecutable::StepTime>& steps, std::size_t top) {
  std::map<std::string, std::pair<double, int>> by_label;
  double total = 0.0;
  for (const auto& step : steps) {
    by_label[step.label].first += step.seconds;
    by_label[step.label].second += 1;
    total += step.seconds;
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> sorted(by_label.begin(), by_label.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  for (std::size_t i = 0; i < std::min(top, sorted.size()); ++i) {
    const std::string& label = sorted[i].first;
    auto [seconds, count] = sorted[i].second;
    std::string rate;
    if (double bytes = gemv_bytes(label); bytes > 0.0) rate = fmt::format(" ({:.0f} GB/s)", bytes * count / seconds * 1e-9);
    fmt::print("    {:6.1f}% {:8.1f} us  x{:<4} {}{}\n", 100.0 * seconds / total, seconds * 1e6, count, label, rate);
  }
}

// Median device time of decode steps 160..199 of a 200-token run (the first ones also bring
// the GPU to its clocks).
double decode_seconds(Executable& exe) {
  State state = exe.new_state();
  std::vector<double> decode;
  for (int i = 0; i < 200; ++i) {
    std::int32_t token = i % 1000;
    exe.forward(std::span(&token, 1), state, {.time_on_device = true});
    if (i >= 160) decode.push_back(exe.stats().device_seconds);
  }
  return median(decode);
}

// The same decode with other decode folds (RWKVC_VULKAN_FOLDS): what each gains.
void compare_folds(Backend& vulkan, const Graph& graph, const WeightMap& weights, double by_default) {
  // RWKVC_SPEED_FOLDS: the variants to time, e.g. "none;norm_mix,lora_up" (default "none").
  const char* variants = std::getenv("RWKVC_SPEED_FOLDS");
  std::istringstream list(variants ? variants : "none");
  std::string folds;
  while (std::getline(list, folds, ';')) {
    ::setenv("RWKVC_VULKAN_FOLDS", folds.c_str(), 1);
    auto exe = vulkan.compile(graph, weights);
    ::unsetenv("RWKVC_VULKAN_FOLDS");
    double seconds = decode_seconds(*exe);
    fmt::print("  decode with folds '{}': {:.3f} ms/token ({:.0f} tokens/s, {} kernels, {} barriers); default folds: {:.3f} ms/token\n",
               folds, seconds * 1e3, 1.0 / seconds, exe->stats().kernels_per_forward,
               dynamic_cast<vulkan::VulkanExecutable&>(*exe).barriers_per_forward(), by_default * 1e3);
  }
}

// Sets environment variables ("NAME=value NAME2=value2") for the scope's lifetime.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::string& assignments) {
    std::istringstream list(assignments);
    std::string item;
    while (list >> item) {
      std::size_t equals = item.find('=');
      std::string name = item.substr(0, equals), value = equals == std::string::npos ? "" : item.substr(equals + 1);
      const char* old = std::getenv(name.c_str());
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
      if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1); else ::unsetenv(it->first.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The same decode compiled under other settings (RWKVC_SPEED_VARIANTS: variants separated by
// ';', each a space-separated list of NAME=value, e.g.
// "RWKVC_VULKAN_WKV_TOKEN_SPLIT=0;RWKVC_VULKAN_GEMV=unroll=16 RWKVC_VULKAN_FOLDS=none"):
// time per token, kernels, barriers and the costliest kernels of one profiled step.
void compare_variants(Backend& vulkan, const Graph& graph, const WeightMap& weights, double by_default) {
  const char* variants = std::getenv("RWKVC_SPEED_VARIANTS");
  std::istringstream list(variants ? variants : "");
  std::string variant;
  while (std::getline(list, variant, ';')) {
    std::unique_ptr<Executable> exe;
    {
      ScopedEnv scope(variant);
      exe = vulkan.compile(graph, weights);
    }
    double seconds = decode_seconds(*exe);
    auto& profiled = dynamic_cast<vulkan::VulkanExecutable&>(*exe);
    fmt::print("  variant '{}': decode {:.3f} ms/token ({:.0f} tokens/s, {} kernels, {} barriers; {:+.1f}% against the "
               "default's {:.3f} ms)\n",
               variant, seconds * 1e3, 1.0 / seconds, exe->stats().kernels_per_forward, profiled.barriers_per_forward(),
               100.0 * (seconds / by_default - 1.0), by_default * 1e3);
    profiled.set_profiling(true);
    State state = exe->new_state();
    for (int i = 0; i < 3; ++i) {
      std::int32_t token = 7 + i;
      exe->forward(std::span(&token, 1), state, {.time_on_device = true});
    }
    profiled.set_profiling(false);
    print_profile(profiled.step_times(), 8);
  }
}

// Prefill of `prompt` (median of 3 fresh calls) on a backend opened with the cooperative-matrix
// GEMM (RWKVC_VULKAN_COOPMAT=1; the same as the default where the device has none).
void compare_prefill(const Graph& graph, const WeightMap& weights, const std::vector<std::int32_t>& prompt,
                     double by_default) {
  ::setenv("RWKVC_VULKAN_COOPMAT", "1", 1);
  auto backend = make_vulkan_backend({});
  auto exe = backend->compile(graph, weights);
  ::unsetenv("RWKVC_VULKAN_COOPMAT");
  std::vector<double> prefill;
  for (int i = 0; i < 3; ++i) {
    State fresh = exe->new_state();
    exe->forward(prompt, fresh, {.time_on_device = true});
    prefill.push_back(exe->stats().device_seconds);
  }
  double seconds = median(prefill);
  fmt::print("  prefill {} tokens with RWKVC_VULKAN_COOPMAT=1 ({}): {:.1f} ms ({:.0f} tokens/s); by default: {:.1f} ms\n",
             prompt.size(), backend->device_name(), seconds * 1e3, static_cast<double>(prompt.size()) / seconds,
             by_default * 1e3);
}

void measure(Backend& vulkan, std::int64_t layers, std::int64_t embd, double bandwidth) {
  ModelConfig config = standard_config(Arch::rwkv7, layers, embd, 65536);
  WeightMap weights = make_random_model(config, 1);
  std::string pipeline = passes::preset_pipeline(2) + "," + passes::precision_step(DType::f16);
  Graph graph = passes::run_pipeline(build_graph(config), passes::parse_pipeline(pipeline));
  auto exe = vulkan.compile(graph, weights);
  auto& profiled = dynamic_cast<vulkan::VulkanExecutable&>(*exe);

  // Decode reads every matrix once per token, but one row of the embedding table: the graph's
  // weights as declared (a fold may keep a second, transposed copy of a matrix on the device).
  std::int64_t table = 2 * config.vocab * config.embd, declared = 0;
  for (const WeightDecl& weight : graph.weights) {
    const TensorType& type = graph.type(weight.value);
    declared += type.shape.numel() * static_cast<std::int64_t>(dtype_size(type.dtype));
  }
  double bytes_per_token = static_cast<double>(declared - table + 2 * config.embd);
  fmt::print("weights: {:.1f} MB declared, {:.1f} MB on the device\n", declared * 1e-6, exe->stats().weight_bytes * 1e-6);
  State state = exe->new_state();
  double step = decode_seconds(*exe);
  std::int64_t decode_kernels = exe->stats().kernels_per_forward, decode_barriers = profiled.barriers_per_forward();
  std::vector<std::int32_t> prompt = random_tokens(2048, config.vocab, 2);
  std::vector<double> prefill;
  for (int i = 0; i < 3; ++i) {
    State fresh = exe->new_state();
    exe->forward(prompt, fresh, {.time_on_device = true});
    prefill.push_back(exe->stats().device_seconds);
  }
  double whole = median(prefill);
  double roofline = bandwidth > 0.0 ? bytes_per_token / bandwidth : 0.0;
  fmt::print("speed L{} D{} f16: decode {:.3f} ms/token ({:.0f} tokens/s, {:.0f} GB/s of weights, {} kernels, {} barriers), "
             "roofline {:.3f} ms/token ({:.1f} MB at {:.0f} GB/s): ratio {:.1f}%; "
             "prefill 2048 tokens {:.1f} ms ({:.0f} tokens/s)\n",
             layers, embd, step * 1e3, 1.0 / step, bytes_per_token / step * 1e-9, decode_kernels, decode_barriers, roofline * 1e3,
             bytes_per_token * 1e-6, bandwidth * 1e-9, 100.0 * roofline / step, whole * 1e3, 2048 / whole);
  CHECK(step > 0.0);

  // Where the time goes: one profiled decode step and one profiled prefill.
  profiled.set_profiling(true);
  for (int i = 0; i < 3; ++i) {
    std::int32_t token = 7 + i;
    exe->forward(std::span(&token, 1), state, {.time_on_device = true});
  }
  double head_rate = largest_gemv_rate(profiled.step_times());
  fmt::print("  decode against the head GEMV's own weight bandwidth ({:.0f} GB/s): {:.3f} ms/token, ratio {:.1f}%\n",
             head_rate * 1e-9, bytes_per_token / head_rate * 1e3, 100.0 * bytes_per_token / head_rate / step);
  fmt::print("  decode profile (top kernels, summed over layers):\n");
  print_profile(profiled.step_times(), 16);
  State fresh = exe->new_state();
  exe->forward(prompt, fresh, {.time_on_device = true});
  fmt::print("  prefill 2048 profile:\n");
  print_profile(profiled.step_times(), 10);
  profiled.set_profiling(false);
  compare_folds(vulkan, graph, weights, step);
  compare_variants(vulkan, graph, weights, step);
  // RWKVC_SPEED_COOPMAT=0 skips the prefill with the cooperative-matrix GEMM.
  if (const char* coopmat = std::getenv("RWKVC_SPEED_COOPMAT"); coopmat == nullptr || std::string_view(coopmat) != "0")
    compare_prefill(graph, weights, prompt, whole);
}

// A first start at -O0 (RWKVC_SPEED_COLD_COMPILE, e.g. "24x2048"): compile with an empty shader
// cache, then again with the cache it left; host wall time, shaders compiled from GLSL.
void time_cold_compile(Backend& vulkan, std::int64_t layers, std::int64_t embd) {
  ModelConfig config = standard_config(Arch::rwkv7, layers, embd, 65536);
  WeightMap weights = make_random_model(config, 1);
  Graph graph = passes::run_pipeline(build_graph(config), passes::parse_pipeline(passes::precision_step(DType::f16)));
  std::string dir = fmt::format("/tmp/rwkvc-cold-compile-{}", ::getpid());
  std::filesystem::remove_all(dir);
  const char* old = std::getenv("RWKVC_VULKAN_CACHE");
  std::string saved = old ? old : "";
  ::setenv("RWKVC_VULKAN_CACHE", dir.c_str(), 1);
  for (const char* start : {"cold", "warm"}) {
    auto begin = std::chrono::steady_clock::now();
    auto exe = vulkan.compile(graph, weights);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    fmt::print("compile L{} D{} -O0 f16, {} shader cache: {:.1f} s ({} shaders compiled from GLSL, {} kernels/token)\n",
               layers, embd, start, seconds, dynamic_cast<vulkan::VulkanExecutable&>(*exe).shaders_compiled(),
               exe->stats().kernels_per_forward);
  }
  if (old) ::setenv("RWKVC_VULKAN_CACHE", saved.c_str(), 1); else ::unsetenv("RWKVC_VULKAN_CACHE");
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("Vulkan decode and prefill speed on released RWKV-7 shapes", "[.speed]") {
  ::setenv("RWKVC_VULKAN_VALIDATION", "0", 1);  // the layer's checks would dominate the host time
  auto vulkan = make_vulkan_backend({});
  fmt::print("{}\n", vulkan->device_name());
  double whole = copy_bandwidth(std::size_t{1} << 30, 1), split = copy_bandwidth(std::size_t{1} << 30, 16);
  double bandwidth = std::max(whole, split);
  fmt::print("device-to-device vkCmdCopyBuffer of 1 GiB: {:.0f} GB/s as one region, {:.0f} GB/s as 16 (read + write)\n",
             whole * 1e-9, split * 1e-9);
  const char* shapes = std::getenv("RWKVC_SPEED_SHAPES");
  std::istringstream list(shapes ? shapes : "12x768");
  std::string shape;
  while (std::getline(list, shape, ',')) {
    std::size_t x = shape.find('x');
    measure(*vulkan, std::stoll(shape.substr(0, x)), std::stoll(shape.substr(x + 1)), bandwidth);
  }
  if (const char* cold = std::getenv("RWKVC_SPEED_COLD_COMPILE")) {
    std::string text = cold;
    std::size_t x = text.find('x');
    time_cold_compile(*vulkan, std::stoll(text.substr(0, x)), std::stoll(text.substr(x + 1)));
  }
}

}  // namespace rwkvc::test
