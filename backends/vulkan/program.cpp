#include "backends/vulkan/program.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/op_steps.h"
#include "backends/vulkan/shaders/templates.h"
#include "ir/error.h"

namespace rwkvc::vulkan {

std::size_t ActivationSlot::bytes(std::int64_t tokens) const {
  std::size_t most = 0;
  for (const TensorType& type : holds)
    most = std::max(most, static_cast<std::size_t>(type.shape.numel(tokens)) * dtype_size(type.dtype));
  return most;
}

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// Lowers one scope (the graph, or a region's body) to steps. In a region body, connected
// elementwise ops fuse into one generated kernel up to the next op that needs a kernel of its
// own; at the top level every op is its own step (fusion is the passes' decision).
class ScopeLowering {
 public:
  ScopeLowering(Program& program, PipelineStore& pipelines, const DeviceFeatures& features,
                std::span<const TensorType> types, std::span<const Op> ops, std::string label)
      : program_(program), pipelines_(pipelines), features_(features), types_(types), ops_(ops),
        label_(std::move(label)), where_(types.size()), readers_(types.size()) {
    for (std::size_t index = 0; index < ops.size(); ++index)
      for (ValueId operand : ops[index].operands) readers_[at(operand)].push_back(index);
  }

  std::optional<BufferRef>& where(ValueId id) { return where_[at(id)]; }

  // Lowers op #index. Values placed before (graph results, region yields) are computed there.
  void lower_op(std::size_t index, bool fuse, ValueId logits = kNoValue) {
    const Op& op = ops_[index];
    if (op.kind == OpKind::constant) {
      constants_[op.results[0]] = &op;
    } else if (is_generated_elementwise(op.kind)) {
      if (op.kind == OpKind::reshape && !fuse && where(op.operands[0])) {
        where(op.results[0]) = where(op.operands[0]);  // a view: the same bytes
        return;
      }
      group_.push_back(index);
      if (!fuse) flush();
    } else if (has_kernel_step(op.kind)) {
      flush();
      OpOperands operands{types_, {}, {}, logits != kNoValue && op.results[0] == logits};
      for (ValueId id : op.operands) operands.operands.push_back(located(id, op_name(op.kind)));
      for (ValueId id : op.results) operands.results.push_back(place(id));
      program_.steps.push_back(kernel_step(op, operands, pipelines_, features_));
    } else {
      throw IrError(fmt::format("{}: the Vulkan backend has no kernel for '{}'", label_, op_name(op.kind)));
    }
  }

  // Runs what is pending.
  void finish() { flush(); }

 private:
  BufferRef located(ValueId id, std::string_view reader) {
    if (!where(id))
      throw IrError(fmt::format("{}: {} reads %{}, which no kernel leaves in a buffer", label_, reader, id));
    return *where(id);
  }

  // Where `id` goes: its planned place, else an activation slot of its own.
  BufferRef place(ValueId id) {
    if (!where(id)) {
      where(id) = BufferRef{BufferRef::Kind::activation, static_cast<std::uint32_t>(program_.activations.size())};
      program_.activations.push_back({{types_[at(id)]}});
    }
    return *where(id);
  }

  // The pending elementwise ops as one generated kernel. Its outputs are the values read
  // after it or kept; its inputs whatever it reads that it does not compute.
  void flush() {
    if (group_.empty()) return;
    std::vector<bool> in_group(ops_.size(), false);
    for (std::size_t index : group_) in_group[index] = true;
    ElementwiseGroup group;
    std::map<ValueId, bool> computed;
    for (std::size_t index : group_) {
      group.ops.push_back(&ops_[index]);
      computed[ops_[index].results[0]] = true;
    }
    auto read_later = [&](ValueId id) {
      return std::any_of(readers_[at(id)].begin(), readers_[at(id)].end(),
                         [&](std::size_t reader) { return reader > group_.back() && !in_group[reader]; });
    };
    std::vector<BufferRef> inputs, outputs;
    for (std::size_t index : group_) {
      const Op& op = ops_[index];
      for (ValueId operand : op.operands) {
        if (computed.contains(operand) || std::find(group.inputs.begin(), group.inputs.end(), operand) != group.inputs.end())
          continue;
        if (auto constant = constants_.find(operand); constant != constants_.end()) {
          group.ops.insert(group.ops.begin(), constant->second);
          computed[operand] = true;
          continue;
        }
        group.inputs.push_back(operand);
        inputs.push_back(located(operand, op_name(op.kind)));
      }
      if (read_later(op.results[0]) || where(op.results[0])) {
        group.outputs.push_back(op.results[0]);
        outputs.push_back(place(op.results[0]));
      }
    }
    const Op& first = ops_[group_.front()];
    std::string name = group_.size() == 1 ? fmt::format("{} {}", op_name(first.kind), to_string(types_[at(first.results[0])]))
                                          : fmt::format("{} fused {} ops", label_, group_.size());
    group_.clear();
    if (group.outputs.empty()) return;  // nothing reads what it computes
    emit(group, inputs, outputs, name);
  }

  void emit(const ElementwiseGroup& group, const std::vector<BufferRef>& inputs, const std::vector<BufferRef>& outputs,
            const std::string& name) {
    const Pipeline* pipeline = &pipelines_.get(elementwise_kernel(features_, types_, group, name));
    std::vector<Shape> shapes;
    for (ValueId id : group.outputs) shapes.push_back(types_[at(id)].shape);
    std::vector<BufferRef> bindings = inputs;
    bindings.insert(bindings.end(), outputs.begin(), outputs.end());
    const DeviceFeatures& features = features_;
    program_.steps.push_back({bindings, outputs.size(), [=, &features](const CallShape& call) {
                                std::int64_t count = 1;
                                for (const Shape& shape : shapes) count = std::max(count, shape.numel(call.tokens));
                                return Launch{pipeline,
                                              {elementwise_groups(features, static_cast<std::uint64_t>(count)), 1, 1},
                                              {static_cast<std::uint32_t>(count), static_cast<std::uint32_t>(call.tokens)}};
                              }});
  }

 public:
  // A kept value that the scope's steps did not leave where it must be (a yield of an
  // argument, or of a value yielded twice): copied there by a generated kernel.
  void copy(ValueId id, BufferRef target) {
    ElementwiseGroup group{{}, {id}, {id}};
    emit(group, {located(id, "a yield")}, {target}, fmt::format("{} copy", label_));
  }

 private:
  Program& program_;
  PipelineStore& pipelines_;
  const DeviceFeatures& features_;
  std::span<const TensorType> types_;
  std::span<const Op> ops_;
  std::string label_;
  std::vector<std::optional<BufferRef>> where_;
  std::vector<std::vector<std::size_t>> readers_;  // by value: the ops that read it
  std::map<ValueId, const Op*> constants_;
  std::vector<std::size_t> group_;  // op indices of the pending elementwise group
};

// A region's body: arguments are where the region's operands are; each yield goes where the
// region's result goes (a copy when the body cannot compute it there directly).
void lower_region(Program& program, PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                  const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results, std::size_t index) {
  const Region& region = *op.region;
  for (const Op& inner : region.ops)
    if (inner.kind == OpKind::region || inner.kind == OpKind::embedding)
      throw IrError(fmt::format("op #{} region \"{}\": the Vulkan backend runs no {} inside a region", index,
                                region.kind, op_name(inner.kind)));
  ScopeLowering body(program, pipelines, features, region.values, region.ops, fmt::format("region \"{}\"", region.kind));
  for (std::size_t i = 0; i < region.arguments; ++i) body.where(static_cast<ValueId>(i)) = operands[i];
  std::vector<std::pair<ValueId, BufferRef>> copies;
  for (std::size_t i = 0; i < region.yields.size(); ++i) {
    ValueId id = region.yields[i];
    if (body.where(id))
      copies.emplace_back(id, results[i]);
    else
      body.where(id) = results[i];
  }
  for (std::size_t i = 0; i < region.ops.size(); ++i) body.lower_op(i, /*fuse=*/true);
  body.finish();
  for (const auto& [id, target] : copies) body.copy(id, target);
}

}  // namespace

Program plan_program(const Graph& graph, PipelineStore& pipelines, const DeviceFeatures& features) {
  Program program;
  std::vector<TensorType> types;
  for (const Value& value : graph.values) types.push_back(value.type);
  ScopeLowering top(program, pipelines, features, types, graph.ops, "graph");
  for (std::size_t i = 0; i < graph.weights.size(); ++i)
    top.where(graph.weights[i].value) = BufferRef{BufferRef::Kind::weight, static_cast<std::uint32_t>(i)};
  for (std::size_t i = 0; i < graph.states.size(); ++i)
    top.where(graph.states[i].input) = BufferRef{BufferRef::Kind::state, static_cast<std::uint32_t>(i)};
  top.where(graph.tokens) = BufferRef{BufferRef::Kind::tokens, 0};

  // Op results: plan-memory's buffers become shared slots; unplanned values get their own.
  std::map<std::int32_t, std::uint32_t> slot_of_buffer;
  for (const Op& op : graph.ops) {
    if (op.kind == OpKind::reshape) continue;  // a view, placed when lowered
    for (ValueId id : op.results) {
      const Value& value = graph.value(id);
      std::uint32_t slot;
      if (value.buffer != kNoBuffer && slot_of_buffer.contains(value.buffer)) {
        slot = slot_of_buffer[value.buffer];
        program.activations[slot].holds.push_back(value.type);
      } else {
        slot = static_cast<std::uint32_t>(program.activations.size());
        program.activations.push_back({{value.type}});
        if (value.buffer != kNoBuffer) slot_of_buffer[value.buffer] = slot;
      }
      top.where(id) = BufferRef{BufferRef::Kind::activation, slot};
    }
  }

  // Top-level ops in order; regions lower their bodies in place.
  for (std::size_t index = 0; index < graph.ops.size(); ++index) {
    const Op& op = graph.ops[index];
    if (op.kind != OpKind::region) {
      top.lower_op(index, /*fuse=*/false, graph.logits);
      continue;
    }
    std::vector<BufferRef> operands, results;
    for (ValueId id : op.operands) operands.push_back(*top.where(id));
    for (ValueId id : op.results) results.push_back(*top.where(id));
    lower_region(program, pipelines, features, op, operands, results, index);
  }

  for (const StateDecl& state : graph.states) program.state_outputs.push_back(*top.where(state.output));
  const Shape& logits = graph.type(graph.logits).shape;
  program.logits = *top.where(graph.logits);
  program.logits_shape = logits;
  program.logits_per_token = logits.rank() > 0 && logits[0] == kSeq;
  program.logits_row = program.logits_per_token ? logits.numel(1) : logits.numel();
  if (program.logits_per_token) {
    auto producer = std::find_if(graph.ops.begin(), graph.ops.end(), [&](const Op& op) {
      return std::find(op.results.begin(), op.results.end(), graph.logits) != op.results.end();
    });
    program.head_shortened = producer != graph.ops.end() && producer->kind == OpKind::matmul &&
                             graph.type(producer->operands[0]).shape.numel(1) == graph.type(producer->operands[0]).shape.back();
  }
  return program;
}

}  // namespace rwkvc::vulkan
