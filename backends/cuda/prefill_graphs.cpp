#include "backends/cuda/prefill_graphs.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_matmul.h"

namespace rwkvc::cuda {

PrefillGraphs::PrefillGraphs() {
  const char* value = std::getenv("RWKVC_CUDA_PREFILL_GRAPHS");
  enabled_ = value == nullptr || std::string(value) != "0";
}

PrefillGraphs::~PrefillGraphs() { clear(); }

void PrefillGraphs::clear() {
  for (Entry& entry : entries_) cudaGraphExecDestroy(entry.exec);
  entries_.clear();
  seen_.clear();
}

bool PrefillGraphs::run(RunContext& ctx, CudaStateStorage& state, const StateLayout& layout, std::int64_t generation,
                        cudaStream_t stream, const BindSlots& bind, const RunSteps& steps) {
  if (!enabled_ || ctx.T <= kGemvMaxRows || ctx.timings != nullptr) return false;
  if (generation != generation_) {
    clear();
    generation_ = generation;
  }
  auto same = [&](const auto& item) { return item.tokens == ctx.T && item.last_logits_only == ctx.last_logits_only; };
  auto entry = std::find_if(entries_.begin(), entries_.end(), same);
  if (entry == entries_.end()) {
    auto seen = std::find_if(seen_.begin(), seen_.end(), same);
    if (seen == seen_.end()) {
      if (seen_.size() == kRemembered) seen_.erase(seen_.begin());
      seen_.push_back({ctx.T, ctx.last_logits_only, 1});
      return false;  // a length seen once runs eagerly
    }
    if (seen->calls < 0) return false;
    if (!mirror_) mirror_ = std::make_unique<CudaStateStorage>(state.device(), layout, HostState::fresh(layout));

    bind(*mirror_, ctx);
    ctx.launches = 0;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    bool captured = false;
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      try {
        steps(ctx);
      } catch (...) {
        // A step that cannot be captured: end the capture, and this length runs eagerly.
      }
      captured = cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr &&
                 cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
      if (graph != nullptr) cudaGraphDestroy(graph);
    }
    if (!captured) {
      (void)cudaGetLastError();
      seen->calls = -1;
      bind(state, ctx);
      ctx.launches = 0;
      return false;
    }
    if (entries_.size() == kKept) {
      cudaGraphExecDestroy(entries_.front().exec);
      entries_.erase(entries_.begin());
    }
    entries_.push_back({ctx.T, ctx.last_logits_only, exec, ctx.launches});
    entry = entries_.end() - 1;
  }

  std::size_t bytes = state.floats() * sizeof(float);
  if (bytes > 0)
    check(cudaMemcpyAsync(mirror_->slot(0), state.slot(0), bytes, cudaMemcpyDeviceToDevice, stream), "state to mirror");
  check(cudaGraphLaunch(entry->exec, stream), "cudaGraphLaunch (prefill)");
  if (bytes > 0)
    check(cudaMemcpyAsync(state.slot(0), mirror_->slot(0), bytes, cudaMemcpyDeviceToDevice, stream), "state from mirror");
  ctx.launches = entry->launches;
  return true;
}

}  // namespace rwkvc::cuda
