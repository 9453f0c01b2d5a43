#include "backends/vulkan/program.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "backends/vulkan/decode_folds.h"
#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/fused_regions.h"
#include "backends/vulkan/op_steps.h"
#include "backends/vulkan/wkv_region.h"
#include "backends/vulkan/shaders/templates.h"
#include "ir/error.h"

namespace rwkvc::vulkan {

std::size_t ActivationSlot::bytes(std::int64_t tokens) const {
  std::size_t most = 0;
  for (const TensorType& type : holds)
    most = std::max(most, static_cast<std::size_t>(type.shape.numel(tokens)) * dtype_size(type.dtype));
  return most;
}

BufferRef Program::transposed(std::uint32_t source) {
  auto found = std::find(transposed_weights.begin(), transposed_weights.end(), source);
  if (found == transposed_weights.end()) found = transposed_weights.insert(found, source);
  return {BufferRef::Kind::weight, static_cast<std::uint32_t>(graph_weights + (found - transposed_weights.begin()))};
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
      OpOperands operands;
      operands.types = types_;
      operands.computes_logits = logits != kNoValue && op.results[0] == logits;
      for (ValueId id : op.operands) operands.operands.push_back(located(id, op_name(op.kind)));
      for (ValueId id : op.results) operands.results.push_back(place(id));
      if (op.kind == OpKind::matmul) read_weight_transposed(program_, op, types_, operands);
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
  if (lower_fused_region(program, pipelines, features, op, operands, results)) return;
  // A wkv region: one kernel for short calls, the body op by op for long ones.
  std::optional<Step> fused_wkv = fused_wkv_step(pipelines, features, op, operands, results);
  if (fused_wkv) program.steps.push_back(std::move(*fused_wkv));
  std::size_t body_steps = program.steps.size();
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
  if (fused_wkv)
    for (std::size_t i = body_steps; i < program.steps.size(); ++i)
      program.steps[i].runs = [](const CallShape& call) { return call.tokens > kFusedWkvMaxTokens; };
}

// The new state goes into the state's own buffers through kernels (state_copy_kernel, at most
// max_storage_buffers / 2 and 128 slots each), steps that the schedule places after every reader of
// the old state; a transfer command per slot cost ~4 us each on the H100 (run 4). A slot whose
// new value is not an activation keeps the executable's transfer.
// RWKVC_VULKAN_STATE_COPY=transfer keeps a transfer per slot for every slot (for comparison).
void copy_new_state_in_kernels(Program& program, PipelineStore& pipelines, const DeviceFeatures& features,
                               const Graph& graph) {
  if (const char* env = std::getenv("RWKVC_VULKAN_STATE_COPY"); env != nullptr && *env != '\0') {
    std::string_view how(env);
    if (how == "transfer") return;
    if (how != "kernel")
      throw std::invalid_argument(fmt::format("RWKVC_VULKAN_STATE_COPY='{}': expected kernel or transfer", how));
  }
  std::size_t per_kernel = std::clamp<std::size_t>(features.max_storage_buffers / 2, 1, 128);
  std::vector<std::size_t> slots;
  for (std::size_t i = 0; i < program.state_outputs.size(); ++i)
    if (program.state_outputs[i].kind == BufferRef::Kind::activation) slots.push_back(i);
  for (std::size_t begin = 0; begin < slots.size(); begin += per_kernel) {
    std::size_t end = std::min(slots.size(), begin + per_kernel);
    std::vector<BufferRef> bindings, targets;
    std::vector<std::int64_t> lengths;
    for (std::size_t k = begin; k < end; ++k) {
      auto slot = static_cast<std::uint32_t>(slots[k]);
      bindings.push_back(program.state_outputs[slot]);
      targets.push_back({BufferRef::Kind::state, slot});
      lengths.push_back(graph.type(graph.states[slot].input).shape.numel());
      program.state_outputs[slot] = targets.back();
    }
    bindings.insert(bindings.end(), targets.begin(), targets.end());
    const Pipeline* pipeline = &pipelines.get(state_copy_kernel(features, lengths));
    std::uint32_t groups = state_copy_groups(lengths), count = static_cast<std::uint32_t>(end - begin);
    program.steps.push_back({bindings, end - begin, [pipeline, groups, count](const CallShape&) {
                               return Launch{pipeline, {groups, count, 1}, {}};
                             }});
  }
}

// Reorders the steps by dependency depth (a stable sort, so every step still follows what it
// reads, overwrites or rewrites): the projections and LoRA products of a block, which the
// lowering interleaves with the steps that consume them, end up side by side, and the
// executable records them without barriers between them. Returns the depths in the new order.
std::vector<int> schedule_by_depth(std::vector<Step>& steps) {
  struct Touch {
    int written = 0, read = 0;  // the deepest step that wrote, and that read, the buffer
  };
  std::vector<std::pair<BufferRef, Touch>> touched;
  auto touch = [&](const BufferRef& ref) -> Touch& {
    for (auto& [buffer, state] : touched)
      if (buffer == ref) return state;
    return touched.emplace_back(ref, Touch{}).second;
  };
  std::vector<int> depth(steps.size());
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const Step& step = steps[s];
    std::size_t first_write = step.bindings.size() - step.writes;
    int d = 1;
    for (std::size_t b = 0; b < step.bindings.size(); ++b) {
      const Touch& t = touch(step.bindings[b]);
      d = std::max(d, (b < first_write ? t.written : std::max(t.written, t.read)) + 1);
    }
    for (std::size_t b = 0; b < step.bindings.size(); ++b) {
      Touch& t = touch(step.bindings[b]);
      if (b < first_write)
        t.read = std::max(t.read, d);
      else
        t.written = d;
    }
    depth[s] = d;
  }
  std::vector<std::size_t> order(steps.size());
  for (std::size_t s = 0; s < order.size(); ++s) order[s] = s;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return depth[a] < depth[b]; });
  std::vector<Step> sorted;
  sorted.reserve(steps.size());
  std::vector<int> sorted_depth;
  for (std::size_t s : order) {
    sorted.push_back(std::move(steps[s]));
    sorted_depth.push_back(depth[s]);
  }
  steps = std::move(sorted);
  return sorted_depth;
}

// Lets activation slots whose lives (from the first depth that touches them to the last) do
// not overlap share one buffer. A slot is reused only by a value first written at a greater
// depth than the old one was last read, which already waits for that read: sharing adds no
// barrier. The state outputs and the logits live to the end.
void pack_activations(Program& program, const std::vector<int>& depth) {
  constexpr int kEnd = std::numeric_limits<int>::max();
  std::size_t count = program.activations.size();
  std::vector<int> first(count, kEnd), last(count, -1);
  for (std::size_t s = 0; s < program.steps.size(); ++s)
    for (const BufferRef& ref : program.steps[s].bindings)
      if (ref.kind == BufferRef::Kind::activation) {
        first[ref.index] = std::min(first[ref.index], depth[s]);
        last[ref.index] = std::max(last[ref.index], depth[s]);
      }
  auto keep = [&](const BufferRef& ref) {
    if (ref.kind == BufferRef::Kind::activation) last[ref.index] = kEnd;
  };
  for (const BufferRef& ref : program.state_outputs) keep(ref);
  keep(program.logits);

  std::vector<std::uint32_t> order(count);
  for (std::uint32_t i = 0; i < count; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return first[a] < first[b]; });
  std::vector<ActivationSlot> packed;
  std::vector<int> free_after;  // by packed slot: the depth of its current value's last use
  std::vector<std::uint32_t> slot_of(count);
  for (std::uint32_t slot : order) {
    std::size_t target = packed.size();
    if (first[slot] != kEnd)
      for (std::size_t p = 0; p < packed.size() && target == packed.size(); ++p)
        if (free_after[p] < first[slot]) target = p;
    if (target == packed.size()) {
      packed.emplace_back();
      free_after.push_back(-1);
    }
    const auto& holds = program.activations[slot].holds;
    packed[target].holds.insert(packed[target].holds.end(), holds.begin(), holds.end());
    free_after[target] = first[slot] == kEnd ? kEnd : last[slot];
    slot_of[slot] = static_cast<std::uint32_t>(target);
  }
  auto remap = [&](BufferRef& ref) {
    if (ref.kind == BufferRef::Kind::activation) ref.index = slot_of[ref.index];
  };
  for (Step& step : program.steps)
    for (BufferRef& ref : step.bindings) remap(ref);
  for (BufferRef& ref : program.state_outputs) remap(ref);
  remap(program.logits);
  program.activations = std::move(packed);
}

}  // namespace

Program plan_program(const Graph& graph, PipelineStore& pipelines, const DeviceFeatures& features) {
  Program program;
  program.graph_weights = graph.weights.size();
  std::vector<TensorType> types;
  for (const Value& value : graph.values) types.push_back(value.type);
  ScopeLowering top(program, pipelines, features, types, graph.ops, "graph");
  for (std::size_t i = 0; i < graph.weights.size(); ++i)
    top.where(graph.weights[i].value) = BufferRef{BufferRef::Kind::weight, static_cast<std::uint32_t>(i)};
  for (std::size_t i = 0; i < graph.states.size(); ++i)
    top.where(graph.states[i].input) = BufferRef{BufferRef::Kind::state, static_cast<std::uint32_t>(i)};
  top.where(graph.tokens) = BufferRef{BufferRef::Kind::tokens, 0};

  // Op results each get a slot; pack_activations shares them once the steps are scheduled
  // (plan-memory's sharing follows the graph's order and would tie independent steps together).
  for (const Op& op : graph.ops) {
    if (op.kind == OpKind::reshape) continue;  // a view, placed when lowered
    for (ValueId id : op.results) {
      top.where(id) = BufferRef{BufferRef::Kind::activation, static_cast<std::uint32_t>(program.activations.size())};
      program.activations.push_back({{graph.value(id).type}});
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

  fold_lora_ups_into_wkv(program, pipelines);
  fold_norm_mix_into_gemvs(program, pipelines, features);
  for (const StateDecl& state : graph.states) program.state_outputs.push_back(*top.where(state.output));
  copy_new_state_in_kernels(program, pipelines, features, graph);
  std::vector<int> depth = schedule_by_depth(program.steps);
  const Shape& logits = graph.type(graph.logits).shape;
  program.logits = *top.where(graph.logits);
  pack_activations(program, depth);
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
