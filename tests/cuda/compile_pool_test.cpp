// A module compiles as several NVRTC programs at once (backends/cuda/module_parts.h): every kernel
// is found in a part, each part names the families it uses, a second build finds every part in
// the cache, and a kernel that does not compile is named. Needs no device.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/kernel_sources.h"
#include "backends/cuda/module_parts.h"
#include "backends/cuda/nvrtc_module.h"
#include "backends/task_pool.h"
#include "bench_models.h"
#include "cuda_test_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

const char* const kPipelines[] = {"", "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,plan-memory",
                                  "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,lower-precision=f16",
                                  "lower-precision=bf16"};

cuda::Program tiny_program(const char* file, const char* pipeline) {
  Model model = load_model(fixture_path(file));
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  return cuda::build_program(precompute_token_free(graph, model.weights).graph);
}

// A cache folder of its own, empty, removed afterwards: what a fresh machine sees.
class FreshCache {
 public:
  explicit FreshCache(const std::string& tag)
      : dir_(std::filesystem::temp_directory_path() /
             ("rwkvc-compile-pool-" + tag + "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))),
        env_("RWKVC_CACHE_DIR", dir_.c_str()) {}
  ~FreshCache() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

 private:
  std::filesystem::path dir_;
  ScopedEnv env_;
};

}  // namespace

TEST_CASE("Top-level names of a kernel family: macros, types, functions, variables", "[cuda][codegen][compile_pool]") {
  const char* family = R"(
// helper_in_comment(
#define FAMILY_WIDTH 8
#define FAMILY_TWICE(x) \
  ((x) * 2)
template <typename W, int M = 4>
struct FamilyPack { int lanes[M]; };
__constant__ float family_table[3] = {1.0f, 2.0f, 3.0f};
typedef int family_index;
template <int N>
__device__ __forceinline__ float family_sum(const float* local_x, int count) {
  float inner_total = 0.0f;
  for (int i = 0; i < count; ++i) inner_total += local_x[i];
  return inner_total;
}
extern "C" __global__ void __launch_bounds__(256) family_kernel(float* out) { out[0] = family_sum<2>(out, 2); }
)";
  auto names = cuda::top_level_names(family);
  CHECK(names == std::set<std::string, std::less<>>{"FAMILY_WIDTH", "FAMILY_TWICE", "FamilyPack", "family_table",
                                                     "family_index", "family_sum", "family_kernel"});
}

TEST_CASE("Every kernel of the tiny models is found in a part of its module, each part with what it uses",
          "[cuda][codegen][compile_pool]") {
  configure_cuda_for_tests();
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (const char* pipeline : kPipelines) {
      INFO(file << " '" << pipeline << "'");
      cuda::Program program = tiny_program(file, pipeline);
      std::vector<cuda::ModulePart> parts = cuda::module_parts(program.module);
      // The misc kernels and one part per definition, at least.
      CHECK(parts.size() >= program.module.definitions().size() + 1);
      for (const cuda::KernelHandle& handle : program.module.handles()) {
        INFO(handle.name);
        std::size_t listed = 0;
        for (const cuda::ModulePart& part : parts)
          if (std::find(part.kernels.begin(), part.kernels.end(), handle.name) != part.kernels.end()) {
            ++listed;
            CHECK_THAT(part.source, Catch::Contains("void " + handle.name + "(") ||
                                        Catch::Contains(" " + handle.name + "("));
          }
        CHECK(listed == 1);
      }
      // Without their fallbacks: each part's own source, with only the families it names, compiles.
      for (cuda::ModulePart& part : parts) part.fallback_source.clear();
      cuda::CompileStats first, second;
      CHECK(cuda::compile_parts(parts, "sm_90", &first).size() == parts.size());
      CHECK(cuda::compile_parts(parts, "sm_90", &second).size() == parts.size());
      CHECK(first.fallbacks == 0);
      CHECK(second.compiled == 0);
      CHECK(second.from_cache == parts.size());
    }
}

TEST_CASE("The odd-shape RWKV-7 of the kernel tests compiles in parts", "[cuda][codegen][compile_pool]") {
  configure_cuda_for_tests();
  // 3 heads of 32, LoRA ranks 24/40/12/36, FFN 196 (tests/cuda/kernels_test.cpp), f32 and f16.
  ModelConfig config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  config.embd = 96;
  config.head_size = 32;
  config.ffn = 196;
  config.decay_lora = 24;
  config.aaa_lora = 40;
  config.mv_lora = 12;
  config.gate_lora = 36;
  WeightMap weights = make_random_model(config, 11);
  for (std::string pipeline : {passes::preset_pipeline(2), passes::preset_pipeline(2) + ",lower-precision=f16"}) {
    INFO(pipeline);
    Graph graph = passes::run_pipeline(build_graph(config), passes::parse_pipeline(pipeline));
    cuda::Program program = cuda::build_program(precompute_token_free(graph, weights).graph);
    std::vector<cuda::ModulePart> parts = cuda::module_parts(program.module);
    cuda::CompileStats stats;
    CHECK(cuda::compile_parts(parts, "sm_90", &stats).size() == parts.size());
    CHECK(stats.fallbacks == 0);
  }
}

TEST_CASE("Two programs that share kernels share their parts, so their cubins", "[cuda][codegen][compile_pool]") {
  // A part's cache key is its source (with the architecture, options and NVRTC's version).
  std::string rnn = "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,plan-memory";
  std::vector<cuda::ModulePart> f32 = cuda::module_parts(tiny_program("rwkv7-tiny.safetensors", rnn.c_str()).module);
  std::vector<cuda::ModulePart> f16 =
      cuda::module_parts(tiny_program("rwkv7-tiny.safetensors", (rnn + ",lower-precision=f16").c_str()).module);
  std::size_t shared = 0;
  bool misc_shared = false;
  for (const cuda::ModulePart& part : f16)
    for (const cuda::ModulePart& other : f32)
      if (part.source == other.source) {
        ++shared;
        misc_shared = misc_shared || part.name == "the misc kernels";
      }
  CHECK(misc_shared);
  // f16 weights change the GEMVs and what reads their results, not every elementwise kernel.
  CHECK(shared >= 2);
  CHECK(shared < f16.size());
}

TEST_CASE("A kernel that does not compile is named with NVRTC's log", "[cuda][codegen][compile_pool]") {
  configure_cuda_for_tests();
  cuda::ModuleSource module;
  module.kernel("layer_norm_rows");
  module.kernel("broken_kernel", "extern \"C\" __global__ void broken_kernel(float* y) { y[0] = no_such_helper(); }\n");
  std::vector<cuda::ModulePart> parts = cuda::module_parts(module);
  REQUIRE(parts.size() == 2);
  try {
    cuda::compile_parts(parts, "sm_90");
    FAIL("compiled a kernel that calls an undefined function");
  } catch (const std::runtime_error& error) {
    CHECK_THAT(error.what(), Catch::Contains("kernel 'broken_kernel'") && Catch::Contains("no_such_helper"));
  }
}

TEST_CASE("A part that misses a family it uses compiles with every family, once", "[cuda][codegen][compile_pool]") {
  FreshCache cache("fallback");
  // The call is spelled by token pasting, so the part's names do not show that it uses the family.
  static const char* const family = "__device__ float pasted_helper_scale() { return 3.0f; }\n";
  cuda::ModuleSource module;
  module.include(family);
  module.kernel("pasted_call", "#define PASTED_CALL(n) pasted_helper_##n()\n"
                               "extern \"C\" __global__ void pasted_call(float* y) { y[0] = PASTED_CALL(scale); }\n");
  std::vector<cuda::ModulePart> parts = cuda::module_parts(module);
  REQUIRE(parts.size() == 1);
  CHECK_THAT(parts[0].source, !Catch::Contains("pasted_helper_scale()"));
  CHECK_THAT(parts[0].fallback_source, Catch::Contains("pasted_helper_scale()"));
  cuda::CompileStats first, second;
  cuda::compile_parts(parts, "sm_90", &first);
  CHECK(first.fallbacks == 1);
  CHECK(first.compiled == 2);
  // Cached under the part's own source: the next start tries nothing.
  cuda::compile_parts(parts, "sm_90", &second);
  CHECK(second.compiled == 0);
}

TEST_CASE("The compile pool runs every job once, on the threads asked for, and rethrows the first failure",
          "[cuda][codegen][compile_pool]") {
  {
    ScopedEnv cap("RWKVC_CUDA_COMPILE_THREADS", "3");
    CHECK(pool_threads("RWKVC_CUDA_COMPILE_THREADS") == 3);
  }
  {
    ScopedEnv cap("RWKVC_CUDA_COMPILE_THREADS", nullptr);
    CHECK(pool_threads("RWKVC_CUDA_COMPILE_THREADS") >= 1);
  }
  std::vector<std::atomic<int>> runs(37);
  CHECK_THROWS_WITH(run_jobs(runs.size(), 4,
                             [&](std::size_t i) {
                               ++runs[i];
                               if (i == 5 || i == 20) throw std::runtime_error("job " + std::to_string(i));
                             }),
                    "job 5");
  for (const std::atomic<int>& count : runs) CHECK(count == 1);
}

// Cold and warm compile times: one program a module (RWKVC_CUDA_COMPILE_SPLIT=0) against parts on
// 1, 2 and all threads, each mode from an empty cache; prints a table. A section per module
// (`-c "L2xD2048 f16 -O2"`), and eight tiny modules in one cache, as a test program builds them
// (what their parts share). RWKVC_COMPILE_BENCH_THREADS=0,16 picks the modes (0: whole).
TEST_CASE("Compile times of the tiny models and a 1.5B-shaped module, whole and in parts", "[.compile_bench]") {
  std::vector<std::size_t> modes = {0, 1, 2};
  if (pool_threads(nullptr) > 2) modes.push_back(pool_threads(nullptr));
  if (const char* chosen = std::getenv("RWKVC_COMPILE_BENCH_THREADS")) {
    modes.clear();
    for (const char* at = chosen; *at != 0; at += *at == ',') modes.push_back(std::strtoul(at, const_cast<char**>(&at), 10));
  }
  // The programs one after another in one empty cache, as a test program builds its executables.
  auto time_modes = [&](const std::string& name, const std::vector<cuda::Program>& programs) {
    for (std::size_t threads : modes) {
      ScopedEnv split("RWKVC_CUDA_COMPILE_SPLIT", threads == 0 ? "0" : "1");
      ScopedEnv cap("RWKVC_CUDA_COMPILE_THREADS", std::to_string(std::max<std::size_t>(threads, 1)).c_str());
      FreshCache cache("bench");
      cuda::CompileStats cold, warm;
      std::size_t parts = 0;
      for (const cuda::Program& program : programs) {
        std::vector<cuda::ModulePart> module = cuda::module_parts(program.module);
        cuda::CompileStats one, again;
        cuda::compile_parts(module, "sm_90", &one);
        cuda::compile_parts(module, "sm_90", &again);
        CHECK(again.compiled == 0);
        CHECK(one.fallbacks == 0);
        parts += module.size();
        cold.compiled += one.compiled;
        cold.seconds += one.seconds;
        cold.cpu_seconds += one.cpu_seconds;
        warm.seconds += again.seconds;
      }
      std::string mode = threads == 0 ? "whole" : "parts x" + std::to_string(threads);
      std::printf("%-24s %-10s %6zu %8zu %8.2f %10.2f %8.3f\n", name.c_str(), mode.c_str(), parts, cold.compiled,
                  cold.seconds, cold.cpu_seconds, warm.seconds);
      std::fflush(stdout);
    }
  };
  std::printf("%-24s %-10s %6s %8s %8s %10s %8s\n", "modules", "mode", "parts", "compiled", "cold s", "cold cpu s",
              "warm s");
  SECTION("rwkv7-tiny -O2") {
    std::vector<cuda::Program> programs;
    programs.push_back(tiny_program("rwkv7-tiny.safetensors", passes::preset_pipeline(2).c_str()));
    time_modes("rwkv7-tiny -O2", programs);
  }
  SECTION("rwkv4-tiny -O2") {
    std::vector<cuda::Program> programs;
    programs.push_back(tiny_program("rwkv4-tiny.safetensors", passes::preset_pipeline(2).c_str()));
    time_modes("rwkv4-tiny -O2", programs);
  }
  SECTION("L2xD2048 f16 -O2") {
    // Two layers have every kernel of 24 (the layers after the first share theirs); vocabulary 65536.
    ModelConfig config = standard_config(Arch::rwkv7, 2, 2048, 65536);
    Graph graph = passes::run_pipeline(build_graph(config),
                                       passes::parse_pipeline(passes::preset_pipeline(2) + ",lower-precision=f16"));
    std::vector<cuda::Program> programs;
    programs.push_back(cuda::build_program(precompute_token_free(graph, bench_weights(graph)).graph));
    time_modes("L2xD2048 f16 -O2", programs);
  }
  SECTION("tiny models x 4 pipelines") {
    // What the codegen test compiles: both tiny models under four pipelines, eight modules.
    std::vector<cuda::Program> programs;
    for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
      for (const char* pipeline : kPipelines) programs.push_back(tiny_program(file, pipeline));
    time_modes("tiny models x 4 pipelines", programs);
  }
}

}  // namespace rwkvc::test
