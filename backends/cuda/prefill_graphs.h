// Long calls (more than kGemvMaxRows tokens) replayed as CUDA graphs: a call length seen a
// second time (since the buffers last moved) is captured and replayed from then on, so a
// prompt fed in chunks of one size pays one launch per chunk instead of ~45 a layer. The steps
// bake their pointers in, so a captured call runs on a state of its own (the mirror): the
// caller's state is copied in before the replay and back after it (two device copies), and
// any state can use the graph. A few lengths are kept (the oldest go first).
// RWKVC_CUDA_PREFILL_GRAPHS=0 (read when the executable is made) turns this off.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <cuda_runtime_api.h>

#include "backends/cuda/cuda_program.h"
#include "backends/cuda/cuda_state.h"

namespace rwkvc::cuda {

class PrefillGraphs {
 public:
  PrefillGraphs();
  ~PrefillGraphs();
  PrefillGraphs(const PrefillGraphs&) = delete;
  PrefillGraphs& operator=(const PrefillGraphs&) = delete;

  using BindSlots = std::function<void(CudaStateStorage&, RunContext&)>;
  using RunSteps = std::function<void(RunContext&)>;

  // Runs the call on `stream` as a graph and returns true, or returns false (the caller runs
  // the steps itself, with ctx bound to `state` as it was given): a short call, profiling, a
  // length seen for the first time, or a capture that failed. `generation` changes whenever the
  // buffers move (their graphs are then dropped).
  bool run(RunContext& ctx, CudaStateStorage& state, const StateLayout& layout, std::int64_t generation,
           cudaStream_t stream, const BindSlots& bind, const RunSteps& steps);

  void clear();

 private:
  struct Entry {
    std::int64_t tokens = 0;
    bool last_logits_only = false;
    cudaGraphExec_t exec = nullptr;
    std::int64_t launches = 0;
  };
  struct Seen {
    std::int64_t tokens = 0;
    bool last_logits_only = false;
    int calls = 0;  // -1: capture failed, always eager
  };
  static constexpr std::size_t kKept = 4;          // graphs
  static constexpr std::size_t kRemembered = 64;   // lengths seen (the oldest forgotten first)

  bool enabled_ = true;
  std::int64_t generation_ = -1;
  std::vector<Entry> entries_;  // oldest first
  std::vector<Seen> seen_;
  std::unique_ptr<CudaStateStorage> mirror_;
};

}  // namespace rwkvc::cuda
