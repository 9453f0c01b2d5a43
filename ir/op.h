// The op set: every op is declared once here, with its operand and result counts and its
// attributes; ir/op_types.cpp infers its result types (the verifier and the builder share it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ir/shape.h"

namespace rwkvc {

// X(enum name, text name, operands (-1: any), results)
// Elementwise binary ops broadcast like NumPy. docs/ir.md gives each op's semantics.
#define RWKVC_OPS(X)                  \
  X(embedding, "embedding", 2, 1)     \
  X(layer_norm, "layer_norm", 3, 1)   \
  X(group_norm, "group_norm", 3, 1)   \
  X(matmul, "matmul", 2, 1)           \
  X(token_shift, "token_shift", 2, 1) \
  X(last_row, "last_row", 1, 1)       \
  X(lerp, "lerp", 3, 1)               \
  X(add, "add", 2, 1)                 \
  X(sub, "sub", 2, 1)                 \
  X(mul, "mul", 2, 1)                 \
  X(div, "div", 2, 1)                 \
  X(exp, "exp", 1, 1)                 \
  X(neg, "neg", 1, 1)                 \
  X(sigmoid, "sigmoid", 1, 1)         \
  X(tanh, "tanh", 1, 1)               \
  X(softplus, "softplus", 1, 1)       \
  X(relu, "relu", 1, 1)               \
  X(square, "square", 1, 1)           \
  X(l2_norm, "l2_norm", 1, 1)         \
  X(reduce_sum, "reduce_sum", 1, 1)   \
  X(reshape, "reshape", 1, 1)         \
  X(constant, "constant", 0, 1)       \
  X(wkv4, "wkv4", 7, 4)               \
  X(wkv7, "wkv7", 7, 2)

// The primitive ops of the table, then `region`: a kernel region (a fused op that holds its
// body, struct Region in ir/graph.h) with any number of operands and results, typed by its body.
enum class OpKind {
#define RWKVC_OP_ENUM(id, text, operands, results) id,
  RWKVC_OPS(RWKVC_OP_ENUM)
#undef RWKVC_OP_ENUM
  region
};

struct OpInfo {
  OpKind kind;
  std::string_view name;
  int num_operands;
  int num_results;
};

const OpInfo& op_info(OpKind kind);  // region: operands and results -1 (any)
// The primitive ops of the table (not `region`, whose types come from its body).
std::span<const OpInfo> all_ops();
std::optional<OpKind> parse_op_kind(std::string_view name);
inline std::string_view op_name(OpKind kind) { return op_info(kind).name; }

bool is_unary_elementwise(OpKind kind);
bool is_binary_elementwise(OpKind kind);

// Attribute values: integers, floats (stored as double, printed to round-trip exactly), and
// integer lists (shapes; kSeq allowed).
using AttrValue = std::variant<std::int64_t, double, std::vector<std::int64_t>>;
using Attrs = std::map<std::string, AttrValue, std::less<>>;

using ValueId = std::int32_t;
inline constexpr ValueId kNoValue = -1;

struct Region;

struct Op {
  OpKind kind;
  std::vector<ValueId> operands;
  std::vector<ValueId> results;
  Attrs attrs;
  // The body of a `region` op (null for every other op). Shared and immutable, so copying a
  // graph is cheap; a pass that changes a body makes a new one.
  std::shared_ptr<const Region> region = nullptr;

  std::int64_t int_attr(std::string_view key) const;
  double float_attr(std::string_view key) const;
  const std::vector<std::int64_t>& ints_attr(std::string_view key) const;

  // Compares region bodies by content, not by pointer.
  bool operator==(const Op& other) const;
};

// Attributes each op requires (and accepts: no others), with their kinds.
enum class AttrKind { integer, floating, ints };
struct AttrSpec {
  std::string_view key;
  AttrKind kind;
};
std::span<const AttrSpec> op_attr_specs(OpKind kind);

// Infers the result types of `kind` applied to operands of the given types and attributes.
// Returns an error message (without the op's name: the caller adds context) on mismatch.
struct InferredTypes {
  std::vector<TensorType> types;
  std::string error;  // empty on success
};
InferredTypes infer_result_types(OpKind kind, std::span<const TensorType> operands, const Attrs& attrs);

}  // namespace rwkvc
