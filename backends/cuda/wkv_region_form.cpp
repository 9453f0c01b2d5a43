#include "backends/cuda/wkv_region_form.h"

#include <span>

#include "backends/cuda/fused_codegen.h"

namespace rwkvc::cuda {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// Whether what `op` computes for one head's channels reads only that head's channels of the
// values computed inside the region (elementwise ops, reshapes between head-major layouts, and
// reductions over one head).
bool keeps_heads_apart(const Op& op, std::span<const TensorType> types, Dim H, Dim N) {
  auto shape = [&](ValueId id) { return types[at(id)].shape; };
  auto channels = [&](const Shape& s) {  // head-major layouts of C = H * N values
    return s == Shape{kSeq, H * N} || s == Shape{kSeq, H, N} || s == Shape{H * N} || s == Shape{H, N};
  };
  auto per_head = [&](const Shape& s) {
    return s == Shape{kSeq, H, 1} || s == Shape{H, 1} || s == Shape{kSeq, H} || s == Shape{H};
  };
  switch (op.kind) {
    case OpKind::wkv7:
    case OpKind::constant:
    case OpKind::lerp: return true;
    case OpKind::reshape: {
      const Shape &from = shape(op.operands[0]), &to = shape(op.results[0]);
      return (channels(from) && channels(to)) || (per_head(from) && per_head(to));
    }
    case OpKind::reduce_sum: return shape(op.operands[0]) == Shape{kSeq, H, N} || shape(op.operands[0]) == Shape{H, N};
    case OpKind::l2_norm:
    case OpKind::group_norm: return op.int_attr("groups") == H && channels(shape(op.operands[0]));
    default: return is_unary_elementwise(op.kind) || is_binary_elementwise(op.kind);
  }
}

}  // namespace

std::optional<HeadwiseWkv7> match_headwise_wkv7(const Op& region_op) {
  const Region& body = *region_op.region;
  std::span<const TensorType> types = body.values;
  const Op* wkv = nullptr;
  for (const Op& inner : body.ops) {
    if (inner.kind == OpKind::wkv7) {
      if (wkv != nullptr) return std::nullopt;
      wkv = &inner;
    } else if (!is_generatable(inner.kind)) {
      return std::nullopt;
    }
  }
  if (body.kind != "wkv" || wkv == nullptr || at(wkv->operands[6]) >= body.arguments) return std::nullopt;
  const Shape& state = types[at(wkv->operands[6])].shape;
  Dim H = state[0], N = state[1];
  if (N % 32 != 0 || N > 128) return std::nullopt;
  for (std::size_t i = 0; i < 6; ++i)
    if (types[at(wkv->operands[i])].shape != Shape{kSeq, H * N}) return std::nullopt;
  for (const Op& inner : body.ops)
    if (!keeps_heads_apart(inner, types, H, N)) return std::nullopt;
  return HeadwiseWkv7{wkv, H, N};
}

}  // namespace rwkvc::cuda
