// Decode and prefill speed on large random RWKV-7 models with f16 weights, against the
// device's measured ceilings. Hidden ([.bench]): run `rwkvc_cuda_tests "[bench]"` on a GPU.
// RWKVC_BENCH_SHAPES picks the models ("L24xD2048,L12xD768"; vocabulary 65536, LoRA ranks as
// the released models size them); one JSON object per model is printed, and appended to the
// file RWKVC_BENCH_OUT names.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cuda/roofline.h"
#include "bench_models.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

TEST_CASE("CUDA decode and prefill speed on large random RWKV-7 models", "[.bench][cuda]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  const char* shapes_env = std::getenv("RWKVC_BENCH_SHAPES");
  std::string shapes = shapes_env != nullptr ? shapes_env : "L24xD2048";
  double bandwidth = cuda::copy_bandwidth(0);
  double peak = cuda::gemm_rate(0);
  std::stringstream list(shapes);
  for (std::string item; std::getline(list, item, ',');) {
    auto [config, graph, weights] = bench_model(item);
    auto exe = cuda->compile(graph, weights);
    ExecutionStats compiled = exe->stats();
    // Bytes one decode step must read: every weight but the embedding table, of which one row.
    std::int64_t table = config.vocab * config.embd * 2;
    double bytes_per_token = static_cast<double>(compiled.weight_bytes - table + config.embd * 2);

    ForwardOptions timed;
    timed.time_on_device = true;
    std::mt19937 rng(3);
    auto token = [&] { return static_cast<std::int32_t>(rng() % static_cast<unsigned>(config.vocab)); };
    State state = exe->new_state();
    std::vector<double> device, wall;
    std::int64_t decode_kernels = 0;
    for (int i = 0; i < 110; ++i) {
      std::vector<std::int32_t> one{token()};
      auto start = std::chrono::steady_clock::now();
      exe->forward(one, state, timed);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (i < 10) continue;  // warm-up: graph capture, clocks
      device.push_back(exe->stats().device_seconds);
      wall.push_back(seconds);
      decode_kernels = exe->stats().kernels_per_forward;
    }
    double decode_device = median(device), decode_wall = median(wall);

    std::string prefill_json;
    for (std::int64_t length : {512, 4096}) {
      std::vector<double> times;
      std::int64_t kernels = 0;
      for (int i = 0; i < 6; ++i) {
        std::vector<std::int32_t> prompt(static_cast<std::size_t>(length));
        for (auto& t : prompt) t = token();
        State fresh = exe->new_state();
        exe->forward(prompt, fresh, timed);
        if (i == 0) continue;
        times.push_back(exe->stats().device_seconds);
        kernels = exe->stats().kernels_per_forward;
      }
      double seconds = median(times);
      // Two FLOPs per f16 parameter and token; the head runs on the last row alone.
      double flops = static_cast<double>(compiled.weight_bytes - 2 * table) * static_cast<double>(length);
      prefill_json += fmt::format(
          ", \"prefill_{}\": {{\"tokens_per_s\": {:.1f}, \"seconds\": {:.6f}, \"tflops\": {:.1f}, \"of_gemm_peak\": {:.3f}, "
          "\"kernels\": {}}}",
          length, static_cast<double>(length) / seconds, seconds, flops / seconds / 1e12, flops / seconds / peak, kernels);
    }
    // Where the time goes: one decode step and one long prompt, kernel by kernel (on stderr).
    ::setenv("RWKVC_CUDA_PROFILE", "1", 1);
    {
      std::vector<std::int32_t> one{token()}, prompt(4096);
      for (auto& t : prompt) t = token();
      exe->forward(one, state);
      State fresh = exe->new_state();
      exe->forward(prompt, fresh);
    }
    ::unsetenv("RWKVC_CUDA_PROFILE");

    const char* pdl = std::getenv("RWKVC_CUDA_PDL");
    bool pdl_off = pdl != nullptr && std::string(pdl) == "0";
    std::string json = fmt::format(
        "{{\"model\": \"rwkv7 L{} D{} V{} f16\", \"dependent_launch\": {}, \"weight_bytes\": {}, \"copy_bandwidth_gbs\": {:.1f}, "
        "\"gemm_peak_tflops\": {:.1f}, \"decode\": {{\"tokens_per_s_device\": {:.1f}, \"tokens_per_s_wall\": {:.1f}, "
        "\"of_roofline\": {:.3f}, \"kernels\": {}}}{}}}",
        config.layers, config.embd, config.vocab, pdl_off ? "false" : "true", compiled.weight_bytes, bandwidth / 1e9, peak / 1e12, 1.0 / decode_device,
        1.0 / decode_wall, bytes_per_token / bandwidth / decode_device, decode_kernels, prefill_json);
    fmt::print("{}\n", json);
    if (const char* out = std::getenv("RWKVC_BENCH_OUT"); out != nullptr) std::ofstream(out, std::ios::app) << json << "\n";
    CHECK(decode_device > 0.0);
  }
}

}  // namespace rwkvc::test
