// The CPU reference's interpreter: walks a verified graph's ops in order with one f32 buffer
// per value, binding T to the token count of each forward call. A kernel region runs by
// interpreting its body with the same per-op dispatch.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "backends/backend.h"

namespace rwkvc {

class CpuExecutable final : public Executable {
 public:
  // Binds every weight (converted to f32 once) and evaluates, once, every op that depends on no
  // token. Throws std::invalid_argument naming a missing or misshapen weight, and IrError for a
  // graph this backend cannot run. `graph` must already be verified.
  CpuExecutable(Graph graph, const WeightMap& weights);

  const StateLayout& state_layout() const override { return *layout_; }
  State import_state(const HostState& host) const override;
  HostTensor forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) override;

 private:
  struct Frame;  // the values of one evaluation

  void check_supported(const Op& op, std::size_t index) const;
  void run(const Op& op, Frame& frame) const;
  void plan_releases();
  HostTensor read_logits(const Frame& frame, const ForwardOptions& options) const;

  Graph graph_;
  std::vector<TensorType> types_;  // by ValueId: graph_'s value types, as frames read them
  std::shared_ptr<const StateLayout> layout_;
  // By ValueId: the data of values known before any token (weights, constants, and what is
  // computed from them alone); empty for the others.
  std::vector<std::vector<float>> known_;
  // Indices into graph_.ops of the ops each forward call runs, in order.
  std::vector<std::size_t> plan_;
  // For each step of plan_: the values it used last, freed right after it so that a long
  // sequence does not hold every intermediate [T, C] buffer at once.
  std::vector<std::vector<ValueId>> releases_;
};

}  // namespace rwkvc
