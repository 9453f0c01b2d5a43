// The wkv region's pre-ops fused into the kernel that writes the chunked WKV7's records
// (backends/cuda/prefill_wkv_prepare.h, RWKVC_CUDA_WKV_FUSED_PREPARE=1): which programs get the
// kernel and what it still stores, that its text compiles, and on a device that long calls give
// the results of the switch off and of the CPU, at head sizes 32 and 64, f32 and f16.
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/nvrtc_module.h"
#include "backends/feed_mode.h"
#include "cuda_test_support.h"
#include "kernel_text_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

// A random 2-layer RWKV-7 of three heads of `head_size` and a vocabulary of 97.
Model random_rwkv7(std::int64_t head_size) {
  Model model;
  model.path = "random RWKV-7, head size " + std::to_string(head_size);
  model.config = standard_config(Arch::rwkv7, 2, 3 * head_size, 97, head_size);
  model.weights = make_random_model(model.config, 11 + static_cast<std::uint64_t>(head_size));
  return model;
}

std::string pipeline_of(const std::string& dtype) {
  return passes::preset_pipeline(2) + (dtype == "f32" ? "" : ",lower-precision=" + dtype);
}

// The stored outputs of kernel `name` in `source`: its `float* outN` parameters.
std::size_t stored_outputs(const std::string& source, const std::string& name) {
  std::size_t begin = source.find(name + "("), end = source.find(')', begin), count = 0;
  for (std::size_t i = source.find("* out", begin); i < end; i = source.find("* out", i + 1)) ++count;
  return count;
}


}  // namespace

TEST_CASE("The fused pre-ops kernel replaces the prepare kernel's inputs in memory", "[cuda][codegen][prefill]") {
  configure_cuda_for_tests();
  for (std::int64_t n : {32, 64}) {
    Model model = random_rwkv7(n);
    Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline_of("f16")));
    Graph lowered = precompute_token_free(graph, model.weights).graph;
    std::optional<ScopedEnv> switch_off(std::in_place, "RWKVC_CUDA_WKV_FUSED_PREPARE", "0");
    cuda::Program off = cuda::build_program(lowered);
    switch_off.reset();
    ScopedEnv on("RWKVC_CUDA_WKV_FUSED_PREPARE", "1");
    cuda::Program program = cuda::build_program(lowered);
    auto count = [](cuda::Program& p, const std::string& prefix) {
      std::size_t found = 0;
      for (const cuda::KernelHandle& handle : p.module.handles()) found += handle.name.rfind(prefix, 0) == 0;
      return found;
    };
    INFO("head size " << n);
    CHECK(count(off, "wkv7f_prepare_") == 0);
    // Layer 0 (v is v_first) and layer 1 (v mixed with v_first): two bodies.
    CHECK(count(program, "wkv7f_prepare_") == 2);
    // The pre-ops kernels stay for the calls that do not take the chunked kernels.
    CHECK(count(program, "wkv_heads_") == count(off, "wkv_heads_"));
    std::string source = program.module.text();
    for (const cuda::KernelHandle& handle : program.module.handles()) {
      if (handle.name.rfind("wkv7f_prepare_", 0) != 0) continue;
      // Of decay, key, v, a and b only the key (the post-ops' bonus reads it) and, where the
      // region computes it, v (the row kernel's, the bonus's) are stored.
      std::size_t stored = stored_outputs(source, handle.name);
      CHECK(stored >= 1);
      CHECK(stored <= 2);
    }
    CHECK(!cuda::compile_cubin(source, "sm_90").empty());
  }
}

// The fused kernels of a 1.5B-wide layer (D2048, 32 heads of 64), printed for reading. Hidden.
TEST_CASE("Fused pre-ops kernels of a D2048 layer", "[.wkv_fused_prepare_kernels][cuda]") {
  ModelConfig config = standard_config(Arch::rwkv7, 2, 2048, 256);
  Model model{std::string("random"), config, make_random_model(config, 1)};
  Graph graph = passes::run_pipeline(build_graph(config), passes::parse_pipeline(pipeline_of("f16")));
  ScopedEnv on("RWKVC_CUDA_WKV_FUSED_PREPARE", "1");
  cuda::Program program = cuda::build_program(precompute_token_free(graph, model.weights).graph);
  std::string source = program.module.text();
  for (const cuda::KernelHandle& handle : program.module.handles())
    if (handle.name.rfind("wkv7f_prepare_", 0) == 0) {
      std::size_t begin = source.find(handle.name + "("), end = source.find("\n}\n", begin);
      fmt::print("-- {}\n{}\n", handle.name, source.substr(begin, end + 3 - begin));
    }
  std::string log = ptxas_report(source, "wkv_fused_prepare_test.cu");
  for (std::size_t at = log.find("Compiling entry function 'wkv"); at != std::string::npos;
       at = log.find("Compiling entry function 'wkv", at + 1))
    fmt::print("{}\n", log.substr(at, log.find("Compiling entry function", at + 1) - at));
}

TEST_CASE("Long calls with the fused pre-ops kernel match those without and the CPU", "[cuda][prefill]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  // Every call of 16 tokens and more chunked; the 5-token call takes the sequential kernel.
  ScopedEnv from("RWKVC_WKV7_CHUNKED_FROM", "16");
  // Head size 32 in f32, 64 in f16 (four programs to compile: the device time is short).
  for (auto [n, dtype] : {std::pair<std::int64_t, const char*>{32, "f32"}, {64, "f16"}}) {
    Model model = random_rwkv7(n);
    double layers = static_cast<double>(model.config.layers);
    INFO(model.path << ", " << dtype);
    Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline_of(dtype)));
    auto cpu = make_backend("cpu")->compile(graph, model.weights);
    std::unique_ptr<Executable> off, on;
    {
      ScopedEnv fused("RWKVC_CUDA_WKV_FUSED_PREPARE", "0");
      off = cuda->compile(graph, model.weights);
    }
    {
      ScopedEnv fused("RWKVC_CUDA_WKV_FUSED_PREPARE", "1");
      on = cuda->compile(graph, model.weights);
    }
    ForwardOptions all;
    all.all_logits = true;
    State reference = cpu->new_state(), a = on->new_state(), b = off->new_state();
    // Calls in a row, so that all but the first start from a state that is not zero: 37 and 70
    // end in a shorter chunk, 48 has full chunks only.
    for (std::size_t length : {37, 5, 48, 70}) {
      auto tokens = random_tokens(length, model.config.vocab, 3 + static_cast<unsigned>(length));
      HostTensor want = cpu->forward(tokens, reference, all);
      HostTensor x = on->forward(tokens, a, all), y = off->forward(tokens, b, all);
      // The same r, w, k, a, b (the group sums add as the block sums do), so the same records;
      // only cuBLAS's choice of kernel may sum in another order.
      Error same = compare(x.f32(), y.f32());
      Error same_state = compare_states(a.to_host(), b.to_host());
      // Against the CPU: f32 as the chunked WKV7's own test; f16 as precision_test.cpp.
      double tolerance = std::string(dtype) == "f32" ? 1e-4 : 8.0 * 4.9e-4 * (layers + 1.0);
      Error e = compare(x.f32(), want.f32());
      Error es = compare_states(a.to_host(), reference.to_host());
      INFO(length << " tokens: against the switch off " << same.relative << " (state " << same_state.relative
                  << "), against the CPU " << e.relative << " (state " << es.relative << ")");
      CHECK(same.relative <= 1e-5);
      CHECK(same_state.relative <= 1e-5);
      CHECK(e.relative <= tolerance);
      CHECK(es.relative <= tolerance);
      if (length == 70) WARN("fused pre-ops, N " << n << " " << dtype << ": against off " << same.relative
                                                 << ", against the CPU " << e.relative << " (state " << es.relative << ")");
    }
  }
}

}  // namespace rwkvc::test
