// The correctness matrix: both tiny models, -O0 and -O2, GPT, RNN and chunk:3 feeding; every
// position's logits and every state slot against the CPU reference running the same graph.
// f32 throughout: the differences are summation order (warp reductions, cuBLAS) and the
// device's exp/tanh, far below 1e-4 relative to the reference's largest magnitude.
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "cuda_test_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

void check_against_cpu(Backend& cuda, Model model, const std::string& pipeline, std::size_t length) {
  check_against_cpu_in_every_mode(cuda, std::move(model), pipeline, length, kF32Tolerance);
}

}  // namespace

TEST_CASE("CUDA matches the CPU on RWKV-7 tiny at -O0 and -O2 in every feeding mode", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (int level : {0, 2})
    check_against_cpu(*cuda, load_model(fixture_path("rwkv7-tiny.safetensors")), passes::preset_pipeline(level), 13);
}

TEST_CASE("CUDA matches the CPU on RWKV-4 tiny at -O0 and -O2 in every feeding mode", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (int level : {0, 2})
    check_against_cpu(*cuda, load_model(fixture_path("rwkv4-tiny.safetensors")), passes::preset_pipeline(level), 13);
}

TEST_CASE("CUDA matches the CPU on a prompt longer than a WKV chunk and the GEMV row limit", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  check_against_cpu(*cuda, load_model(fixture_path("rwkv7-tiny.safetensors")), passes::preset_pipeline(2), 70);
  check_against_cpu(*cuda, load_model(fixture_path("rwkv4-tiny.safetensors")), passes::preset_pipeline(2), 70);
}

TEST_CASE("CUDA matches the CPU on RWKV-7 with head size 64", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model;
  model.path = "random head-size-64 model";
  model.config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  model.config.embd = 128;
  model.config.head_size = 64;
  model.weights = make_random_model(model.config, 7);
  check_against_cpu(*cuda, std::move(model), passes::preset_pipeline(2), 21);
}

}  // namespace rwkvc::test
