// Kernel generation and NVRTC need no device: every kernel the tiny models need is generated
// and compiled for sm_90 here too, and the compiled module is found in the cache the second time.
// (A module compiles in parts: tests/cuda/compile_pool_test.cpp.)
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/fused_codegen.h"
#include "backends/cuda/kernel_sources.h"
#include "backends/cuda/module_parts.h"
#include "backends/cuda/nvrtc_module.h"
#include "cuda_test_support.h"
#include "kernel_text_support.h"
#include "frontend/random_model.h"

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
      // As the executable compiles it: in parts, on a pool of threads (module_parts.h).
      std::vector<cuda::ModulePart> parts = cuda::module_parts(program.module);
      cuda::CompileStats first, second;
      CHECK(cuda::compile_parts(parts, "sm_90", &first).size() == parts.size());
      CHECK(first.fallbacks == 0);
      CHECK(cuda::compile_parts(parts, "sm_90", &second).size() == parts.size());
      CHECK(second.compiled == 0);
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

namespace {

// A one-token kernel of `heads` blocks laid out like the fused wkv region's phases.
std::string head_kernel(const cuda::ElementCode& code, std::size_t outputs, Dim N) {
  std::string params = "long long T";
  for (std::size_t o = 0; o < outputs; ++o) params += ", float* a_out" + std::to_string(o);
  for (std::size_t i = 0; i < code.inputs.size(); ++i) params += ", const float* a_in" + std::to_string(i);
  std::string n = std::to_string(N);
  return std::string(cuda::kPreludeSource) + "extern \"C\" __global__ void head_phase(" + params +
         ") {\n  (void)T;\n  const int h = blockIdx.x;\n  const i64 d0 = 0;\n" + code.prologue +
         "  for (int c = threadIdx.x; c < " + n + "; c += blockDim.x) {\n    const i64 d1 = (i64)h * " + n +
         " + c;\n" + code.body + "  }\n}\n";
}

}  // namespace

TEST_CASE("Head sums of a block-per-head kernel are block reductions, each done once", "[cuda][codegen]") {
  // 3 heads of 32: %0 x [T, C], %1 kk [C], %2 w [C], %3 b [C]; %4 = x * kk, %5 = l2_norm(%4),
  // %6 = group_norm(x, w, b), %7 = %4 as [T, H, N], %8 = reduce_sum(%7), %9 = %8 * %7, %10 = %9 as [T, C].
  constexpr Dim H = 3, N = 32, C = H * N;
  std::vector<TensorType> types{{DType::f32, {kSeq, C}},    {DType::f32, {C}},         {DType::f32, {C}},
                                {DType::f32, {C}},          {DType::f32, {kSeq, C}},    {DType::f32, {kSeq, C}},
                                {DType::f32, {kSeq, C}},    {DType::f32, {kSeq, H, N}}, {DType::f32, {kSeq, H, 1}},
                                {DType::f32, {kSeq, H, N}}, {DType::f32, {kSeq, C}}};
  Attrs grouped{{"groups", std::int64_t{H}}, {"eps", 1e-5}};
  Op mul{OpKind::mul, {0, 1}, {4}, {}};
  Op l2{OpKind::l2_norm, {4}, {5}, grouped};
  Op norm{OpKind::group_norm, {0, 2, 3}, {6}, grouped};
  Op split{OpKind::reshape, {4}, {7}, {{"shape", std::vector<std::int64_t>{kSeq, H, N}}}};
  Op sum{OpKind::reduce_sum, {7}, {8}, {}};
  Op bonus{OpKind::mul, {8, 7}, {9}, {}};
  Op join{OpKind::reshape, {9}, {10}, {{"shape", std::vector<std::int64_t>{kSeq, C}}}};
  cuda::CodegenScope scope{types, {nullptr, nullptr, nullptr, nullptr, &mul, &l2, &norm, &split, &sum, &bonus, &join}};
  std::vector<bool> materialized{true, true, true, true, false, false, false, false, false, false, false};
  std::vector<ValueId> outputs{5, 6, 10};
  Shape domain{kSeq, C};

  cuda::ElementCode hoisted =
      cuda::generate_element_code(scope, outputs, materialized, domain, "a_", cuda::HeadBlock{H, N, "h"});
  // The l2 norm's squares, the group norm's mean and squares (about the mean), the bonus sum.
  CHECK(count_of(hoisted.prologue, "block_sum(") == 4);
  CHECK_THAT(hoisted.prologue, Catch::Contains("__shared__ float a_head_scratch[32];"));
  // No element loops over its head any more.
  CHECK_THAT(hoisted.body, !Catch::Contains("for (") && !Catch::Contains("block_sum"));
  CHECK(!cuda::compile_cubin(head_kernel(hoisted, outputs.size(), N), "sm_90").empty());

  cuda::ElementCode per_element = cuda::generate_element_code(scope, outputs, materialized, domain, "a_");
  CHECK(per_element.prologue.empty());
  CHECK(count_of(per_element.body, "for (") == 4);
  CHECK(!cuda::compile_cubin(head_kernel(per_element, outputs.size(), N), "sm_90").empty());
}

TEST_CASE("The one-token wkv kernel of a head-size-64 model sums its heads once and compiles", "[cuda][codegen]") {
  configure_cuda_for_tests();
  ModelConfig config = standard_config(Arch::rwkv7, 2, 256, 64);  // layer 1 adds the value residual
  Graph graph = passes::run_pipeline(build_graph(config), passes::parse_pipeline(passes::preset_pipeline(2)));
  cuda::Program program = cuda::build_program(precompute_token_free(graph, make_random_model(config, 3)).graph);
  std::string source = program.module.text();
  REQUIRE_THAT(source, Catch::Contains("wkv7_token_"));
  const char* switch_value = std::getenv("RWKVC_CUDA_HEAD_REDUCTIONS");
  if (switch_value != nullptr && std::string(switch_value) == "0") {
    CHECK_THAT(source, !Catch::Contains("head_scratch"));
  } else {
    // Before the recurrence the l2 norm of k * k_k, after it the group norm and the bonus.
    CHECK_THAT(source, Catch::Contains("__shared__ float a_head_scratch[32];") &&
                           Catch::Contains("__shared__ float c_head_scratch[32];"));
  }
  std::vector<cuda::ModulePart> parts = cuda::module_parts(program.module);
  cuda::CompileStats stats;
  CHECK(cuda::compile_parts(parts, "sm_90", &stats).size() == parts.size());
  CHECK(stats.fallbacks == 0);
}

}  // namespace rwkvc::test
