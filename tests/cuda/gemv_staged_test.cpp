// Decode's GEMV batches with their weight tiles staged in shared memory before the wait
// (RWKVC_CUDA_GEMV_STAGED=1, backends/cuda/gemv_staged.h). Without a device: how rows are cut
// into tiles, and the generated kernels compile for sm_90 without spills. On a device: one-token
// calls against the CPU on odd shapes (rows of several 256-lane rounds with a partial last one,
// rows of fewer chunks than a warp, members of different K and N in one batch, folded epilogues,
// f32/f16/bf16), with tiny tiles and a capped grid so that each block refills its ring many
// times, and the tiny-model matrix.
#include <cstdlib>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/gemv_staged.h"
#include "backends/cuda/nvrtc_module.h"
#include "cuda_test_support.h"
#include "kernel_text_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

// The staged batches on, with a shape (0: the default).
struct StagedOn {
  explicit StagedOn(int stages = 0, int tile_kb = 0, int grid = 0, int per_sm = 0, int lanes = 0,
                    const char* copy = nullptr)
      : on("RWKVC_CUDA_GEMV_STAGED", "1"),
        stages_("RWKVC_CUDA_GEMV_STAGED_STAGES", stages > 0 ? std::to_string(stages).c_str() : nullptr),
        tile("RWKVC_CUDA_GEMV_STAGED_TILE_KB", tile_kb > 0 ? std::to_string(tile_kb).c_str() : nullptr),
        grid_("RWKVC_CUDA_GEMV_STAGED_GRID", grid > 0 ? std::to_string(grid).c_str() : nullptr),
        per_sm_("RWKVC_CUDA_GEMV_STAGED_PER_SM", per_sm > 0 ? std::to_string(per_sm).c_str() : nullptr),
        lanes_("RWKVC_CUDA_GEMV_STAGED_LANES", lanes > 0 ? std::to_string(lanes).c_str() : nullptr),
        copy_("RWKVC_CUDA_GEMV_STAGED_COPY", copy) {}
  ScopedEnv on, stages_, tile, grid_, per_sm_, lanes_, copy_;
};

// LoRA ranks (the downs' N) not multiples of 8 and an FFN width (the key's N, the value's K) of
// 1104: 276 f32 vectors (more than the block's 256 lanes) and 138 f16 vectors, so the value's rows
// take a partial second round of lanes in f32.
Model odd_rwkv7(std::uint64_t seed) { return odd_lora_rwkv7(seed, 1104); }

Model odd_rwkv4() { return odd_width_rwkv4(); }

constexpr double kF16Tolerance = 8.0 * 4.9e-4 * 3.0;
constexpr double kBf16Tolerance = 8.0 * 3.9e-3 * 3.0;

}  // namespace

TEST_CASE("A staged GEMV tile holds whole rows, as many as its bytes and the kernel's accumulators allow",
          "[cuda][codegen][gemv_staged]") {
  cuda::StagedShape shape;  // 16 KB tiles, a warp a row
  CHECK(cuda::staged_tile_rows(2048, DType::f16, shape) == 4);
  // A row longer than the tile is a tile of its own.
  CHECK(cuda::staged_tile_rows(8192, DType::f16, shape) == 1);
  CHECK(cuda::staged_tile_rows(8192, DType::f32, shape) == 1);
  CHECK(cuda::staged_tile_rows(64, DType::f16, shape) == 128);
  shape.tile_bytes = 64 * 1024;
  CHECK(cuda::staged_tile_rows(2048, DType::f16, shape) == 16);
  CHECK(cuda::staged_tile_rows(8192, DType::f32, shape) == 2);

  // Rows split over up to 256 lanes: a 2048-wide f16 row (256 chunks) takes the whole block,
  // whose threads hold eight accumulators.
  shape.max_lanes = 256;
  CHECK(cuda::staged_tile_rows(2048, DType::f16, shape) == 8);
  shape.tile_bytes = 16 * 1024;
  CHECK(cuda::staged_tile_rows(2048, DType::f16, shape) == 4);
  // Rows of at most 32 chunks are a warp's each, however many the tile holds: 64 f16 (8 chunks),
  // 96 f32 (24 chunks; 42 rows of 384 bytes fit 16 KB).
  CHECK(cuda::staged_tile_rows(64, DType::f16, shape) == 128);
  CHECK(cuda::staged_tile_rows(96, DType::f32, shape) == 42);
  // 1104 f32 (276 chunks): 256 lanes a row, one row group.
  CHECK(cuda::staged_tile_rows(1104, DType::f32, shape) == 3);
}

TEST_CASE("With RWKVC_CUDA_GEMV_STAGED=1 decode's GEMV batches stage their tiles and compile without spills",
          "[cuda][codegen][gemv_staged]") {
  configure_cuda_for_tests();
  Model model = odd_rwkv7(3);
  const std::string f16 = passes::preset_pipeline(2) + ",lower-precision=f16";
  std::string plain = decode_source(model, f16);
  CHECK_THAT(plain, !Catch::Contains("gemv_staged_"));
  {
    StagedOn on;
    std::string source = decode_source(model, f16);
    // Every batch is staged: none of the block-per-8-rows batches is left, and the entry points
    // reach the staged kernel through a store per member.
    CHECK_THAT(source, Catch::Contains("gemv_staged_tiles<f16>(batch, store)") && !Catch::Contains("gemv_group_"));
    // Layer 0's and layer 1's attention batches (layer 1 adds the value LoRA), the output
    // projection, the FFN key and value.
    CHECK(count_of(source, "extern \"C\" __global__ void __launch_bounds__(256) gemv_staged_") >= 5);

    // ptxas: the staged kernels spill nothing.
    std::string log = ptxas_report(source, "gemv_staged_test.cu");
    std::size_t staged = check_entries_spill_nothing(log, "gemv_staged_");
    CHECK(staged >= 5);

    // The head (a plain store, N = the vocabulary) is staged too, unless RWKVC_CUDA_GEMV_STAGED_HEAD=0.
    const std::string head = "if (m == 0) StoreRow()(batch.y[0], batch.N[0], 0, n, v);\n  };\n  gemv_staged_tiles";
    CHECK(count_of(source, head) == 1);
    {
      ScopedEnv no_head("RWKVC_CUDA_GEMV_STAGED_HEAD", "0");
      CHECK(count_of(decode_source(model, f16), head) == 0);
    }

    // With the layer-norm fold on, the batches that compute their x keep the block-per-8-rows kernel.
    ScopedEnv fold("RWKVC_CUDA_FOLD_LN", "1");
    std::string folded = decode_source(model, f16);
    CHECK_THAT(folded, Catch::Contains("float gemv_x[]") && Catch::Contains("gemv_staged_tiles<f16>"));
    CHECK(!cuda::compile_cubin(folded, "sm_90").empty());
  }
  for (const char* pipeline : {"", "lower-precision=bf16"}) {
    StagedOn on;
    std::string source = decode_source(model, passes::preset_pipeline(2) + (*pipeline ? "," : "") + pipeline);
    CHECK_THAT(source, Catch::Contains("gemv_staged_tiles<"));
    CHECK(!cuda::compile_cubin(source, "sm_90").empty());
  }
}

TEST_CASE("CUDA's staged GEMV batches match the CPU on odd shapes", "[cuda][kernels][gemv_staged]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  const std::string f16 = passes::preset_pipeline(2) + ",lower-precision=f16";
  // 1 KB tiles, two slots, three blocks: each block walks many tiles of several members,
  // refilling each slot many times; a warp a row (the default), then rows split over up to 256
  // lanes, then with every thread copying.
  for (int lanes : {32, 256}) {
    INFO("lanes " << lanes);
    StagedOn on(2, 1, 3, 0, lanes);
    for (const char* lora_up_fold : {"1", "0"}) {  // "0": the LoRA ups (K = 12..40) are a batch
      ScopedEnv fold("RWKVC_CUDA_FOLD_LORA_UP", lora_up_fold);
      check_against_cpu_in_every_mode(*cuda, odd_rwkv7(11), passes::preset_pipeline(2), 7, kF32Tolerance);
      check_against_cpu_in_every_mode(*cuda, odd_rwkv7(13), f16, 7, kF16Tolerance);
      check_against_cpu_in_every_mode(*cuda, odd_rwkv7(17), passes::preset_pipeline(2) + ",lower-precision=bf16", 7,
                                      kBf16Tolerance);
    }
    // -O0: every matmul its own batch of one, no folded epilogues.
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(19), passes::preset_pipeline(0), 5, kF32Tolerance);
    // RWKV-4: f32 rows of 100 are staged; f16 rows of 100 are not whole vectors: member by member.
    check_against_cpu_in_every_mode(*cuda, odd_rwkv4(), passes::preset_pipeline(2), 7, kF32Tolerance);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv4(), passes::preset_pipeline(2) + ",lower-precision=f16", 7,
                                    kF16Tolerance);
  }
  for (int lanes : {32, 256}) {
    INFO("lanes " << lanes << ", every thread copies");
    StagedOn threads(3, 1, 2, 0, lanes, "threads");
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(21), passes::preset_pipeline(2), 7, kF32Tolerance);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(22), f16, 7, kF16Tolerance);
  }
  {
    // Three slots, a block an SM walking the ring; then the default (a block per four tiles).
    StagedOn walking(3, 2, 0, 1);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(23), f16, 7, kF16Tolerance);
  }
  {
    StagedOn plain;
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(29), f16, 7, kF16Tolerance);
    // The layer-norm fold on: its batches keep their kernel, the rest are staged.
    ScopedEnv fold("RWKVC_CUDA_FOLD_LN", "1");
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(31), f16, 7, kF16Tolerance);
  }
}

TEST_CASE("CUDA matches the CPU on the tiny models with the staged GEMV batches", "[cuda][matrix][gemv_staged]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  StagedOn on;
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (const char* pipeline : {"", "lower-precision=f16"})
      for (int level : {0, 2}) {
        std::string preset = passes::preset_pipeline(level);
        std::string both = preset.empty() || !*pipeline ? preset + pipeline : preset + "," + pipeline;
        check_against_cpu_in_every_mode(*cuda, load_model(fixture_path(file)), both, 13,
                                        *pipeline ? kF16Tolerance : kF32Tolerance);
      }
}

TEST_CASE("CUDA decodes the same logits with the staged GEMV batches as without", "[cuda][kernels][gemv_staged]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model = odd_rwkv7(37);
  Graph graph = passes::run_pipeline(build_graph(model.config),
                                     passes::parse_pipeline(passes::preset_pipeline(2) + ",lower-precision=f16"));
  auto tokens = random_tokens(6, model.config.vocab, 41);
  auto plain = cuda->compile(graph, model.weights);
  std::optional<StagedOn> on(std::in_place, 2, 1, 5);
  auto staged = cuda->compile(graph, model.weights);
  on.reset();
  State plain_state = plain->new_state(), staged_state = staged->new_state();
  HostTensor plain_logits = feed(*plain, tokens, plain_state, FeedMode::rnn(), true);
  HostTensor staged_logits = feed(*staged, tokens, staged_state, FeedMode::rnn(), true);
  // The same products in f32, summed in another order.
  CHECK(compare(staged_logits.f32(), plain_logits.f32()).relative <= 1e-5);
  CHECK(compare_states(staged_state.to_host(), plain_state.to_host()).relative <= 1e-5);
}

}  // namespace rwkvc::test
