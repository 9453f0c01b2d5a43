// Decode's GEMV batches as one walking launch (RWKVC_CUDA_GEMV_PERSISTENT=1,
// backends/cuda/gemv_persistent.h). Without a device: the generated kernels compile for sm_90
// and do not spill. On a device: one-token calls against the CPU on odd shapes (rows that are
// not whole warps of 8, f32 rows of 4-wide but not 8-wide vectors, rows of several segments with
// a partial last one, members of different K and N in one batch, folded epilogues), with the grid
// capped so each warp walks many rows of several members, and the tiny-model matrix.
#include <cstdlib>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/nvrtc_module.h"
#include "cuda_test_support.h"
#include "kernel_text_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

// The walking batches on, and the grid capped at `grid` blocks (0: what the device holds).
struct PersistentOn {
  explicit PersistentOn(int grid = 0)
      : on("RWKVC_CUDA_GEMV_PERSISTENT", "1"),
        cap("RWKVC_CUDA_GEMV_PERSISTENT_GRID", grid > 0 ? std::to_string(grid).c_str() : nullptr) {}
  ScopedEnv on, cap;
};

// A random RWKV-7 whose LoRA ranks (the downs' N, the ups' K) are multiples of 4 but mostly not
// of 8, and whose FFN width (the key's N, the value's K) is 1100: 275 f32 vectors, so the value's
// rows are two segments of 256, the second partial; f16 rows of 1100 are not whole vectors.
Model odd_rwkv7(std::uint64_t seed) { return odd_lora_rwkv7(seed, 1100); }

Model odd_rwkv4() { return odd_width_rwkv4(); }

}  // namespace

TEST_CASE("With RWKVC_CUDA_GEMV_PERSISTENT=1 decode's GEMV batches walk their rows and compile without spills",
          "[cuda][codegen][gemv_walk]") {
  configure_cuda_for_tests();
  Model model = odd_rwkv7(3);
  const std::string f16 = passes::preset_pipeline(2) + ",lower-precision=f16";
  std::string plain = decode_source(model, f16);
  CHECK_THAT(plain, !Catch::Contains("gemv_walk"));
  {
    PersistentOn on;
    std::string source = decode_source(model, f16);
    // Every batch walks: none of the block-per-8-rows batches is left, and the entry points
    // reach the walker through a store per member.
    CHECK_THAT(source, Catch::Contains("gemv_walk_rows<f16>(batch, store)") && !Catch::Contains("gemv_group_"));
    // Layer 0's and layer 1's attention batches (layer 1 adds the value LoRA), the LoRA ups of
    // both, and the FFN key (its value, K = 1100, is not whole f16 vectors but still a batch of one).
    CHECK(count_of(source, "extern \"C\" __global__ void GEMV_LAUNCH_BOUNDS gemv_walk_") >= 4);

    // ptxas: the walking kernels spill nothing.
    std::string log = ptxas_report(source, "gemv_persistent_test.cu");
    std::size_t walkers = check_entries_spill_nothing(log, "gemv_walk_");
    CHECK(walkers >= 4);

    // With the layer-norm fold on, the batches that compute their x keep the block-per-8-rows kernel.
    ScopedEnv fold("RWKVC_CUDA_FOLD_LN", "1");
    std::string folded = decode_source(model, f16);
    CHECK_THAT(folded, Catch::Contains("float gemv_x[]") && Catch::Contains("gemv_walk_rows<f16>"));
    CHECK(!cuda::compile_cubin(folded, "sm_90").empty());
  }
  for (const char* pipeline : {"", "lower-precision=bf16"}) {
    PersistentOn on;
    std::string source = decode_source(model, passes::preset_pipeline(2) + (*pipeline ? "," : "") + pipeline);
    CHECK(!cuda::compile_cubin(source, "sm_90").empty());
  }
}

TEST_CASE("CUDA's walking GEMV batches match the CPU on odd shapes", "[cuda][kernels][gemv_walk]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  // Three blocks: 24 warps walk every batch, each through rows of several members.
  PersistentOn on(3);
  for (const char* lora_up_fold : {"1", "0"}) {  // "0": the LoRA ups (K = 12..40) are a batch
    ScopedEnv fold("RWKVC_CUDA_FOLD_LORA_UP", lora_up_fold);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(11), passes::preset_pipeline(2), 7, kF32Tolerance);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(13), passes::preset_pipeline(2) + ",lower-precision=f16", 7,
                                    8.0 * 4.9e-4 * 3.0);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(17), passes::preset_pipeline(2) + ",lower-precision=bf16", 7,
                                    8.0 * 3.9e-3 * 3.0);
  }
  // -O0: every matmul its own batch of one, no folded epilogues.
  check_against_cpu_in_every_mode(*cuda, odd_rwkv7(19), passes::preset_pipeline(0), 5, kF32Tolerance);
  // RWKV-4: f32 rows of 100 walk; f16 rows of 100 are not whole vectors: member by member.
  check_against_cpu_in_every_mode(*cuda, odd_rwkv4(), passes::preset_pipeline(2), 7, kF32Tolerance);
  check_against_cpu_in_every_mode(*cuda, odd_rwkv4(), passes::preset_pipeline(2) + ",lower-precision=f16", 7,
                                  8.0 * 4.9e-4 * 3.0);
  // The layer-norm fold on: its batches keep their kernel, the rest walk.
  ScopedEnv fold("RWKVC_CUDA_FOLD_LN", "1");
  check_against_cpu_in_every_mode(*cuda, odd_rwkv7(23), passes::preset_pipeline(2) + ",lower-precision=f16", 7,
                                  8.0 * 4.9e-4 * 3.0);
}

TEST_CASE("CUDA matches the CPU on the tiny models with the walking GEMV batches", "[cuda][matrix][gemv_walk]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  PersistentOn on;
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (int level : {0, 2})
      check_against_cpu_in_every_mode(*cuda, load_model(fixture_path(file)), passes::preset_pipeline(level), 13,
                                      kF32Tolerance);
}

TEST_CASE("CUDA decodes the same logits with the walking GEMV batches as without", "[cuda][kernels][gemv_walk]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model = odd_rwkv7(29);
  Graph graph = passes::run_pipeline(build_graph(model.config),
                                     passes::parse_pipeline(passes::preset_pipeline(2) + ",lower-precision=f16"));
  auto tokens = random_tokens(6, model.config.vocab, 31);
  auto plain = cuda->compile(graph, model.weights);
  std::optional<PersistentOn> on(std::in_place);
  auto walking = cuda->compile(graph, model.weights);
  on.reset();
  State plain_state = plain->new_state(), walking_state = walking->new_state();
  HostTensor plain_logits = feed(*plain, tokens, plain_state, FeedMode::rnn(), true);
  HostTensor walking_logits = feed(*walking, tokens, walking_state, FeedMode::rnn(), true);
  // Each lane sums its chunks in the same order in both kernels: only the launch shape differs.
  CHECK(compare(walking_logits.f32(), plain_logits.f32()).relative <= 1e-6);
  CHECK(compare_states(walking_state.to_host(), plain_state.to_host()).relative <= 1e-6);
}

}  // namespace rwkvc::test
