#include "ir/op.h"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "ir/graph.h"

namespace rwkvc {

namespace {

constexpr std::array kOpInfos = {
#define RWKVC_OP_INFO(id, text, operands, results) OpInfo{OpKind::id, text, operands, results},
    RWKVC_OPS(RWKVC_OP_INFO)
#undef RWKVC_OP_INFO
};

constexpr AttrSpec kEps{"eps", AttrKind::floating};
constexpr AttrSpec kGroups{"groups", AttrKind::integer};
constexpr std::array kNormAttrs = {kEps};
constexpr std::array kGroupedNormAttrs = {kEps, kGroups};
constexpr std::array kMatmulAttrs = {AttrSpec{"transpose_b", AttrKind::integer}};
constexpr std::array kReshapeAttrs = {AttrSpec{"shape", AttrKind::ints}};
constexpr std::array kConstantAttrs = {AttrSpec{"value", AttrKind::floating}};

const AttrValue& find_attr(const Attrs& attrs, std::string_view key, OpKind kind) {
  auto it = attrs.find(key);
  if (it == attrs.end())
    throw std::logic_error(fmt::format("op '{}' has no attribute '{}'", op_name(kind), key));
  return it->second;
}

}  // namespace

constexpr OpInfo kRegionInfo{OpKind::region, "region", -1, -1};

const OpInfo& op_info(OpKind kind) {
  return kind == OpKind::region ? kRegionInfo : kOpInfos.at(static_cast<std::size_t>(kind));
}

std::span<const OpInfo> all_ops() { return kOpInfos; }

std::optional<OpKind> parse_op_kind(std::string_view name) {
  for (const OpInfo& info : kOpInfos)
    if (info.name == name) return info.kind;
  if (name == kRegionInfo.name) return OpKind::region;
  return std::nullopt;
}

bool is_unary_elementwise(OpKind kind) {
  switch (kind) {
    case OpKind::exp:
    case OpKind::neg:
    case OpKind::sigmoid:
    case OpKind::tanh:
    case OpKind::softplus:
    case OpKind::relu:
    case OpKind::square:
      return true;
    default:
      return false;
  }
}

bool is_binary_elementwise(OpKind kind) {
  switch (kind) {
    case OpKind::add:
    case OpKind::sub:
    case OpKind::mul:
    case OpKind::div:
      return true;
    default:
      return false;
  }
}

std::span<const AttrSpec> op_attr_specs(OpKind kind) {
  switch (kind) {
    case OpKind::layer_norm: return kNormAttrs;
    case OpKind::group_norm:
    case OpKind::l2_norm: return kGroupedNormAttrs;
    case OpKind::matmul: return kMatmulAttrs;
    case OpKind::reshape: return kReshapeAttrs;
    case OpKind::constant: return kConstantAttrs;
    default: return {};
  }
}

bool Op::operator==(const Op& other) const {
  if (kind != other.kind || operands != other.operands || results != other.results || attrs != other.attrs)
    return false;
  if (!region || !other.region) return region == other.region;
  return *region == *other.region;
}

std::int64_t Op::int_attr(std::string_view key) const {
  return std::get<std::int64_t>(find_attr(attrs, key, kind));
}

double Op::float_attr(std::string_view key) const {
  return std::get<double>(find_attr(attrs, key, kind));
}

const std::vector<std::int64_t>& Op::ints_attr(std::string_view key) const {
  return std::get<std::vector<std::int64_t>>(find_attr(attrs, key, kind));
}

}  // namespace rwkvc
