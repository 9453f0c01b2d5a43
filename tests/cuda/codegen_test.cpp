// Kernel generation and NVRTC need no device: every kernel the tiny models need is generated
// and compiled for sm_90 here too, and the compiled module is found in the cache the second time.
#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/fused_codegen.h"
#include "backends/cuda/kernel_sources.h"
#include "backends/cuda/nvrtc_module.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

TEST_CASE("Every kernel of the tiny models compiles with NVRTC for sm_90, once", "[cuda][codegen]") {
  configure_cuda_for_tests();
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (const char* pipeline : {"", "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,plan-memory",
                                 "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,lower-precision=f16",
                                 "lower-precision=bf16"}) {
      INFO(file << " '" << pipeline << "'");
      Model model = load_model(fixture_path(file));
      Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
      Precomputed precomputed = precompute_token_free(graph, model.weights);
      cuda::Program program = cuda::build_program(precomputed.graph);
      CHECK(!program.steps.empty());
      std::string source = program.module.text();
      bool cached = false;
      CHECK(!cuda::compile_cubin(source, "sm_90", &cached).empty());
      CHECK(!cuda::compile_cubin(source, "sm_90", &cached).empty());
      CHECK(cached);
    }
}

TEST_CASE("A token shift with its mixes and last row is one generated kernel", "[cuda][codegen]") {
  // %0 x [T, 4], %1 prev [4], %2 mix [4]; %3 = token_shift, %4 = lerp, %5 = last_row.
  std::vector<TensorType> types{{DType::f32, {kSeq, 4}}, {DType::f32, {4}}, {DType::f32, {4}},
                                {DType::f32, {kSeq, 4}}, {DType::f32, {kSeq, 4}}, {DType::f32, {4}}};
  Op shift{OpKind::token_shift, {0, 1}, {3}, {}};
  Op mix{OpKind::lerp, {0, 3, 2}, {4}, {}};
  Op last{OpKind::last_row, {0}, {5}, {}};
  cuda::CodegenScope scope{types, {nullptr, nullptr, nullptr, &shift, &mix, &last}};
  std::vector<bool> materialized{true, true, true, false, false, false};
  std::vector<ValueId> outputs{5, 4};
  auto kernels = cuda::generate_fused(scope, outputs, materialized);
  REQUIRE(kernels.size() == 1);
  CHECK(kernels[0].domain == Shape{kSeq, 4});
  CHECK(kernels[0].inputs.size() == 3);
  CHECK(kernels[0].output_positions == std::vector<std::size_t>{0, 1});
  // The last row is written once per channel, by the threads of row 0, from row T - 1.
  CHECK_THAT(kernels[0].source, Catch::Contains("if (d0 == 0)") && Catch::Contains("(T - 1)"));
  CHECK(!cuda::compile_cubin(std::string(cuda::kPreludeSource) + kernels[0].source, "sm_90").empty());
}

TEST_CASE("Identical region bodies share one generated kernel", "[cuda][codegen]") {
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  cuda::Program program = cuda::build_program(precompute_token_free(graph, model.weights).graph);
  std::size_t fused = 0, rows = 0, regions = 0;
  for (const cuda::KernelHandle& handle : program.module.handles()) {
    fused += handle.name.rfind("fused_", 0) == 0;
    rows += handle.name.rfind("fused_rows_", 0) == 0;
  }
  for (const Op& op : graph.ops) regions += op.kind == OpKind::region;
  // The layer norm + token shift mixes (attention, channel mix) of both layers: two kernels.
  CHECK(rows == 2);
  // Two layers of one shape: layer 1's kernels are layer 0's, apart from the value-residual mix.
  CHECK(fused > 0);
  CHECK(fused < regions);
}

}  // namespace rwkvc::test
