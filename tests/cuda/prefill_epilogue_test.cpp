// Epilogues inside the cuBLAS call in long calls (backends/cuda/prefill_epilogues.h,
// on by default, RWKVC_CUDA_GEMM_EPILOGUES=0 off): which matmul_epilogue regions take the residual form
// `y = x + a W^T`, that the program gives each of them a long-call step, and on a device that
// the switch changes neither the results (against the switch off and against the CPU) nor
// anything but the launches it saves.
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/prefill_epilogues.h"
#include "backends/feed_mode.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

namespace {

std::string pipeline_of(int level, const std::string& dtype) {
  std::string pipeline = passes::preset_pipeline(level);
  if (dtype == "f32") return pipeline;
  return pipeline + (pipeline.empty() ? "" : ",") + "lower-precision=" + dtype;
}

Graph lowered_graph(const Model& model, const std::string& pipeline) {
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  return precompute_token_free(graph, model.weights).graph;
}

std::vector<bool> weights_of(const Graph& graph) {
  std::vector<bool> is_weight(graph.values.size(), false);
  for (const WeightDecl& decl : graph.weights) is_weight[static_cast<std::size_t>(decl.value)] = true;
  return is_weight;
}

// The names of the values computed by regions of the residual form.
std::set<std::string> residual_regions(const Graph& graph) {
  std::vector<bool> is_weight = weights_of(graph);
  std::set<std::string> names;
  for (const Op& op : graph.ops)
    if (cuda::match_residual_epilogue(op, is_weight)) names.insert(graph.values[static_cast<std::size_t>(op.results[0])].name);
  return names;
}

// The long-call residual steps a program has: each asks for its cuBLASLt workspace once.
std::size_t residual_steps(const cuda::Program& program) {
  auto workspace = program.reserved.find(cuda::kLtWorkspaceName);
  return workspace == program.reserved.end() ? 0 : program.scratch[workspace->second].size();
}

}  // namespace

TEST_CASE("The residual adds after the output and FFN value projections take the residual form",
          "[cuda][codegen][prefill]") {
  configure_cuda_for_tests();
  for (const char* dtype : {"f32", "f16", "bf16"}) {
    INFO(dtype);
    // RWKV-7: both residual adds of every layer; not the LoRA tanh/sigmoid nor relu^2.
    Model rwkv7 = load_model(fixture_path("rwkv7-tiny.safetensors"));
    CHECK(residual_regions(lowered_graph(rwkv7, pipeline_of(2, dtype))) ==
          std::set<std::string>{"blocks.0.x.att", "blocks.0.x.ffn", "blocks.1.x.att", "blocks.1.x.ffn"});
    // RWKV-4: the FFN's product is gated by sigmoid(r) before the add: only the attention's.
    Model rwkv4 = load_model(fixture_path("rwkv4-tiny.safetensors"));
    CHECK(residual_regions(lowered_graph(rwkv4, pipeline_of(2, dtype))) ==
          std::set<std::string>{"blocks.0.x.att", "blocks.1.x.att"});
    // -O0 makes no regions.
    CHECK(residual_regions(lowered_graph(rwkv7, pipeline_of(0, dtype))).empty());
  }
}

TEST_CASE("The switch gives each residual region a long-call step, off by default", "[cuda][codegen][prefill]") {
  configure_cuda_for_tests();
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (const char* dtype : {"f32", "f16", "bf16"}) {
      INFO(file << " " << dtype);
      Model model = load_model(fixture_path(file));
      Graph graph = lowered_graph(model, pipeline_of(2, dtype));
      std::size_t regions = residual_regions(graph).size();
      REQUIRE(regions > 0);

      std::optional<ScopedEnv> off_switch(std::in_place, "RWKVC_CUDA_GEMM_EPILOGUES", "0");
      cuda::Program off = cuda::build_program(graph);
      CHECK(residual_steps(off) == 0);
      std::size_t staged_off = off.staged.size();
      off_switch.reset();
      for (const char* on_value : {static_cast<const char*>(nullptr), "1"}) {
        INFO("RWKVC_CUDA_GEMM_EPILOGUES " << (on_value ? on_value : "unset (the default)"));
        ScopedEnv on("RWKVC_CUDA_GEMM_EPILOGUES", on_value);
        cuda::Program program = cuda::build_program(graph);
        CHECK(residual_steps(program) == regions);
        // A single step each, as before: the long-call form is chosen inside it by the call's length.
        CHECK(program.steps.size() == off.steps.size());
        // The residual GEMMs read what the output and FFN value matmuls read: in 16 bits already.
        CHECK(program.staged.size() == staged_off);
      }
    }
}

TEST_CASE("With f32 activations the residual GEMM converts its input as the matmul did", "[cuda][codegen][prefill]") {
  configure_cuda_for_tests();
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  ScopedEnv f32_activations("RWKVC_CUDA_HALF_ACTIVATIONS", "0");
  Graph graph = lowered_graph(model, pipeline_of(2, "f16"));
  std::optional<ScopedEnv> off_switch(std::in_place, "RWKVC_CUDA_GEMM_EPILOGUES", "0");
  cuda::Program off = cuda::build_program(graph);
  off_switch.reset();
  ScopedEnv on("RWKVC_CUDA_GEMM_EPILOGUES", "1");
  cuda::Program program = cuda::build_program(graph);
  CHECK(residual_steps(program) == 4);
  // Each residual step stages its f32 input in 16 bits (the shapes that the staging buffer is sized by).
  CHECK(program.staged.size() == off.staged.size() + 4);
}

TEST_CASE("Long calls with GEMM epilogues match those without and the CPU", "[cuda][prefill]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (int level : {0, 2})
      for (const char* dtype : {"f32", "f16", "bf16"}) {
        std::string pipeline = pipeline_of(level, dtype);
        Model model = load_model(fixture_path(file));
        double layers = static_cast<double>(model.config.layers);
        INFO(file << " '" << pipeline << "'");
        Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
        std::size_t regions = residual_regions(lowered_graph(model, pipeline)).size();
        auto cpu = make_backend("cpu")->compile(graph, model.weights);
        std::unique_ptr<Executable> off, on;
        {
          ScopedEnv epilogues("RWKVC_CUDA_GEMM_EPILOGUES", "0");
          off = cuda->compile(graph, model.weights);
        }
        {
          ScopedEnv epilogues("RWKVC_CUDA_GEMM_EPILOGUES", "1");
          on = cuda->compile(graph, model.weights);
        }
        auto tokens = random_tokens(45, model.config.vocab, 29);
        State reference_state = cpu->new_state();
        HostTensor reference = feed(*cpu, tokens, reference_state, FeedMode::gpt(), true);
        HostState reference_host = reference_state.to_host();

        // The switch against itself off: one long call, fresh states.
        ForwardOptions all;
        all.all_logits = true;
        State a = on->new_state(), b = off->new_state();
        HostTensor x = on->forward(tokens, a, all);
        std::int64_t launches_on = on->stats().kernels_per_forward;
        HostTensor y = off->forward(tokens, b, all);
        std::int64_t launches_off = off->stats().kernels_per_forward;
        // Only cuBLAS's choice of kernel may differ (another f32 summation order), and with 16-bit
        // activations a value next to a rounding boundary may round the other way.
        double same = std::string(dtype) == "f32" ? 2e-5 : 1e-3;
        Error e = compare(x.f32(), y.f32());
        Error s = compare_states(a.to_host(), b.to_host());
        WARN("GEMM epilogues against none: logits " << e.relative << ", state " << s.relative);
        CHECK(e.relative <= same);
        CHECK(s.relative <= same);
        // Each residual region saves its tail kernel (its GEMM stays one call).
        CHECK(launches_off - launches_on == static_cast<std::int64_t>(regions));

        // Against the CPU in every mode, and in chunks long enough for the residual GEMM.
        double roundoff = std::string(dtype) == "f16" ? 4.9e-4 : 3.9e-3;
        for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3), FeedMode::chunked(20)}) {
          bool cublas = mode.chunk == 0 || mode.chunk > cuda::kGemvMaxRows;
          double tolerance = std::string(dtype) == "f32" || !cublas ? kF32Tolerance : 8.0 * roundoff * (layers + 1.0);
          INFO("mode " << mode.name() << ", tolerance " << tolerance);
          check_mode_against(*on, tokens, mode, reference, reference_host, tolerance);
        }
      }
}

}  // namespace rwkvc::test
