// The fused kernels of the decode fast path, each against the CPU reference on random non-zero
// inputs of sizes that are not powers of two: the block-per-row layer norm + token shift mix
// (narrower and wider than a block), the GEMV on long rows (its pipelined loop and four-load
// tail), the batched one-row GEMVs (LoRA downs with folded tanh/sigmoid, LoRA ups of
// different K), and
// the WKV7 blocks of a few state rows (prompts of 16 tokens and more). Lengths 1 (RNN),
// 3 (chunk:3) and 45 (GPT) go through each.
#include <random>

#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "cuda_test_support.h"
#include "frontend/random_model.h"
#include "ir/builder.h"

namespace rwkvc::test {

namespace {

constexpr std::int64_t kOddWidth = 67;  // not a multiple of a warp, a vector or a block
constexpr std::int64_t kVocab = 19;

HostTensor random_tensor(Shape shape, std::mt19937& rng, float low, float high) {
  std::uniform_real_distribution<float> uniform(low, high);
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (float& v : values) v = uniform(rng);
  return HostTensor::from_f32(std::move(shape), std::move(values));
}

// embedding -> layer_norm -> token shift -> two mixes (+ the last row into the state), as the
// RWKV blocks start; fuse-token-shift makes it one region that starts with the layer norm.
Graph layer_norm_shift_graph(WeightMap& weights, std::int64_t width = kOddWidth) {
  GraphBuilder b("ln_shift");
  std::mt19937 rng(17);
  auto weight = [&](const std::string& key, Shape shape, float low, float high) {
    weights.emplace(key, random_tensor(shape, rng, low, high));
    return b.weight(key, {DType::f32, shape});
  };
  ValueId emb = weight("emb", Shape{kVocab, width}, -2.0f, 3.0f);
  ValueId x = b.op1(OpKind::embedding, {emb, b.tokens()});
  ValueId ln = b.layer_norm(x, weight("ln.weight", Shape{width}, 0.5f, 1.5f),
                            weight("ln.bias", Shape{width}, -0.3f, 0.3f), 1e-5);
  ValueId shift = b.state("att.shift", {DType::f32, Shape{width}});
  b.state_out("att.shift", b.op1(OpKind::last_row, {ln}));
  ValueId shifted = b.op1(OpKind::token_shift, {ln, shift});
  ValueId xr = b.lerp(ln, shifted, weight("x_r", Shape{width}, 0.1f, 0.9f));
  ValueId xk = b.lerp(ln, shifted, weight("x_k", Shape{width}, 0.1f, 0.9f));
  b.set_logits(b.mul(xr, xk));
  return b.finish();
}

// embedding -> one matmul by a weight [N, K]: rows long enough for the GEMV's pipelined loop,
// and its four-load tail (K = 4104: 513 f16 vectors a row).
Graph long_row_gemv_graph(WeightMap& weights, std::int64_t K, std::int64_t N) {
  GraphBuilder b("long_rows");
  std::mt19937 rng(23);
  auto weight = [&](const std::string& key, Shape shape, float low, float high) {
    weights.emplace(key, random_tensor(shape, rng, low, high));
    return b.weight(key, {DType::f32, shape});
  };
  ValueId x = b.op1(OpKind::embedding, {weight("emb", Shape{kVocab, K}, -1.0f, 1.0f), b.tokens()});
  b.set_logits(b.linear(x, weight("w", Shape{N, K}, -0.5f, 0.5f)));
  return b.finish();
}

// A random RWKV-7 of three heads of 32 with LoRA ranks that differ (and one that f16 vectors
// do not divide, so that batch runs its members one by one).
Model odd_rwkv7() {
  Model model;
  model.path = "random RWKV-7 C96 with odd LoRA ranks";
  model.config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  model.config.embd = 96;
  model.config.head_size = 32;
  model.config.ffn = 196;
  model.config.decay_lora = 24;
  model.config.aaa_lora = 40;
  model.config.mv_lora = 12;
  model.config.gate_lora = 36;
  model.weights = make_random_model(model.config, 11);
  return model;
}

std::size_t kernels_named(cuda::Program& program, const std::string& prefix) {
  std::size_t count = 0;
  for (const cuda::KernelHandle& handle : program.module.handles()) count += handle.name.rfind(prefix, 0) == 0;
  return count;
}

}  // namespace

TEST_CASE("A layer norm feeding a token shift mix is one block-per-row kernel", "[cuda][codegen]") {
  WeightMap weights;
  Graph graph = passes::run_pipeline(layer_norm_shift_graph(weights), passes::parse_pipeline("fuse-token-shift"));
  cuda::Program program = cuda::build_program(precompute_token_free(graph, weights).graph);
  CHECK(kernels_named(program, "fused_rows_") == 1);
  // Rows d0, d0 - 1 and T - 1 are asked for; a one-token call reduces its only row once.
  CHECK_THAT(program.module.text(), Catch::Contains("block_sum(sum, row_scratch)") && Catch::Contains("if (row == "));
  // embedding, the region (short prompts; long ones split it), the state write-back, the product.
  CHECK(program.steps.size() == 4);
}

TEST_CASE("Decode's GEMVs share launches and each wkv region is one kernel", "[cuda][codegen]") {
  Model model = odd_rwkv7();
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  cuda::Program program = cuda::build_program(precompute_token_free(graph, model.weights).graph);
  // r/k/v with the decay LoRA down; the ups with the next downs: at least two batch kernels.
  CHECK(kernels_named(program, "gemv_group_") >= 2);
  std::size_t matmuls = 0;
  for (const Op& op : graph.ops)
    matmuls += op.kind == OpKind::matmul || (op.kind == OpKind::region && op.region->kind == "matmul_epilogue");
  // Eleven matmuls a layer (one fewer in layer 0) and the head: batched, far fewer steps.
  CHECK(program.steps.size() < matmuls);
  // Each layer's wkv region has a one-token kernel (layer 0's lacks the value residual).
  CHECK(kernels_named(program, "wkv7_token_") == 2);
}

TEST_CASE("CUDA's layer norm + token shift kernel matches the CPU at an odd width", "[cuda][kernels]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  // 67: not a multiple of a warp; 601: a block of 320 threads, about two columns a thread.
  for (std::int64_t width : {kOddWidth, std::int64_t{601}}) {
    WeightMap weights;
    Graph graph = passes::run_pipeline(layer_norm_shift_graph(weights, width), passes::parse_pipeline("fuse-token-shift"));
    auto cpu = make_backend("cpu")->compile(graph, weights);
    auto gpu = cuda->compile(graph, weights);
    for (std::size_t length : {1, 3, 45}) {
      auto tokens = random_tokens(length, kVocab, 5 + static_cast<unsigned>(length));
      State reference_state = cpu->new_state();
      HostTensor reference = feed(*cpu, tokens, reference_state, FeedMode::gpt(), true);
      for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
        INFO("width " << width << ", " << length << " tokens, mode " << mode.name());
        check_mode_against(*gpu, tokens, mode, reference, reference_state.to_host(), kF32Tolerance);
      }
    }
  }
}

TEST_CASE("CUDA's GEMV matches the CPU on long f32 and f16 rows", "[cuda][kernels]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (const char* pipeline : {"", "lower-precision=f16"}) {
    WeightMap weights;
    Graph graph = passes::run_pipeline(long_row_gemv_graph(weights, 4104, 37), passes::parse_pipeline(pipeline));
    auto cpu = make_backend("cpu")->compile(graph, weights);
    auto gpu = cuda->compile(graph, weights);
    auto tokens = random_tokens(5, kVocab, 31);
    State reference_state = cpu->new_state();
    HostTensor reference = feed(*cpu, tokens, reference_state, FeedMode::gpt(), true);
    for (FeedMode mode : {FeedMode::rnn(), FeedMode::chunked(3)}) {
      INFO("'" << pipeline << "', mode " << mode.name());
      check_mode_against(*gpu, tokens, mode, reference, reference_state.to_host(), kF32Tolerance);
    }
  }
}

TEST_CASE("CUDA's batched GEMVs and WKV7 row blocks match the CPU on odd LoRA ranks", "[cuda][kernels]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  // 45 tokens in GPT mode take the WKV7 blocks and cuBLAS; RNN and chunk:3 the batched GEMVs.
  check_against_cpu_in_every_mode(*cuda, odd_rwkv7(), passes::preset_pipeline(2), 45, kF32Tolerance);
  check_against_cpu_in_every_mode(*cuda, odd_rwkv7(), passes::preset_pipeline(0), 17, kF32Tolerance);
  // f16 matrices (f16 vectors: 8 a load; the rank-12 LoRA goes one by one): the GEMV modes
  // keep f32 activations, cuBLAS rounds them (8 u per layer, 3 layers with the head).
  check_against_cpu_in_every_mode(*cuda, odd_rwkv7(), passes::preset_pipeline(2) + ",lower-precision=f16", 45,
                                  8.0 * 4.9e-4 * 3.0);
}

}  // namespace rwkvc::test
