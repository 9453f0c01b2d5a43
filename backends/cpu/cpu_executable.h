// The CPU reference's executable: what precompute leaves of the graph (everything that reads
// a token), interpreted op by op with T bound to each forward call's token count. Buffers are
// freed after their last reader, so a long sequence does not hold every [T, C] value at once.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/interpreter.h"

namespace rwkvc {

class CpuExecutable final : public Executable {
 public:
  // Binds every weight (converted to f32 once, after rounding to its declared dtype) and
  // evaluates the token-free ops once. Throws std::invalid_argument naming a missing or
  // misshapen weight, and IrError for a graph this backend cannot run. `graph` must be verified.
  CpuExecutable(const Graph& graph, const WeightMap& weights);

  const StateLayout& state_layout() const override { return *layout_; }
  State import_state(const HostState& host) const override;
  HostTensor forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) override;
  ExecutionStats stats() const override;

 private:
  void plan_releases();
  HostTensor read_logits(const cpu::Frame& frame, const ForwardOptions& options) const;
  bool is_head_step(std::size_t step) const;
  void run_on_last_row(const Op& op, cpu::Frame& frame) const;

  Graph graph_;                    // token-dependent ops only (precompute_token_free's graph)
  std::vector<TensorType> types_;  // by ValueId: graph_'s value types, as frames read them
  std::shared_ptr<const StateLayout> layout_;
  std::vector<std::vector<float>> weights_;  // by ValueId: weights' f32 data; empty for other values
  // For each op of graph_: the values it read last, freed right after it.
  std::vector<std::vector<ValueId>> releases_;
  // plan-memory's placement (by ValueId) and the buffers it names, kept from call to call.
  std::vector<std::int32_t> buffer_of_;
  std::vector<std::vector<float>> buffers_;
};

}  // namespace rwkvc
