// Result-type inference for every op: the single statement of each op's typing rule.
#include <algorithm>

#include <fmt/format.h>

#include "ir/op.h"

namespace rwkvc {

namespace {

struct TypeError {
  std::string message;
};

[[noreturn]] void fail(std::string message) { throw TypeError{std::move(message)}; }

template <typename... Args>
[[noreturn]] void failf(fmt::format_string<Args...> format, Args&&... args) {
  fail(fmt::format(format, std::forward<Args>(args)...));
}

void expect_rank(const TensorType& t, std::size_t rank, std::string_view what) {
  if (t.shape.rank() != rank) failf("{} must have rank {}, got {}", what, rank, to_string(t));
}

void expect_float(const TensorType& t, std::string_view what) {
  if (!is_float(t.dtype)) failf("{} must be a float tensor, got {}", what, to_string(t));
}

void expect_vector_of(const TensorType& t, Dim size, std::string_view what) {
  expect_float(t, what);
  if (t.shape != Shape{size})
    failf("{} must have shape [{}], got {}", what, size == kSeq ? "T" : std::to_string(size), to_string(t));
}

std::int64_t positive_int_attr(const Attrs& attrs, std::string_view key) {
  auto value = std::get<std::int64_t>(attrs.find(key)->second);
  if (value <= 0) failf("attribute '{}' must be positive, got {}", key, value);
  return value;
}

void expect_positive_eps(const Attrs& attrs) {
  if (!(std::get<double>(attrs.find("eps")->second) > 0)) fail("attribute 'eps' must be positive");
}

// NumPy broadcasting, aligned at the trailing dimension; T only pairs with T or 1.
Shape broadcast(const Shape& a, const Shape& b) {
  std::size_t rank = std::max(a.rank(), b.rank());
  std::vector<Dim> out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    Dim da = i < rank - a.rank() ? 1 : a[i - (rank - a.rank())];
    Dim db = i < rank - b.rank() ? 1 : b[i - (rank - b.rank())];
    if (da == db || db == 1) out[i] = da;
    else if (da == 1) out[i] = db;
    else failf("shapes {} and {} do not broadcast", to_string(a), to_string(b));
  }
  return Shape(std::move(out));
}

TensorType elementwise(std::span<const TensorType> operands) {
  TensorType result = operands[0];
  for (std::size_t i = 0; i < operands.size(); ++i) {
    expect_float(operands[i], fmt::format("operand {}", i));
    if (operands[i].dtype != result.dtype)
      failf("operands must share one element type, got {} and {}", to_string(operands[0]), to_string(operands[i]));
    result.shape = broadcast(result.shape, operands[i].shape);
  }
  return result;
}

std::vector<TensorType> infer(OpKind kind, std::span<const TensorType> in, const Attrs& attrs) {
  if (is_unary_elementwise(kind)) {
    expect_float(in[0], "operand 0");
    return {in[0]};
  }
  if (is_binary_elementwise(kind) || kind == OpKind::lerp) return {elementwise(in)};

  switch (kind) {
    case OpKind::embedding: {
      expect_float(in[0], "table (operand 0)");
      expect_rank(in[0], 2, "table (operand 0)");
      if (in[1].dtype != DType::i32) failf("tokens (operand 1) must be i32, got {}", to_string(in[1]));
      expect_rank(in[1], 1, "tokens (operand 1)");
      return {TensorType{DType::f32, Shape{in[1].shape[0], in[0].shape[1]}}};
    }
    case OpKind::layer_norm: {
      expect_float(in[0], "input (operand 0)");
      if (in[0].shape.rank() == 0) fail("input (operand 0) must have rank >= 1");
      expect_vector_of(in[1], in[0].shape.back(), "weight (operand 1)");
      expect_vector_of(in[2], in[0].shape.back(), "bias (operand 2)");
      expect_positive_eps(attrs);
      return {in[0]};
    }
    case OpKind::group_norm: {
      expect_float(in[0], "input (operand 0)");
      expect_rank(in[0], 2, "input (operand 0)");
      Dim channels = in[0].shape[1];
      expect_vector_of(in[1], channels, "weight (operand 1)");
      expect_vector_of(in[2], channels, "bias (operand 2)");
      auto groups = positive_int_attr(attrs, "groups");
      if (channels % groups != 0) failf("{} channels do not split into {} groups", channels, groups);
      expect_positive_eps(attrs);
      return {in[0]};
    }
    case OpKind::matmul: {
      expect_float(in[0], "input (operand 0)");
      expect_float(in[1], "matrix (operand 1)");
      if (in[0].shape.rank() == 0) fail("input (operand 0) must have rank >= 1");
      expect_rank(in[1], 2, "matrix (operand 1)");
      bool transpose_b = std::get<std::int64_t>(attrs.find("transpose_b")->second) != 0;
      Dim inner = transpose_b ? in[1].shape[1] : in[1].shape[0];
      Dim outer = transpose_b ? in[1].shape[0] : in[1].shape[1];
      if (inner != in[0].shape.back())
        failf("inner dimensions differ: input {} and matrix {}{}", to_string(in[0].shape), to_string(in[1].shape),
              transpose_b ? " (transposed)" : "");
      std::vector<Dim> dims = in[0].shape.dims();
      dims.back() = outer;
      return {TensorType{in[0].dtype, Shape(std::move(dims))}};
    }
    case OpKind::token_shift: {
      expect_float(in[0], "input (operand 0)");
      expect_rank(in[0], 2, "input (operand 0)");
      if (in[0].shape[0] != kSeq) failf("input (operand 0) must be [T, C], got {}", to_string(in[0]));
      if (in[1] != TensorType{in[0].dtype, Shape{in[0].shape[1]}})
        failf("previous row (operand 1) must be {}[{}], got {}", dtype_name(in[0].dtype), in[0].shape[1], to_string(in[1]));
      return {in[0]};
    }
    case OpKind::last_row: {
      if (in[0].shape.rank() == 0 || in[0].shape[0] != kSeq)
        failf("input (operand 0) must have the sequence as its first dimension, got {}", to_string(in[0]));
      return {TensorType{in[0].dtype, Shape(std::vector<Dim>(in[0].shape.dims().begin() + 1, in[0].shape.dims().end()))}};
    }
    case OpKind::l2_norm: {
      expect_float(in[0], "input (operand 0)");
      if (in[0].shape.rank() == 0) fail("input (operand 0) must have rank >= 1");
      auto groups = positive_int_attr(attrs, "groups");
      if (in[0].shape.back() % groups != 0) failf("{} channels do not split into {} groups", in[0].shape.back(), groups);
      expect_positive_eps(attrs);
      return {in[0]};
    }
    case OpKind::reduce_sum: {
      expect_float(in[0], "input (operand 0)");
      if (in[0].shape.rank() == 0) fail("input (operand 0) must have rank >= 1");
      TensorType out = in[0];
      out.shape[out.shape.rank() - 1] = 1;
      return {out};
    }
    case OpKind::reshape: {
      Shape target(std::get<std::vector<std::int64_t>>(attrs.find("shape")->second));
      auto seq_dims = [](const Shape& s) { return std::count(s.dims().begin(), s.dims().end(), kSeq); };
      for (Dim d : target.dims())
        if (d < 0 && d != kSeq) failf("target shape {} has a negative dimension", to_string(target));
      if (seq_dims(target) != seq_dims(in[0].shape) || target.numel() != in[0].shape.numel())
        failf("cannot reshape {} to {}", to_string(in[0].shape), to_string(target));
      return {TensorType{in[0].dtype, target}};
    }
    case OpKind::constant:
      return {TensorType{DType::f32, Shape{}}};
    case OpKind::region:
      fail("a region's result types come from its body, not from a typing rule");
    case OpKind::wkv4: {
      // (w, u, k, v, aa, bb, pp) -> (y, aa, bb, pp)
      expect_rank(in[2], 2, "k (operand 2)");
      if (in[2].dtype != DType::f32) failf("k (operand 2) must be f32, got {}", to_string(in[2]));
      Dim channels = in[2].shape[1];
      TensorType sequence{DType::f32, Shape{kSeq, channels}};
      if (in[2] != sequence || in[3] != sequence)
        failf("k and v (operands 2, 3) must both be f32[T, {}], got {} and {}", channels, to_string(in[2]), to_string(in[3]));
      const char* names[] = {"w (operand 0)", "u (operand 1)", "", "", "aa (operand 4)", "bb (operand 5)", "pp (operand 6)"};
      TensorType row{DType::f32, Shape{channels}};
      for (int i : {0, 1, 4, 5, 6})
        if (in[i] != row) failf("{} must be f32[{}], got {}", names[i], channels, to_string(in[i]));
      return {sequence, row, row, row};
    }
    case OpKind::wkv7: {
      // (r, w, k, v, a, b, state[H, N, N]) -> (y, state)
      const TensorType& state = in[6];
      expect_rank(state, 3, "state (operand 6)");
      if (state.dtype != DType::f32 || state.shape[1] != state.shape[2])
        failf("state (operand 6) must be f32[H, N, N], got {}", to_string(state));
      Dim channels = state.shape[0] * state.shape[1];
      TensorType sequence{DType::f32, Shape{kSeq, channels}};
      const char* names[] = {"r", "w", "k", "v", "a", "b"};
      for (int i = 0; i < 6; ++i)
        if (in[i] != sequence)
          failf("{} (operand {}) must be f32[T, {}] to match the state {}, got {}", names[i], i, channels,
                to_string(state.shape), to_string(in[i]));
      return {sequence, state};
    }
    default:
      break;
  }
  failf("no typing rule");
}

}  // namespace

InferredTypes infer_result_types(OpKind kind, std::span<const TensorType> operands, const Attrs& attrs) {
  const OpInfo& info = op_info(kind);
  if (info.num_operands >= 0 && operands.size() != static_cast<std::size_t>(info.num_operands))
    return {{}, fmt::format("expects {} operands, got {}", info.num_operands, operands.size())};
  for (const AttrSpec& spec : op_attr_specs(kind)) {
    auto it = attrs.find(spec.key);
    if (it == attrs.end()) return {{}, fmt::format("missing attribute '{}'", spec.key)};
    bool kind_ok = (spec.kind == AttrKind::integer && std::holds_alternative<std::int64_t>(it->second)) ||
                   (spec.kind == AttrKind::floating && std::holds_alternative<double>(it->second)) ||
                   (spec.kind == AttrKind::ints && std::holds_alternative<std::vector<std::int64_t>>(it->second));
    if (!kind_ok) return {{}, fmt::format("attribute '{}' has the wrong kind", spec.key)};
  }
  if (attrs.size() != op_attr_specs(kind).size()) {
    for (const auto& [key, value] : attrs) {
      bool known = false;
      for (const AttrSpec& spec : op_attr_specs(kind)) known |= spec.key == key;
      if (!known) return {{}, fmt::format("unknown attribute '{}'", key)};
    }
  }
  try {
    return {infer(kind, operands, attrs), {}};
  } catch (const TypeError& e) {
    return {{}, e.message};
  }
}

}  // namespace rwkvc
