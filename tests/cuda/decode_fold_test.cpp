// Decode's folded kernels (backends/cuda/decode_ln_fold.h, decode_lora_fold.h): the layer norm +
// token shift mix computed by the GEMV batch that reads it, and the LoRA ups computed by the
// one-token wkv kernel. The code generation is checked here without a device; on a device,
// one-token calls (RNN and chunk:3 modes end on them) against the CPU on odd sizes: head sizes
// 32 and 64, LoRA ranks no vector divides, f32/f16/bf16 weights, and RWKV-4, whose f16 rows of
// 100 are not whole vectors, so that its batches fall back to the region's own kernel.
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

// A random RWKV-7 of `heads` heads of `head_size` with LoRA ranks that differ and that f16
// vectors (8) do not all divide, and an FFN width that is odd.
Model odd_rwkv7(std::int64_t heads, std::int64_t head_size, std::uint64_t seed) {
  Model model;
  model.config = standard_config(Arch::rwkv7, 2, heads * head_size, 37, head_size);
  model.config.ffn = 333;
  model.config.decay_lora = 24;
  model.config.aaa_lora = 40;
  model.config.mv_lora = 12;
  model.config.gate_lora = 36;
  model.path = "random RWKV-7 of " + std::to_string(heads) + " heads of " + std::to_string(head_size);
  model.weights = make_random_model(model.config, seed);
  return model;
}

Model odd_rwkv4() {
  Model model;
  model.config = standard_config(Arch::rwkv4, 2, 100, 37);
  model.config.ffn = 210;
  model.path = "random RWKV-4 C100";
  model.weights = make_random_model(model.config, 5);
  return model;
}

cuda::Program program_of(const Model& model, const std::string& pipeline, Graph& graph) {
  graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  graph = precompute_token_free(graph, model.weights).graph;
  return cuda::build_program(graph);
}

// Both folds on (the layer-norm fold is off by default: slower so far), for one test.
struct FoldsOn {
  FoldsOn() {
    ::setenv("RWKVC_CUDA_FOLD_LN", "1", 1);
    ::unsetenv("RWKVC_CUDA_FOLD_LORA_UP");
  }
  ~FoldsOn() { ::unsetenv("RWKVC_CUDA_FOLD_LN"); }
};

// Both folds off, until the end of the scope.
struct FoldsOff {
  FoldsOff() {
    ::setenv("RWKVC_CUDA_FOLD_LN", "0", 1);
    ::setenv("RWKVC_CUDA_FOLD_LORA_UP", "0", 1);
  }
  ~FoldsOff() {
    ::unsetenv("RWKVC_CUDA_FOLD_LN");
    ::unsetenv("RWKVC_CUDA_FOLD_LORA_UP");
  }
};

}  // namespace

TEST_CASE("Decode folds each layer norm + mix into its GEMV batch and the LoRA ups into the wkv kernel",
          "[cuda][codegen]") {
  configure_cuda_for_tests();
  std::optional<FoldsOn> on(std::in_place);
  Model model = odd_rwkv7(3, 64, 7);
  Graph graph;
  cuda::Program program = program_of(model, passes::preset_pipeline(2) + ",lower-precision=f16", graph);
  std::string source = program.module.text();
  // Layer 0's and layer 1's attention batches (layer 1 adds the value LoRA) and the shared FFN key.
  CHECK(count_of(source, "extern __shared__ __align__(16) float gemv_x[];") == 3);
  // Block 0 of each stores the region's yields for later readers (the new shift state).
  CHECK(count_of(source, "if (blockIdx.x == 0)") == 3);
  CHECK_THAT(source, Catch::Contains("lora_up_quad<f16>") && Catch::Contains("prefetch_l2_block(s_in"));

  // The folded ops' operands stay live until the step that now reads them runs.
  std::size_t ups = 0, regions = 0;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& op = graph.ops[i];
    if (op.kind == OpKind::region && op.region->kind == "token_shift_mix") {
      ++regions;
      CHECK(program.runs_at[i] > i);
    }
    if (op.kind == OpKind::matmul && graph.ref(op.results[0]).find("lora.up") != std::string::npos) {
      ++ups;
      CHECK(graph.ops[program.runs_at[i]].kind == OpKind::region);
      CHECK(graph.ops[program.runs_at[i]].region->kind == "wkv");
    }
  }
  CHECK(regions == 4);
  CHECK(ups == 5);  // w and a in both layers, v in layer 1 (the gate's up has its own name)
  CHECK(!cuda::compile_cubin(source, "sm_90").empty());

  // Switched off: the same program as before the folds.
  on.reset();
  FoldsOff off;
  Graph unfolded_graph;
  std::string unfolded = program_of(model, passes::preset_pipeline(2) + ",lower-precision=f16", unfolded_graph).module.text();
  CHECK_THAT(unfolded, !Catch::Contains("gemv_x") && !Catch::Contains("lora_up_quad<"));
  CHECK(!cuda::compile_cubin(unfolded, "sm_90").empty());
}

TEST_CASE("RWKV-4's layer norm + mixes fold into its GEMV batches", "[cuda][codegen]") {
  configure_cuda_for_tests();
  FoldsOn on;
  Graph graph;
  cuda::Program program = program_of(odd_rwkv4(), passes::preset_pipeline(2), graph);
  std::string source = program.module.text();
  // The attention's r/k/v batch and the channel mix's key + receptance batch: the same in both layers.
  CHECK(count_of(source, "extern __shared__ __align__(16) float gemv_x[];") == 2);
  CHECK(!cuda::compile_cubin(source, "sm_90").empty());
}

TEST_CASE("CUDA's folded decode kernels match the CPU at head sizes 32 and 64 and odd LoRA ranks", "[cuda][kernels]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  FoldsOn on;
  // f16/bf16: the GEMVs keep f32 activations, so the errors are the weights' own rounding on
  // both sides plus accumulation order; cuBLAS (the GPT mode) rounds activations too: 8 unit
  // roundoffs a layer, three layers counting the head.
  for (auto [heads, head_size] : {std::pair<std::int64_t, std::int64_t>{5, 32}, {3, 64}}) {
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(heads, head_size, 13), passes::preset_pipeline(2), 7, kF32Tolerance);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(heads, head_size, 17),
                                    passes::preset_pipeline(2) + ",lower-precision=f16", 7, 8.0 * 4.9e-4 * 3.0);
    check_against_cpu_in_every_mode(*cuda, odd_rwkv7(heads, head_size, 19),
                                    passes::preset_pipeline(2) + ",lower-precision=bf16", 7, 8.0 * 3.9e-3 * 3.0);
  }
  // RWKV-4: f32 rows of 100 fold; f16 rows of 100 are not whole 8-wide vectors, so the batch
  // runs member by member and the region's own kernel computes the mixes first.
  check_against_cpu_in_every_mode(*cuda, odd_rwkv4(), passes::preset_pipeline(2), 7, kF32Tolerance);
  check_against_cpu_in_every_mode(*cuda, odd_rwkv4(), passes::preset_pipeline(2) + ",lower-precision=f16", 7,
                                  8.0 * 4.9e-4 * 3.0);
}

TEST_CASE("CUDA decodes the same logits with the decode folds off", "[cuda][kernels]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model = odd_rwkv7(3, 64, 23);
  std::string pipeline = passes::preset_pipeline(2) + ",lower-precision=f16";
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  auto tokens = random_tokens(6, model.config.vocab, 29);
  std::optional<FoldsOn> on(std::in_place);
  auto folded = cuda->compile(graph, model.weights);
  State folded_state = folded->new_state();
  HostTensor folded_logits = feed(*folded, tokens, folded_state, FeedMode::rnn(), true);
  on.reset();
  FoldsOff off;
  auto plain = cuda->compile(graph, model.weights);
  State plain_state = plain->new_state();
  HostTensor plain_logits = feed(*plain, tokens, plain_state, FeedMode::rnn(), true);
  // Only the summation order of the layer-norm statistics and the LoRA ups differs.
  CHECK(compare(folded_logits.f32(), plain_logits.f32()).relative <= 1e-5);
  CHECK(compare_states(folded_state.to_host(), plain_state.to_host()).relative <= 1e-5);
}

}  // namespace rwkvc::test
