// f16 and bf16 weights: the CPU reference runs the same lowered graph, so both round the
// weights identically and the tolerance covers only what the device does differently. Decode
// and short chunks (GEMV) keep activations in f32: summation order alone. Prompts of more than
// 8 tokens go through cuBLAS, which takes the activations rounded to the weights' type (unit
// roundoff u: 4.9e-4 for f16, 3.9e-3 for bf16); each matmul then carries a relative error of
// about u, and the errors of successive layers add up. The bound used is 8 u per layer plus
// one for the head: 1.2e-2 (f16) and 9.4e-2 (bf16) for the 2-layer tiny models; GEMV-only
// modes must stay within 1e-4 as in f32.
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

namespace {

void check_precision(Backend& cuda, const std::string& model_file, const std::string& dtype, double roundoff) {
  Model model = load_model(fixture_path(model_file));
  double layers = static_cast<double>(model.config.layers);
  CpuAndCuda both = compile_both(cuda, std::move(model), passes::preset_pipeline(2) + ",lower-precision=" + dtype);
  auto tokens = random_tokens(24, both.model.config.vocab, 5);
  State reference_state = both.cpu->new_state();
  HostTensor reference = feed(*both.cpu, tokens, reference_state, FeedMode::gpt(), true);
  HostState reference_host = reference_state.to_host();

  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    double tolerance = mode.chunk == 0 ? 8.0 * roundoff * (layers + 1.0) : 1e-4;
    INFO(model_file << " " << dtype << ", mode " << mode.name() << ", tolerance " << tolerance);
    check_mode_against(*both.cuda, tokens, mode, reference, reference_host, tolerance);
  }
}

}  // namespace

TEST_CASE("CUDA with f16 weights stays within the f16 bound of the CPU on the same graph", "[cuda][precision]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  check_precision(*cuda, "rwkv7-tiny.safetensors", "f16", 4.9e-4);
  check_precision(*cuda, "rwkv4-tiny.safetensors", "f16", 4.9e-4);
}

TEST_CASE("CUDA with bf16 weights stays within the bf16 bound of the CPU on the same graph", "[cuda][precision]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  check_precision(*cuda, "rwkv7-tiny.safetensors", "bf16", 3.9e-3);
  check_precision(*cuda, "rwkv4-tiny.safetensors", "bf16", 3.9e-3);
}

}  // namespace rwkvc::test
