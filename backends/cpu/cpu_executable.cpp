#include "backends/cpu/cpu_executable.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cpu/cpu_state.h"
#include "backends/cpu/interpreter.h"
#include "backends/cpu/precompute.h"

namespace rwkvc {

CpuExecutable::CpuExecutable(const Graph& graph, const WeightMap& weights) {
  Precomputed precomputed = precompute_token_free(graph, weights);
  graph_ = std::move(precomputed.graph);
  layout_ = std::make_shared<StateLayout>(rwkvc::state_layout(graph_));
  for (const Value& value : graph_.values) {
    types_.push_back(value.type);
    buffer_of_.push_back(value.buffer);
    if (value.buffer != kNoBuffer) buffers_.resize(std::max(buffers_.size(), static_cast<std::size_t>(value.buffer) + 1));
  }
  weights_.resize(graph_.values.size());
  for (const WeightDecl& decl : graph_.weights)
    weights_[static_cast<std::size_t>(decl.value)] = weight_as_declared(graph_, decl, precomputed.weights).to_f32();
  for (const Op& op : graph_.ops)
    if (op.kind == OpKind::embedding) {
      Dim rows = graph_.type(op.operands[0]).shape[0];
      vocab_size_ = vocab_size_ == 0 ? rows : std::min(vocab_size_, rows);
    }
  plan_releases();
}

void CpuExecutable::plan_releases() {
  // The last plan step that reads each value produced by the plan; results nobody reads die
  // where they are made. Logits and new states must outlive the plan.
  constexpr std::size_t kKeep = static_cast<std::size_t>(-1);
  std::vector<std::size_t> last_use(graph_.values.size(), kKeep);
  for (std::size_t step = 0; step < graph_.ops.size(); ++step) {
    const Op& op = graph_.ops[step];
    for (ValueId id : op.results) last_use[static_cast<std::size_t>(id)] = step;
    for (ValueId id : op.operands)
      if (last_use[static_cast<std::size_t>(id)] != kKeep) last_use[static_cast<std::size_t>(id)] = step;
  }
  last_use[static_cast<std::size_t>(graph_.logits)] = kKeep;
  for (const StateDecl& decl : graph_.states) last_use[static_cast<std::size_t>(decl.output)] = kKeep;

  releases_.assign(graph_.ops.size(), {});
  for (std::size_t id = 0; id < last_use.size(); ++id)
    if (last_use[id] != kKeep) releases_[last_use[id]].push_back(static_cast<ValueId>(id));
}

State CpuExecutable::import_state(const HostState& host) const {
  host.check_matches(*layout_);
  return State(layout_, std::make_unique<CpuStateStorage>(HostState{*layout_, host.slots}));
}

HostTensor CpuExecutable::forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) {
  check_tokens(tokens);
  auto& storage = dynamic_cast<CpuStateStorage&>(state.storage_for(kCpuBackendName));
  storage.host().check_matches(*layout_);

  cpu::Frame frame(types_, static_cast<std::int64_t>(tokens.size()), tokens);
  frame.use_plan(buffer_of_, buffers_);
  for (std::size_t id = 0; id < weights_.size(); ++id) frame.values[id] = weights_[id];
  for (std::size_t slot = 0; slot < graph_.states.size(); ++slot)
    frame.values[static_cast<std::size_t>(graph_.states[slot].input)] = storage.host().slots[slot];

  // The head matmul is the largest in the model: for the last position's logits alone, only the
  // last row is worth multiplying.
  bool last_row_only = !options.all_logits && tokens.size() > 1;
  for (std::size_t step = 0; step < graph_.ops.size(); ++step) {
    if (last_row_only && is_head_step(step))
      run_on_last_row(graph_.ops[step], frame);
    else
      cpu::run_op(graph_.ops[step], frame);
    for (ValueId id : releases_[step]) frame.release(id);
  }

  // Everything that can throw happens before the state is touched.
  HostTensor logits = read_logits(frame, options);
  std::vector<std::vector<float>> next(graph_.states.size());
  for (std::size_t slot = 0; slot < graph_.states.size(); ++slot) {
    std::span<const float> value = frame.values[static_cast<std::size_t>(graph_.states[slot].output)];
    next[slot].assign(value.begin(), value.end());
  }
  for (std::size_t slot = 0; slot < next.size(); ++slot) storage.host().slots[slot] = std::move(next[slot]);
  return logits;
}

// The step that makes the logits, when it is a matmul of per-position rows: each row of its
// result depends on the same row of its input only.
bool CpuExecutable::is_head_step(std::size_t step) const {
  const Op& op = graph_.ops[step];
  if (op.kind != OpKind::matmul || op.results[0] != graph_.logits) return false;
  const Shape& rows = graph_.type(op.operands[0]).shape;
  return rows.rank() == 2 && rows[0] == kSeq;
}

// Runs the head on the input's last row; the result holds one row, which read_logits returns.
void CpuExecutable::run_on_last_row(const Op& op, cpu::Frame& frame) const {
  cpu::Frame last(types_, 1, frame.tokens.last(1));
  auto a = static_cast<std::size_t>(op.operands[0]), b = static_cast<std::size_t>(op.operands[1]);
  last.values[a] = frame.values[a].last(static_cast<std::size_t>(types_[a].shape.back()));
  last.values[b] = frame.values[b];
  cpu::run_op(op, last);
  auto out = static_cast<std::size_t>(op.results[0]);
  frame.owned[out] = std::move(last.owned[out]);
  frame.values[out] = frame.owned[out];
}

HostTensor CpuExecutable::read_logits(const cpu::Frame& frame, const ForwardOptions& options) const {
  const Shape& declared = graph_.type(graph_.logits).shape;
  std::span<const float> data = frame.values[static_cast<std::size_t>(graph_.logits)];
  if (declared.rank() > 0 && declared[0] == kSeq && !options.all_logits) {
    Shape row(std::vector<Dim>(declared.dims().begin() + 1, declared.dims().end()));
    std::span<const float> last = data.last(static_cast<std::size_t>(row.numel()));
    return HostTensor::from_f32(std::move(row), {last.begin(), last.end()});
  }
  return HostTensor::from_f32(declared.bind(frame.seq_len), {data.begin(), data.end()});
}

ExecutionStats CpuExecutable::stats() const {
  ExecutionStats stats;
  stats.kernels_per_forward = static_cast<std::int64_t>(graph_.ops.size());
  for (const std::vector<float>& weight : weights_) stats.weight_bytes += static_cast<std::int64_t>(4 * weight.size());
  stats.state_bytes = static_cast<std::int64_t>(4 * layout_->total_floats());
  return stats;
}

}  // namespace rwkvc
