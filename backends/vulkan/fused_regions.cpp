#include "backends/vulkan/fused_regions.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/op_steps.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// A matmul_epilogue region whose tail maps the product element by element (every value of
// the product's shape, no other row read, one yield) becomes one matmul step that stores the
// tail's value. Returns false, lowering nothing, for any other region.
bool lower_folded_epilogue(Program& program, PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                           const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results) {
  const Region& region = *op.region;
  if (region.kind != "matmul_epilogue" || region.yields.size() != 1) return false;
  auto argument = [&](ValueId id) { return at(id) < region.arguments; };
  const Op* matmul = nullptr;
  ElementwiseGroup tail;
  std::map<ValueId, bool> in_tail;
  for (const Op& inner : region.ops) {
    if (inner.kind == OpKind::matmul) {
      if (matmul != nullptr || !argument(inner.operands[0]) || !argument(inner.operands[1])) return false;
      matmul = &inner;
      continue;
    }
    bool constant = inner.kind == OpKind::constant;
    if (!is_generated_elementwise(inner.kind) || inner.kind == OpKind::token_shift || inner.kind == OpKind::last_row ||
        inner.kind == OpKind::reshape || (!constant && matmul == nullptr))
      return false;
    if (!constant && region.values[at(inner.results[0])].shape != region.values[at(matmul->results[0])].shape)
      return false;
    tail.ops.push_back(&inner);
    in_tail[inner.results[0]] = true;
  }
  if (matmul == nullptr || tail.ops.empty()) return false;
  ValueId product = matmul->results[0], yield = region.yields[0];
  if (yield == product || !in_tail.contains(yield)) return false;
  const BufferRef& out = results[0];
  if (operands[at(matmul->operands[0])] == out || operands[at(matmul->operands[1])] == out) return false;

  OpOperands where;
  where.types = region.values;
  where.operands = {operands[at(matmul->operands[0])], operands[at(matmul->operands[1])]};
  where.results = {out};
  tail.inputs.push_back(product);
  for (const Op* inner : tail.ops)
    for (ValueId id : inner->operands) {
      if (id == product || in_tail.contains(id) || std::find(tail.inputs.begin(), tail.inputs.end(), id) != tail.inputs.end())
        continue;
      if (!argument(id)) return false;
      // Read where it is written: only at the element being stored.
      if (operands[at(id)] == out && region.values[at(id)].shape != region.values[at(product)].shape) return false;
      tail.inputs.push_back(id);
      where.operands.push_back(operands[at(id)]);
      where.epilogue.inputs.push_back(region.values[at(id)].dtype);
    }
  tail.outputs = {yield};
  where.epilogue.functions = elementwise_functions(region.values, tail);
  where.epilogue.result = fmt::format("v{}", yield);
  read_weight_transposed(program, *matmul, region.values, where);
  program.steps.push_back(kernel_step(*matmul, where, pipelines, features));
  return true;
}

// A token_shift_mix region whose first op normalises argument 0 ([T, C]) and whose other ops
// are elementwise over [T, C] (token_shift reaching one row back, last_row yields of [C]):
// one workgroup per row computes the statistics of rows t and t-1, and the generated body
// reads the normalised rows through them.
bool lower_norm_mix(Program& program, PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                    const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results) {
  const Region& region = *op.region;
  if (region.kind != "token_shift_mix" || region.ops.empty() || region.ops[0].kind != OpKind::layer_norm) return false;
  auto argument = [&](ValueId id) { return at(id) < region.arguments; };
  const Op& norm = region.ops[0];
  const Shape& rows = region.values[at(norm.operands[0])].shape;
  if (norm.operands.size() != 3 || !std::all_of(norm.operands.begin(), norm.operands.end(), argument) ||
      rows.rank() != 2 || rows[0] != kSeq || rows[1] == kSeq)
    return false;
  Shape vector{rows[1]};
  ValueId normed = norm.results[0];
  ElementwiseGroup body{{}, {normed}, {}};
  std::map<ValueId, bool> computed{{normed, true}};
  std::vector<BufferRef> bindings{operands[at(norm.operands[0])], operands[at(norm.operands[1])],
                                  operands[at(norm.operands[2])]};
  NormMixShape shape{rows[1], norm.float_attr("eps"), region.values[at(norm.operands[1])].dtype, {}, {}, {}, {}};
  for (std::size_t i = 1; i < region.ops.size(); ++i) {
    const Op& inner = region.ops[i];
    const Shape& result = region.values[at(inner.results[0])].shape;
    bool allowed = inner.kind == OpKind::last_row ? result == vector
                                                  : is_generated_elementwise(inner.kind) && inner.kind != OpKind::reshape &&
                                                        (inner.kind == OpKind::constant || result == rows);
    if (!allowed || inner.results.size() != 1) return false;
    body.ops.push_back(&inner);
    computed[inner.results[0]] = true;
    for (ValueId id : inner.operands) {
      if (computed.contains(id) || std::find(body.inputs.begin(), body.inputs.end(), id) != body.inputs.end()) continue;
      if (!argument(id) || region.values[at(id)].shape.has_seq()) return false;  // only the normalised rows vary with t
      body.inputs.push_back(id);
      bindings.push_back(operands[at(id)]);
      shape.inputs.push_back(region.values[at(id)].dtype);
    }
  }
  for (std::size_t i = 0; i < region.yields.size(); ++i) {
    ValueId id = region.yields[i];
    if (!computed.contains(id) || std::find(bindings.begin(), bindings.end(), results[i]) != bindings.end()) return false;
    body.outputs.push_back(id);
    shape.outputs.push_back(fmt::format("v{}", id));
    shape.per_row.push_back(region.values[at(id)].shape == rows);
  }
  shape.functions = elementwise_functions(region.values, body);
  const Pipeline* pipeline = &pipelines.get(norm_mix_kernel(features, shape));
  auto form = std::make_shared<NormMixForm>();
  form->folded = shape;
  form->folded.functions = elementwise_functions(region.values, body, &form->uses_softplus, "nm_");
  for (std::string& output : form->folded.outputs) output = "nm_" + output;
  std::size_t writes = results.size();
  bindings.insert(bindings.end(), results.begin(), results.end());
  auto blocks = static_cast<std::uint32_t>((shape.width + norm_mix_lanes(shape.width) - 1) / norm_mix_lanes(shape.width));
  program.steps.push_back({bindings, writes, [pipeline, blocks](const CallShape& call) {
                             auto rows = static_cast<std::uint32_t>(std::clamp<std::int64_t>(call.tokens, 1, 65535));
                             return Launch{pipeline, {blocks, rows, 1}, {static_cast<std::uint32_t>(call.tokens)}};
                           },
                           {}, {}, form});
  return true;
}

}  // namespace

bool lower_fused_region(Program& program, PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                        const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results) {
  return lower_folded_epilogue(program, pipelines, features, op, operands, results) ||
         lower_norm_mix(program, pipelines, features, op, operands, results);
}

}  // namespace rwkvc::vulkan
