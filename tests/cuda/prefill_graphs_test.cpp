// Long calls replayed as CUDA graphs (backends/cuda/prefill_graphs.h) against the same calls
// run eagerly: the same kernels on the same values, so the results agree to the last bits
// cuBLAS may change; several states interleaved (each replay copies its state in and out),
// both logits modes (a graph of their own each), and more lengths than the cache keeps.
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "cuda_test_support.h"

namespace rwkvc::test {

TEST_CASE("Prefill graphs give the results of eager long calls", "[cuda][prefill]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (const char* file : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (std::string pipeline : {passes::preset_pipeline(2), passes::preset_pipeline(2) + ",lower-precision=f16"}) {
      INFO(file << " '" << pipeline << "'");
      Model model = load_model(fixture_path(file));
      Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
      auto graphs = cuda->compile(graph, model.weights);
      ::setenv("RWKVC_CUDA_PREFILL_GRAPHS", "0", 1);
      auto eager = cuda->compile(graph, model.weights);
      ::unsetenv("RWKVC_CUDA_PREFILL_GRAPHS");

      State a1 = graphs->new_state(), b1 = graphs->new_state(), a2 = eager->new_state(), b2 = eager->new_state();
      // Lengths repeat (first eager, then captured, then replayed); six lengths overflow the cache of four.
      const std::size_t lengths[] = {12, 12, 20, 12, 20, 12, 9, 33, 17, 50, 12, 20, 12};
      unsigned seed = 1;
      for (std::size_t i = 0; i < std::size(lengths); ++i) {
        auto tokens = random_tokens(lengths[i], model.config.vocab, seed++);
        ForwardOptions options;
        options.all_logits = i % 3 == 0;
        bool first = i % 2 == 0;
        INFO("call " << i << ", " << lengths[i] << " tokens, state " << (first ? "a" : "b"));
        HostTensor x = graphs->forward(tokens, first ? a1 : b1, options);
        HostTensor y = eager->forward(tokens, first ? a2 : b2, options);
        REQUIRE(x.shape() == y.shape());
        CHECK(compare(x.f32(), y.f32()).relative <= 1e-6);
      }
      CHECK(compare_states(a1.to_host(), a2.to_host()).relative <= 1e-6);
      CHECK(compare_states(b1.to_host(), b2.to_host()).relative <= 1e-6);
      // A replay counts the launches it replaces.
      CHECK(graphs->stats().kernels_per_forward == eager->stats().kernels_per_forward);
    }
}

}  // namespace rwkvc::test
