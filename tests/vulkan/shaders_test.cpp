// What the backend compiles: every SPIR-V module passes spirv-val, a second start compiles
// nothing (SPIR-V and pipelines come from the disk cache), the validation layer is really on,
// and forward reports device time and its kernel count.
#include <filesystem>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

// Points the disk cache at `dir` for the scope's lifetime.
class CacheDirectory {
 public:
  explicit CacheDirectory(const std::filesystem::path& dir) {
    if (const char* old = std::getenv("RWKVC_VULKAN_CACHE")) previous_ = old;
    std::filesystem::remove_all(dir);
    ::setenv("RWKVC_VULKAN_CACHE", dir.c_str(), 1);
  }
  ~CacheDirectory() { ::setenv("RWKVC_VULKAN_CACHE", previous_.c_str(), 1); }

 private:
  std::string previous_;
};

}  // namespace

TEST_CASE("Every shader made for the tiny models passes spirv-val", "[vulkan][shaders]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (const char* model : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"}) {
    for (const char* pipeline : {"", "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,plan-memory",
                                 "lower-precision=f16", "lower-precision=bf16"}) {
      INFO(model << " with passes '" << pipeline << "'");
      TwoBackends both = compile_both(*vulkan, load_model(fixture_path(model)), pipeline);
      check_spirv_valid(*both.vulkan);
    }
  }
}

TEST_CASE("A second compile takes every shader from the disk cache", "[vulkan][shaders]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::filesystem::path dir = std::filesystem::path(RWKVC_BINARY_DIR) / "vulkan-cache-test";
  CacheDirectory cache(dir);
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));

  auto first = vulkan->compile(graph, model.weights);
  CHECK(as_vulkan(*first).shaders_compiled() > 0);
  first.reset();  // saves the pipeline cache
  bool pipeline_cache_saved = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    pipeline_cache_saved = pipeline_cache_saved || entry.path().filename().string().rfind("pipelines-", 0) == 0;
  CHECK(pipeline_cache_saved);

  auto again = make_vulkan_backend({})->compile(graph, model.weights);  // a new instance, as a new process has
  CHECK(as_vulkan(*again).shaders_compiled() == 0);
  State state = again->new_state();
  CHECK(again->forward(std::vector<std::int32_t>{5, 6, 7}, state).numel() == model.config.vocab);
}

TEST_CASE("The tests run with the Khronos validation layer on", "[vulkan][shaders]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  CHECK(vulkan::Instance::create()->validating());
}

TEST_CASE("Vulkan forward reports its device time and kernel count", "[vulkan][shaders]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  TwoBackends both = compile_both(*vulkan, load_model(fixture_path("rwkv4-tiny.safetensors")), "");
  State state = both.vulkan->new_state();
  both.vulkan->forward(std::vector<std::int32_t>{1, 2, 3}, state, {.time_on_device = true});
  ExecutionStats stats = both.vulkan->stats();
  CHECK(stats.device_seconds > 0.0);
  CHECK(stats.kernels_per_forward > 0);
  CHECK(stats.weight_bytes > 0);
  CHECK(stats.state_bytes == static_cast<std::int64_t>(4 * both.vulkan->state_layout().total_floats()));
  both.vulkan->forward(std::vector<std::int32_t>{4}, state);
  CHECK(both.vulkan->stats().device_seconds < 0.0);
}

}  // namespace rwkvc::test

namespace rwkvc::test {

// The cooperative-matrix GEMM runs only on devices with VK_NV_cooperative_matrix (not
// lavapipe): its GLSL must still compile and pass spirv-val everywhere, with and without an
// epilogue, for an NVIDIA-like device (subgroup 32, f16 arithmetic, 48 KiB shared memory).
TEST_CASE("The cooperative-matrix GEMM compiles and passes spirv-val", "[vulkan][shaders]") {
  vulkan::DeviceFeatures features;
  features.name = "a device with cooperative matrices";
  features.subgroup_size = 32;
  features.subgroup_arithmetic = true;
  features.float16 = true;
  features.storage16 = true;
  features.cooperative_matrix = true;
  features.shared_memory_bytes = 48 * 1024;
  features.max_workgroup_invocations = 1024;
  CHECK(vulkan::gemm_coopmat_takes(features, DType::f16, true, 2048));
  CHECK(!vulkan::gemm_coopmat_takes(features, DType::bf16, true, 2048));
  CHECK(!vulkan::gemm_coopmat_takes(features, DType::f16, true, 2044));
  vulkan::Epilogue relu_square{"float v3(uint i) { float x = load_in0(i); return x > 0.0 ? x * x : 0.0; }\n"
                               "float v4(uint i) { return v3(i) + load_in1(i); }\n",
                               "v4", {DType::f32}};
  vulkan::ShaderCompiler compiler({});
  for (const vulkan::Epilogue& epilogue : {vulkan::Epilogue{}, relu_square}) {
    vulkan::KernelSource source = vulkan::gemm_coopmat_kernel(features, epilogue);
    INFO(source.glsl);
    std::vector<std::uint32_t> module = compiler.compile(source.glsl, source.name);
    CHECK(vulkan::validate_spirv(module) == "");
    CHECK(source.bindings == 3 + epilogue.inputs.size());
  }
}

}  // namespace rwkvc::test
