// 16-bit activations in long calls (backends/cuda/prefill_half.h): which values the analysis
// keeps in 16 bits, that the kernels storing them compile, and on a device that a long call
// gives the same results with them as without (the rounding is the one the conversion did).
#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/kernel_sources.h"
#include "backends/cuda/nvrtc_module.h"
#include "backends/cuda/prefill_half.h"
#include "cuda_test_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

Graph lowered_graph(const Model& model, const std::string& pipeline) {
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  return precompute_token_free(graph, model.weights).graph;
}

DType dtype_of(const Graph& graph, const std::vector<DType>& types, const std::string& name) {
  for (std::size_t i = 0; i < graph.values.size(); ++i)
    if (graph.values[i].name == name) return types[i];
  FAIL("no value named " << name);
  return DType::i32;
}

// The generated kernels of `source` whose names start with one of `prefixes`, each definition
// up to the next top-level one, after the prelude: compiled apart from the hand-written families.
std::string generated_only(const std::string& source, std::initializer_list<const char*> prefixes) {
  std::string out = cuda::kPreludeSource;
  const std::string entry = "extern \"C\" __global__ void ";
  for (std::size_t at = source.find(entry); at != std::string::npos;) {
    std::size_t next = source.find("\nextern \"C\"", at + 1);
    std::size_t structure = source.find("\nstruct ", at + 1);
    std::size_t end = std::min(next, structure);
    std::string definition = source.substr(at, end == std::string::npos ? std::string::npos : end - at + 1);
    for (const char* prefix : prefixes)
      if (definition.find(std::string(" ") + prefix) != std::string::npos &&
          definition.find(std::string(" ") + prefix) < definition.find('(')) {
        out += definition;
        break;
      }
    at = next == std::string::npos ? next : next + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("Long calls keep in 16 bits what only 16-bit matmuls read", "[cuda][codegen][prefill]") {
  configure_cuda_for_tests();
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  for (const char* dtype : {"f16", "bf16"}) {
    INFO(dtype);
    DType want = std::string(dtype) == "f16" ? DType::f16 : DType::bf16;
    Graph graph = lowered_graph(model, passes::preset_pipeline(2) + ",lower-precision=" + dtype);
    std::vector<DType> types = cuda::long_call_dtypes(graph);
    // The six mixes (a token_shift_mix region's yields), the channel mix's, the gated wkv
    // output, relu^2 of the FFN key (a matmul_epilogue's tail), a LoRA's tanh and a plain
    // matmul's result that the next matmul reads (cuBLAS stores it in 16 bits).
    for (const char* name : {"blocks.0.att.xr", "blocks.0.att.xw", "blocks.0.att.xk", "blocks.0.att.xv", "blocks.0.att.xa",
                             "blocks.1.att.xg", "blocks.1.ffn.xk", "blocks.0.att.y.gated", "blocks.1.ffn.k",
                             "blocks.0.att.w.lora.act", "blocks.1.att.a.lora.down", "blocks.1.att.v.lora.down"}) {
      INFO(name);
      CHECK(dtype_of(graph, types, name) == want);
    }
    // Read by other ops too (residuals, the wkv region, the state, the head on the last row).
    for (const char* name : {"blocks.0.x.att", "blocks.1.x.ffn", "blocks.0.att.r", "blocks.0.att.k", "blocks.0.att.v",
                             "blocks.0.att.last", "blocks.1.ffn.last", "blocks.1.att.w.lora.up"}) {
      INFO(name);
      CHECK(dtype_of(graph, types, name) == DType::f32);
    }
    CHECK(types[static_cast<std::size_t>(graph.logits)] == DType::f32);

    cuda::Program program = cuda::build_program(graph);
    std::string source = program.module.text();
    CHECK_THAT(source, Catch::Contains(fmt::format("{}* out", dtype)) &&
                           Catch::Contains(fmt::format("f32_to_{}_bits(", dtype)));
    // Only the head (all positions' logits) still converts its input for cuBLAS.
    CHECK(program.staged.size() == 1);
    // The wkv region of a long call: a block per (token, head) before and after the recurrence.
    CHECK_THAT(source, Catch::Contains("wkv_heads_") && Catch::Contains("const i64 d0 = blockIdx.x / 2;"));
    CHECK(!cuda::compile_cubin(generated_only(source, {"fused_", "wkv_heads_"}), "sm_90").empty());
  }

  SECTION("f32 weights and the switch keep every value in f32") {
    Graph plain = lowered_graph(model, passes::preset_pipeline(2));
    for (DType type : cuda::long_call_dtypes(plain)) CHECK(type == DType::f32);
    ScopedEnv off("RWKVC_CUDA_HALF_ACTIVATIONS", "0");
    Graph graph = lowered_graph(model, passes::preset_pipeline(2) + ",lower-precision=f16");
    for (DType type : cuda::long_call_dtypes(graph)) CHECK(type == DType::f32);
  }
}

TEST_CASE("Without regions (-O0) the mixes are still stored in 16 bits, RWKV-4 too", "[cuda][codegen][prefill]") {
  configure_cuda_for_tests();
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"}) {
    INFO(file);
    Model model = load_model(fixture_path(file));
    for (const char* pipeline : {"lower-precision=f16", "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,lower-precision=bf16"}) {
      INFO(pipeline);
      Graph graph = lowered_graph(model, pipeline);
      std::vector<DType> types = cuda::long_call_dtypes(graph);
      std::size_t half = 0;
      for (DType type : types) half += type != DType::f32;
      CHECK(half >= 4 * static_cast<std::size_t>(model.config.layers));
      cuda::Program program = cuda::build_program(graph);
      CHECK(!cuda::compile_cubin(generated_only(program.module.text(), {"fused_", "wkv_heads_"}), "sm_90").empty());
    }
  }
}

// The generated kernels of a 1.5B-wide layer (D2048, released LoRA ranks), with their first
// lines: to name the kernels of a profile (the names hash the source). Hidden.
TEST_CASE("Generated kernels of a D2048 layer", "[.prefill_kernels][cuda]") {
  ModelConfig config = standard_config(Arch::rwkv7, 2, 2048, 256);
  Model model{std::string("random"), config, make_random_model(config, 1)};
  Graph graph = lowered_graph(model, passes::preset_pipeline(2) + ",lower-precision=f16");
  for (const char* half : {"0", "1"}) {
    ScopedEnv env("RWKVC_CUDA_HALF_ACTIVATIONS", half);
    cuda::Program program = cuda::build_program(graph);
    std::string source = program.module.text();
    fmt::print("== RWKVC_CUDA_HALF_ACTIVATIONS={}: {} steps\n", half, program.steps.size());
    for (const cuda::KernelHandle& handle : program.module.handles()) {
      if (handle.name.rfind("fused", 0) != 0 && handle.name.rfind("wkv_heads", 0) != 0) continue;
      std::size_t at = source.find(handle.name + "(");
      fmt::print("-- {}\n{}\n", handle.name, source.substr(at, 4000));
    }
  }
}

TEST_CASE("Long calls with 16-bit activations match those without", "[cuda][prefill]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (const char* dtype : {"f16", "bf16"}) {
      INFO(file << " " << dtype);
      Model model = load_model(fixture_path(file));
      Graph graph = passes::run_pipeline(build_graph(model.config),
                                         passes::parse_pipeline(passes::preset_pipeline(2) + ",lower-precision=" + dtype));
      std::unique_ptr<Executable> with, without;
      {
        ScopedEnv off("RWKVC_CUDA_HALF_ACTIVATIONS", "0");
        without = cuda->compile(graph, model.weights);
      }
      with = cuda->compile(graph, model.weights);
      auto tokens = random_tokens(45, model.config.vocab, 17);
      ForwardOptions all;
      all.all_logits = true;
      State a = with->new_state(), b = without->new_state();
      HostTensor x = with->forward(tokens, a, all), y = without->forward(tokens, b, all);
      // The same values are rounded at the same places; only cuBLAS's choice of kernel for a
      // 16-bit product may sum in another order.
      Error e = compare(x.f32(), y.f32());
      Error s = compare_states(a.to_host(), b.to_host());
      WARN("16-bit activations against f32 ones: logits " << e.relative << ", state " << s.relative);
      CHECK(e.relative <= 1e-3);
      CHECK(s.relative <= 1e-3);
    }
}

}  // namespace rwkvc::test
