#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "backends/cpu/cpu_executable.h"
#include "backends/cpu/cpu_state.h"
#include "ir/error.h"
#include "ir/verifier.h"

namespace rwkvc {

namespace {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return kCpuBackendName; }
  std::string device_name() const override {
    return fmt::format("cpu: {} hardware threads, f32", std::max(1u, std::thread::hardware_concurrency()));
  }

  std::unique_ptr<Executable> compile(const Graph& graph, const WeightMap& weights) const override {
    verify(graph);
    if (graph.tokens == kNoValue || graph.type(graph.tokens) != TensorType{DType::i32, Shape{kSeq}})
      throw IrError(fmt::format("graph '{}' has no tokens input i32[T]: the CPU backend feeds every forward call's "
                                "tokens there", graph.name));
    if (graph.logits == kNoValue)
      throw IrError(fmt::format("graph '{}' has no logits: forward would have nothing to return", graph.name));
    return std::make_unique<CpuExecutable>(graph, weights);
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace rwkvc
