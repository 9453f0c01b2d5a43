// Prefill speed with each long-call switch on and off, in one process on the same weights:
// RWKVC_CUDA_HALF_ACTIVATIONS (16-bit activations), RWKVC_CUDA_PREFILL_GRAPHS (CUDA graphs for
// long calls), RWKVC_CUDA_WKV_HEAD_BLOCKS (the wkv region's pre/post-ops a block per
// (token, head)) and RWKVC_CUDA_GEMM_EPILOGUES (residual adds inside cuBLASLt; on by default since
// session 6: "all" is session 5's defaults, "epilogues" today's; "fused_prepare" is today's with
// the wkv pre-ops inside the chunked WKV7's record kernel, RWKVC_CUDA_WKV_FUSED_PREPARE). Hidden
// ([.prefill_bench]): run on a GPU with RWKVC_BENCH_SHAPES ("L24xD2048,L12xD768") and
// RWKVC_PREFILL_VARIANTS (e.g. "all,epilogues"; unset: all seven). One JSON object per model and
// variant on stdout (and appended to RWKVC_BENCH_OUT); a 4096-token profile of "base", "all",
// "epilogues" and "fused_prepare" on stderr.
#include <algorithm>
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

TEST_CASE("CUDA prefill speed with the long-call switches on and off", "[.prefill_bench][cuda]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  const char* shapes_env = std::getenv("RWKVC_BENCH_SHAPES");
  std::string shapes = shapes_env != nullptr ? shapes_env : "L24xD2048";
  double peak = cuda::gemm_rate(0);
  std::stringstream list(shapes);
  for (std::string item; std::getline(list, item, ',');) {
    auto [config, graph, weights] = bench_model(item);
    struct Variant {
      const char* name;
      const char* half;
      const char* graphs;
      const char* heads;
      const char* epilogues = "0";
      const char* fused_prepare = "0";
    };
    // RWKVC_PREFILL_VARIANTS picks some by name ("base,all"); unset: every one.
    const char* picked = std::getenv("RWKVC_PREFILL_VARIANTS");
    for (Variant variant : {Variant{"base", "0", "0", "0"}, Variant{"half", "1", "0", "0"}, Variant{"graphs", "0", "1", "0"},
                            Variant{"wkv_heads", "0", "0", "1"}, Variant{"all", "1", "1", "1"},
                            Variant{"epilogues", "1", "1", "1", "1"},
                            Variant{"fused_prepare", "1", "1", "1", "1", "1"}}) {
      if (picked != nullptr && ("," + std::string(picked) + ",").find("," + std::string(variant.name) + ",") == std::string::npos)
        continue;
      ::setenv("RWKVC_CUDA_HALF_ACTIVATIONS", variant.half, 1);
      ::setenv("RWKVC_CUDA_PREFILL_GRAPHS", variant.graphs, 1);
      ::setenv("RWKVC_CUDA_WKV_HEAD_BLOCKS", variant.heads, 1);
      ::setenv("RWKVC_CUDA_GEMM_EPILOGUES", variant.epilogues, 1);
      ::setenv("RWKVC_CUDA_WKV_FUSED_PREPARE", variant.fused_prepare, 1);
      auto exe = cuda->compile(graph, weights);
      std::int64_t table = config.vocab * config.embd * 2;
      double flops_per_token = static_cast<double>(exe->stats().weight_bytes - 2 * table);
      ForwardOptions timed;
      timed.time_on_device = true;
      unsigned seed = 7;

      std::string json = fmt::format("{{\"model\": \"rwkv7 L{} D{} V{} f16\", \"variant\": \"{}\", \"gemm_peak_tflops\": {:.1f}",
                                     config.layers, config.embd, config.vocab, variant.name, peak / 1e12);
      for (std::int64_t length : {512, 4096}) {
        std::vector<double> times;
        std::int64_t kernels = 0;
        for (int i = 0; i < 7; ++i) {
          auto prompt = random_tokens(static_cast<std::size_t>(length), config.vocab, seed++);
          State fresh = exe->new_state();
          exe->forward(prompt, fresh, timed);
          if (i < 2) continue;  // warm-up: NVRTC-loaded module, cuBLAS heuristics, the graph's capture
          times.push_back(exe->stats().device_seconds);
          kernels = exe->stats().kernels_per_forward;
        }
        double seconds = median(times);
        json += fmt::format(", \"prefill_{}\": {{\"tokens_per_s\": {:.1f}, \"ms\": {:.3f}, \"of_gemm_peak\": {:.3f}, \"kernels\": {}}}",
                            length, static_cast<double>(length) / seconds, seconds * 1e3,
                            flops_per_token * static_cast<double>(length) / seconds / peak, kernels);
      }
      State state = exe->new_state();
      std::vector<double> decode;
      for (int i = 0; i < 60; ++i) {
        auto one = random_tokens(1, config.vocab, seed++);
        exe->forward(one, state, timed);
        if (i >= 10) decode.push_back(exe->stats().device_seconds);
      }
      json += fmt::format(", \"decode_tokens_per_s\": {:.1f}, \"decode_kernels\": {}}}", 1.0 / median(decode),
                          exe->stats().kernels_per_forward);
      fmt::print("{}\n", json);
      std::fflush(stdout);
      if (const char* out = std::getenv("RWKVC_BENCH_OUT"); out != nullptr) std::ofstream(out, std::ios::app) << json << "\n";
      if (variant.name != std::string("half") && variant.name != std::string("graphs") &&
          variant.name != std::string("wkv_heads")) {
        fmt::print(stderr, "== {} L{} D{}\n", variant.name, config.layers, config.embd);
        ::setenv("RWKVC_CUDA_PROFILE", "1", 1);
        auto prompt = random_tokens(4096, config.vocab, seed++);
        State fresh = exe->new_state();
        exe->forward(prompt, fresh);
        ::unsetenv("RWKVC_CUDA_PROFILE");
      }
      CHECK(exe->stats().kernels_per_forward > 0);
    }
    ::unsetenv("RWKVC_CUDA_HALF_ACTIVATIONS");
    ::unsetenv("RWKVC_CUDA_PREFILL_GRAPHS");
    ::unsetenv("RWKVC_CUDA_WKV_HEAD_BLOCKS");
    ::unsetenv("RWKVC_CUDA_GEMM_EPILOGUES");
    ::unsetenv("RWKVC_CUDA_WKV_FUSED_PREPARE");
  }
}

}  // namespace rwkvc::test
