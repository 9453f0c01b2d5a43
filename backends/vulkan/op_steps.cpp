#include "backends/vulkan/op_steps.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/vulkan/shaders/templates.h"
#include "ir/error.h"

namespace rwkvc::vulkan {

namespace {

// Below this many rows a matmul reads each weight about once per row anyway: GEMV's wide
// loads beat GEMM's tiles.
constexpr std::int64_t kGemvMaxRows = 4;

std::uint32_t u32(std::int64_t value) { return static_cast<std::uint32_t>(value); }

std::uint32_t capped_groups(const DeviceFeatures& features, std::int64_t groups) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(groups, 1, features.max_workgroup_count_x));
}

std::vector<BufferRef> concat(const std::vector<BufferRef>& a, const std::vector<BufferRef>& b) {
  std::vector<BufferRef> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Step matmul_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features) {
  const TensorType& a = where.types[static_cast<std::size_t>(op.operands[0])];
  const TensorType& b = where.types[static_cast<std::size_t>(op.operands[1])];
  if (b.shape.rank() != 2 || b.shape.has_seq())
    throw IrError(fmt::format("the Vulkan backend multiplies by fixed matrices, not {}", to_string(b)));
  bool declared_transpose_b = op.int_attr("transpose_b") != 0;
  std::int64_t k = a.shape.back(), n = declared_transpose_b ? b.shape[0] : b.shape[1];
  bool transpose_b = declared_transpose_b || where.b_transposed;
  bool wide = transpose_b && k % 8 == 0;
  const Pipeline* gemv = &pipelines.get(gemv_kernel(features, {b.dtype, transpose_b, wide}, where.epilogue));
  const Pipeline* gemm64 = &pipelines.get(gemm_kernel(features, b.dtype, transpose_b, where.epilogue, 64));
  const Pipeline* gemm128 = &pipelines.get(gemm_kernel(features, b.dtype, transpose_b, where.epilogue, 128));
  const Pipeline* coopmat = gemm_coopmat_takes(features, b.dtype, transpose_b, k) ?
      &pipelines.get(gemm_coopmat_kernel(features, where.epilogue)) : nullptr;
  std::uint32_t rows_per_group = gemv_rows_per_group(features, transpose_b);
  Shape a_shape = a.shape;
  bool logits = where.computes_logits && a_shape.has_seq();
  std::shared_ptr<const RowGemvForm> form;
  if (transpose_b && !logits && where.results.size() == 1)
    form = std::make_shared<RowGemvForm>(RowGemvForm{{b.dtype, true, wide}, n, k, where.epilogue});
  return {concat(where.operands, where.results), where.results.size(), [=, &features](const CallShape& call) {
            std::int64_t m = a_shape.numel(call.tokens) / k, a_offset = 0;
            if (logits && call.last_logits_only && m == call.tokens) {
              a_offset = (call.tokens - 1) * k;
              m = 1;
            }
            if (m < kGemvMaxRows)
              return Launch{gemv,
                            {capped_groups(features, (n + rows_per_group - 1) / rows_per_group), u32(m), 1},
                            {u32(m), u32(n), u32(k), u32(a_offset), u32(call.tokens)}};
            if (coopmat != nullptr) {
              std::uint32_t tile = gemm_coopmat_tile();
              return Launch{coopmat, {u32((n + tile - 1) / tile), u32((m + tile - 1) / tile), 1},
                            {u32(m), u32(n), u32(k), u32(call.tokens)}};
            }
            std::uint32_t tile = gemm_tile(m, n);
            return Launch{tile == 128 ? gemm128 : gemm64, {u32((n + tile - 1) / tile), u32((m + tile - 1) / tile), 1},
                          {u32(m), u32(n), u32(k), u32(call.tokens)}};
          },
          {}, form};
}

Step segment_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features) {
  const TensorType& x = where.types[static_cast<std::size_t>(op.operands[0])];
  SegmentShape shape{SegmentOp::layer_norm, x.shape.back(), 1, 1.0};
  switch (op.kind) {
    case OpKind::layer_norm: shape.op = SegmentOp::layer_norm; break;
    case OpKind::group_norm:
      shape.op = SegmentOp::group_norm;
      shape.groups = op.int_attr("groups");
      shape.width = x.shape.back() / shape.groups;
      break;
    case OpKind::l2_norm:
      shape.op = SegmentOp::l2_norm;
      shape.width = x.shape.back() / op.int_attr("groups");
      break;
    case OpKind::reduce_sum: shape.op = SegmentOp::reduce_sum; break;
    default: throw IrError(fmt::format("'{}' is not a segment reduction", op_name(op.kind)));
  }
  if (op.kind != OpKind::reduce_sum) shape.eps = op.float_attr("eps");
  if (op.operands.size() == 3) shape.weight_dtype = where.types[static_cast<std::size_t>(op.operands[1])].dtype;
  const Pipeline* pipeline = &pipelines.get(segment_kernel(features, shape));
  Shape x_shape = x.shape;
  std::int64_t width = shape.width;
  return {concat(where.operands, where.results), where.results.size(), [=, &features](const CallShape& call) {
            std::int64_t segments = x_shape.numel(call.tokens) / width;
            return Launch{pipeline, {capped_groups(features, segments), 1, 1}, {u32(segments)}};
          }};
}

Step embedding_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features) {
  const TensorType& table = where.types[static_cast<std::size_t>(op.operands[0])];
  std::int64_t columns = table.shape[1];
  const Pipeline* pipeline = &pipelines.get(embedding_kernel(features, table.dtype, columns));
  return {concat(where.operands, where.results), where.results.size(), [=, &features](const CallShape& call) {
            std::int64_t count = call.tokens * columns;
            return Launch{pipeline, {elementwise_groups(features, static_cast<std::uint64_t>(count)), 1, 1}, {u32(count)}};
          }};
}

Step wkv7_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features) {
  const Shape& state = where.types[static_cast<std::size_t>(op.operands[6])].shape;
  std::int64_t heads = state[0], head_size = state[1];
  if (head_size > static_cast<std::int64_t>(features.max_workgroup_invocations))
    throw IrError(fmt::format("wkv7: head size {} is more than the {} invocations a workgroup of {} can have", head_size,
                              features.max_workgroup_invocations, features.name));
  const Pipeline* pipeline = &pipelines.get(wkv7_kernel(features, heads, head_size));
  return {concat(where.operands, where.results), where.results.size(), [=](const CallShape& call) {
            return Launch{pipeline, {u32(heads), 1, 1}, {u32(call.tokens)}};
          }};
}

Step wkv4_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features) {
  std::int64_t channels = where.types[static_cast<std::size_t>(op.operands[0])].shape.numel();
  const Pipeline* pipeline = &pipelines.get(wkv4_kernel(features, channels));
  return {concat(where.operands, where.results), where.results.size(), [=](const CallShape& call) {
            return Launch{pipeline, {u32((channels + 63) / 64), 1, 1}, {u32(call.tokens)}};
          }};
}

}  // namespace

void read_weight_transposed(Program& program, const Op& op, std::span<const TensorType> types, OpOperands& operands) {
  BufferRef& b = operands.operands[1];
  const Shape& b_shape = types[static_cast<std::size_t>(op.operands[1])].shape;
  if (op.int_attr("transpose_b") != 0 || b.kind != BufferRef::Kind::weight || b.index >= program.graph_weights ||
      b_shape.rank() != 2 || b_shape.has_seq())
    return;
  b = program.transposed(b.index);
  operands.b_transposed = true;
}

bool has_kernel_step(OpKind kind) {
  switch (kind) {
    case OpKind::embedding:
    case OpKind::layer_norm:
    case OpKind::group_norm:
    case OpKind::l2_norm:
    case OpKind::reduce_sum:
    case OpKind::matmul:
    case OpKind::wkv4:
    case OpKind::wkv7: return true;
    default: return false;
  }
}

Step kernel_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features) {
  switch (op.kind) {
    case OpKind::matmul: return matmul_step(op, where, pipelines, features);
    case OpKind::layer_norm:
    case OpKind::group_norm:
    case OpKind::l2_norm:
    case OpKind::reduce_sum: return segment_step(op, where, pipelines, features);
    case OpKind::embedding: return embedding_step(op, where, pipelines, features);
    case OpKind::wkv7: return wkv7_step(op, where, pipelines, features);
    case OpKind::wkv4: return wkv4_step(op, where, pipelines, features);
    default: break;
  }
  throw IrError(fmt::format("the Vulkan backend has no kernel for '{}'", op_name(op.kind)));
}

}  // namespace rwkvc::vulkan
