#include "backends/cpu/cpu_executable.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cpu/cpu_state.h"
#include "backends/cpu/kernels.h"
#include "ir/error.h"

namespace rwkvc {

struct CpuExecutable::Frame {
  // `types`: the types of the scope's values by id (the graph's, or a region body's).
  Frame(std::span<const TensorType> types, std::int64_t seq_len, std::span<const std::int32_t> tokens)
      : types(types), seq_len(seq_len), tokens(tokens), values(types.size()), owned(types.size()) {}

  // A zeroed buffer of `count` floats for value `id`, owned by this frame.
  std::span<float> allocate(ValueId id, std::int64_t count) {
    std::vector<float>& buffer = owned[static_cast<std::size_t>(id)];
    buffer.assign(static_cast<std::size_t>(count), 0.0f);
    values[static_cast<std::size_t>(id)] = buffer;
    return buffer;
  }

  void release(ValueId id) {
    std::vector<float>().swap(owned[static_cast<std::size_t>(id)]);
    values[static_cast<std::size_t>(id)] = {};
  }

  std::span<const TensorType> types;
  std::int64_t seq_len;
  std::span<const std::int32_t> tokens;
  std::vector<std::span<const float>> values;  // by ValueId: owned here, or borrowed (weights, state)
  std::vector<std::vector<float>> owned;       // by ValueId: the buffers of results computed here
};

CpuExecutable::CpuExecutable(Graph graph, const WeightMap& weights)
    : graph_(std::move(graph)), layout_(std::make_shared<StateLayout>(rwkvc::state_layout(graph_))) {
  for (const Value& value : graph_.values) types_.push_back(value.type);
  Frame known(types_, 1, {});
  std::vector<bool> is_known(graph_.values.size(), false);
  for (const WeightDecl& decl : graph_.weights) {
    auto id = static_cast<std::size_t>(decl.value);
    known.owned[id] = bind_weight(graph_, decl, weights).to_f32();
    known.values[id] = known.owned[id];
    is_known[id] = true;
  }

  for (std::size_t index = 0; index < graph_.ops.size(); ++index) {
    const Op& op = graph_.ops[index];
    check_supported(op, index);
    if (op.kind == OpKind::embedding) {
      Dim rows = graph_.type(op.operands[0]).shape[0];
      if (rows != kSeq) vocab_size_ = vocab_size_ == 0 ? rows : std::min(vocab_size_, rows);
    }
    bool from_known = std::all_of(op.operands.begin(), op.operands.end(),
                                  [&](ValueId id) { return is_known[static_cast<std::size_t>(id)]; });
    bool fixed_shape = std::none_of(op.results.begin(), op.results.end(),
                                    [&](ValueId id) { return graph_.type(id).shape.has_seq(); });
    if (from_known && fixed_shape) {
      run(op, known);
      for (ValueId id : op.results) is_known[static_cast<std::size_t>(id)] = true;
    } else {
      plan_.push_back(index);
    }
  }
  known_ = std::move(known.owned);
  plan_releases();
}

void CpuExecutable::check_supported(const Op& op, std::size_t index) const {
  for (std::size_t i = 0; i < op.operands.size(); ++i) {
    ValueId id = op.operands[i];
    if (op.kind == OpKind::embedding && i == 1) {
      if (id != graph_.tokens)
        throw IrError(fmt::format("op #{} embedding: the CPU backend gathers rows by the graph's tokens {}, not {}",
                                  index, graph_.ref(graph_.tokens), graph_.ref(id)));
    } else if (!is_float(graph_.type(id).dtype)) {
      throw IrError(fmt::format("op #{} {}: the CPU backend computes in f32 and cannot take {} {}", index,
                                op_name(op.kind), to_string(graph_.type(id)), graph_.ref(id)));
    }
  }
  // A region's body reads only its arguments: an embedding there would have no tokens to gather by.
  if (op.region)
    for (const Op& inner : op.region->ops)
      if (inner.kind == OpKind::embedding || inner.kind == OpKind::region)
        throw IrError(fmt::format("op #{} region \"{}\": the CPU backend runs no {} inside a region", index,
                                  op.region->kind, op_name(inner.kind)));
}

void CpuExecutable::plan_releases() {
  // The last plan step that reads each value produced by the plan; results nobody reads die
  // where they are made. Logits and new states must outlive the plan.
  constexpr std::size_t kKeep = static_cast<std::size_t>(-1);
  std::vector<std::size_t> last_use(graph_.values.size(), kKeep);
  for (std::size_t step = 0; step < plan_.size(); ++step) {
    const Op& op = graph_.ops[plan_[step]];
    for (ValueId id : op.results) last_use[static_cast<std::size_t>(id)] = step;
    for (ValueId id : op.operands)
      if (last_use[static_cast<std::size_t>(id)] != kKeep) last_use[static_cast<std::size_t>(id)] = step;
  }
  last_use[static_cast<std::size_t>(graph_.logits)] = kKeep;
  for (const StateDecl& decl : graph_.states) last_use[static_cast<std::size_t>(decl.output)] = kKeep;

  releases_.assign(plan_.size(), {});
  for (std::size_t id = 0; id < last_use.size(); ++id)
    if (last_use[id] != kKeep) releases_[last_use[id]].push_back(static_cast<ValueId>(id));
}

void CpuExecutable::run(const Op& op, Frame& frame) const {
  auto shape = [&](ValueId id) { return frame.types[static_cast<std::size_t>(id)].shape.bind(frame.seq_len); };
  auto input = [&](std::size_t i) { return frame.values[static_cast<std::size_t>(op.operands[i])]; };
  auto view = [&](std::size_t i) { return cpu::TensorView{input(i), shape(op.operands[i])}; };
  auto input_shape = [&](std::size_t i) { return shape(op.operands[i]); };
  auto output = [&](std::size_t i) { return frame.allocate(op.results[i], shape(op.results[i]).numel()); };
  auto eps = [&] { return static_cast<float>(op.float_attr("eps")); };

  if (is_unary_elementwise(op.kind)) return cpu::unary(op.kind, input(0), output(0));
  if (is_binary_elementwise(op.kind))
    return cpu::binary(op.kind, view(0), view(1), output(0), shape(op.results[0]));

  switch (op.kind) {
    case OpKind::embedding:
      return cpu::embedding(input(0), input_shape(0)[1], frame.tokens, output(0));
    case OpKind::layer_norm:
      return cpu::layer_norm(input(0), input_shape(0).back(), input(1), input(2), eps(), output(0));
    case OpKind::group_norm:
      return cpu::group_norm(input(0), input_shape(0)[1], op.int_attr("groups"), input(1), input(2), eps(), output(0));
    case OpKind::matmul: {
      bool transpose_b = op.int_attr("transpose_b") != 0;
      Shape b = input_shape(1);
      return cpu::matmul(input(0), input(1), transpose_b ? b[1] : b[0], transpose_b ? b[0] : b[1], transpose_b,
                         output(0));
    }
    case OpKind::token_shift: return cpu::token_shift(input(0), input(1), output(0));
    case OpKind::last_row: return cpu::last_row(input(0), output(0));
    case OpKind::lerp: return cpu::lerp(view(0), view(1), view(2), output(0), shape(op.results[0]));
    case OpKind::l2_norm:
      return cpu::l2_norm(input(0), input_shape(0).back(), op.int_attr("groups"), eps(), output(0));
    case OpKind::reduce_sum: return cpu::reduce_sum(input(0), input_shape(0).back(), output(0));
    case OpKind::reshape: return cpu::reshape(input(0), output(0));
    case OpKind::constant: {
      output(0)[0] = static_cast<float>(op.float_attr("value"));
      return;
    }
    case OpKind::wkv4: {
      // The kernel updates the state in place: start the results from the incoming state.
      std::span<float> y = output(0), aa = output(1), bb = output(2), pp = output(3);
      std::ranges::copy(input(4), aa.begin());
      std::ranges::copy(input(5), bb.begin());
      std::ranges::copy(input(6), pp.begin());
      return cpu::wkv4(input(0), input(1), input(2), input(3), {aa, bb, pp}, y);
    }
    case OpKind::wkv7: {
      std::span<float> y = output(0), state = output(1);
      std::ranges::copy(input(6), state.begin());
      return cpu::wkv7({input(0), input(1), input(2), input(3), input(4), input(5)}, input_shape(6)[1], state, y);
    }
    case OpKind::region: {
      // Interpreted: the body's ops run through this same dispatch over a frame of its own.
      const Region& region = *op.region;
      Frame body(region.values, frame.seq_len, frame.tokens);
      for (std::size_t i = 0; i < region.arguments; ++i) body.values[i] = input(i);
      for (const Op& inner : region.ops) run(inner, body);
      for (std::size_t i = 0; i < region.yields.size(); ++i)
        std::ranges::copy(body.values[static_cast<std::size_t>(region.yields[i])], output(i).begin());
      return;
    }
    default: break;
  }
  throw IrError(fmt::format("the CPU backend has no kernel for '{}'", op_name(op.kind)));
}

State CpuExecutable::import_state(const HostState& host) const {
  host.check_matches(*layout_);
  return State(layout_, std::make_unique<CpuStateStorage>(HostState{*layout_, host.slots}));
}

HostTensor CpuExecutable::forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) {
  check_tokens(tokens);
  auto& storage = dynamic_cast<CpuStateStorage&>(state.storage_for(kCpuBackendName));
  storage.host().check_matches(*layout_);

  Frame frame(types_, static_cast<std::int64_t>(tokens.size()), tokens);
  for (std::size_t id = 0; id < known_.size(); ++id) frame.values[id] = known_[id];
  for (std::size_t slot = 0; slot < graph_.states.size(); ++slot)
    frame.values[static_cast<std::size_t>(graph_.states[slot].input)] = storage.host().slots[slot];

  for (std::size_t step = 0; step < plan_.size(); ++step) {
    run(graph_.ops[plan_[step]], frame);
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

HostTensor CpuExecutable::read_logits(const Frame& frame, const ForwardOptions& options) const {
  const Shape& declared = graph_.type(graph_.logits).shape;
  std::span<const float> data = frame.values[static_cast<std::size_t>(graph_.logits)];
  if (declared.rank() > 0 && declared[0] == kSeq && !options.all_logits) {
    Shape row(std::vector<Dim>(declared.dims().begin() + 1, declared.dims().end()));
    std::span<const float> last = data.last(static_cast<std::size_t>(row.numel()));
    return HostTensor::from_f32(std::move(row), {last.begin(), last.end()});
  }
  return HostTensor::from_f32(declared.bind(frame.seq_len), {data.begin(), data.end()});
}

}  // namespace rwkvc
