// Prefill speed with each long-call switch on and off, in one process on the same weights:
// RWKVC_CUDA_HALF_ACTIVATIONS (16-bit activations), RWKVC_CUDA_PREFILL_GRAPHS (CUDA graphs for
// long calls) and RWKVC_CUDA_WKV_HEAD_BLOCKS (the wkv region's pre/post-ops a block per
// (token, head)). Hidden ([.prefill_bench]): run on a GPU with RWKVC_BENCH_SHAPES
// ("L24xD2048,L12xD768") and RWKVC_PREFILL_VARIANTS (e.g. "base,all"; unset: all five). One
// JSON object per model and variant on stdout (and appended to RWKVC_BENCH_OUT); a 4096-token
// profile of "base" and "all" on stderr.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cuda/roofline.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

namespace {

// Cheap uniform weights in the declared shapes and dtypes: matrices in +-1/sqrt(fan-in),
// vectors in (0.1, 0.9), the decay base w0 in (-6, -1). Hash-based, so billions are quick.
WeightMap quick_weights(const Graph& graph) {
  WeightMap weights;
  std::uint64_t counter = 0;
  for (const WeightDecl& decl : graph.weights) {
    const TensorType& type = graph.type(decl.value);
    HostTensor tensor(type.dtype, type.shape);
    bool matrix = type.shape.rank() == 2;
    double scale = matrix ? 1.0 / std::sqrt(static_cast<double>(type.shape[1])) : 1.0;
    bool decay = decl.key.find("w0") != std::string::npos;
    std::byte* data = tensor.mutable_data();
    for (std::int64_t i = 0; i < tensor.numel(); ++i) {
      std::uint64_t z = (counter++ + 1) * 0x9e3779b97f4a7c15ull;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      double u = static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
      auto v = static_cast<float>(matrix ? (2.0 * u - 1.0) * scale : decay ? -6.0 + 5.0 * u : 0.1 + 0.8 * u);
      switch (type.dtype) {
        case DType::f32: reinterpret_cast<float*>(data)[i] = v; break;
        case DType::f16: reinterpret_cast<std::uint16_t*>(data)[i] = float_to_half(v); break;
        case DType::bf16: reinterpret_cast<std::uint16_t*>(data)[i] = float_to_bf16(v); break;
        case DType::i32: break;
      }
    }
    weights.emplace(decl.key, std::move(tensor));
  }
  return weights;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

TEST_CASE("CUDA prefill speed with the long-call switches on and off", "[.prefill_bench][cuda]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  const char* shapes_env = std::getenv("RWKVC_BENCH_SHAPES");
  std::string shapes = shapes_env != nullptr ? shapes_env : "L24xD2048";
  double peak = cuda::gemm_rate(0);
  std::stringstream list(shapes);
  for (std::string item; std::getline(list, item, ',');) {
    std::int64_t layers = 0, embd = 0;
    REQUIRE(std::sscanf(item.c_str(), "L%ldxD%ld", &layers, &embd) == 2);
    ModelConfig config = standard_config(Arch::rwkv7, layers, embd, 65536);
    Graph graph = passes::run_pipeline(build_graph(config),
                                       passes::parse_pipeline(passes::preset_pipeline(2) + ",lower-precision=f16"));
    WeightMap weights = quick_weights(graph);
    struct Variant {
      const char* name;
      const char* half;
      const char* graphs;
      const char* heads;
    };
    // RWKVC_PREFILL_VARIANTS picks some by name ("base,all"); unset: every one.
    const char* picked = std::getenv("RWKVC_PREFILL_VARIANTS");
    for (Variant variant : {Variant{"base", "0", "0", "0"}, Variant{"half", "1", "0", "0"}, Variant{"graphs", "0", "1", "0"},
                            Variant{"wkv_heads", "0", "0", "1"}, Variant{"all", "1", "1", "1"}}) {
      if (picked != nullptr && ("," + std::string(picked) + ",").find("," + std::string(variant.name) + ",") == std::string::npos)
        continue;
      ::setenv("RWKVC_CUDA_HALF_ACTIVATIONS", variant.half, 1);
      ::setenv("RWKVC_CUDA_PREFILL_GRAPHS", variant.graphs, 1);
      ::setenv("RWKVC_CUDA_WKV_HEAD_BLOCKS", variant.heads, 1);
      auto exe = cuda->compile(graph, weights);
      std::int64_t table = config.vocab * config.embd * 2;
      double flops_per_token = static_cast<double>(exe->stats().weight_bytes - 2 * table);
      ForwardOptions timed;
      timed.time_on_device = true;
      unsigned seed = 7;

      std::string json = fmt::format("{{\"model\": \"rwkv7 L{} D{} V{} f16\", \"variant\": \"{}\", \"gemm_peak_tflops\": {:.1f}",
                                     layers, embd, config.vocab, variant.name, peak / 1e12);
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
      if (variant.name == std::string("base") || variant.name == std::string("all")) {
        fmt::print(stderr, "== {} L{} D{}\n", variant.name, layers, embd);
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
  }
}

}  // namespace rwkvc::test
