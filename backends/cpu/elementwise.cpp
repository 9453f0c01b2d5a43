// Elementwise ops: unary maps, and binary ops and lerp with NumPy broadcasting.
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "backends/cpu/kernels.h"

namespace rwkvc::cpu {

namespace {

template <typename F>
void map(std::span<const float> x, std::span<float> out, F f) {
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = f(x[i]);
}

// Strides that read `shape` as if it had `out_shape`: dimensions it lacks (leading) or holds
// with extent 1 get stride 0, so every output index maps to the element it broadcasts from.
std::vector<std::int64_t> broadcast_strides(const Shape& shape, const Shape& out_shape) {
  if (shape.rank() > out_shape.rank())
    throw std::logic_error(fmt::format("cannot broadcast {} to {}", to_string(shape), to_string(out_shape)));
  std::size_t offset = out_shape.rank() - shape.rank();
  std::vector<std::int64_t> strides(out_shape.rank(), 0);
  std::int64_t stride = 1;
  for (std::size_t i = shape.rank(); i-- > 0;) {
    if (shape[i] != 1 && shape[i] != out_shape[offset + i])
      throw std::logic_error(fmt::format("cannot broadcast {} to {}", to_string(shape), to_string(out_shape)));
    if (shape[i] != 1) strides[offset + i] = stride;
    stride *= shape[i];
  }
  return strides;
}

// out[i] = f(operand_0[j_0], ..., operand_n[j_n]) where each j is the element operand n
// broadcasts to output element i.
template <std::size_t N, typename F>
void broadcast(const std::array<const TensorView*, N>& operands, std::span<float> out, const Shape& out_shape, F f) {
  bool same_shapes = std::all_of(operands.begin(), operands.end(), [&](const TensorView* v) { return v->shape == out_shape; });
  if (same_shapes) {  // the common case needs no index arithmetic
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::array<float, N> args;
      for (std::size_t n = 0; n < N; ++n) args[n] = operands[n]->data[i];
      out[i] = std::apply(f, args);
    }
    return;
  }

  std::size_t rank = out_shape.rank();
  std::array<std::vector<std::int64_t>, N> strides;
  for (std::size_t n = 0; n < N; ++n) strides[n] = broadcast_strides(operands[n]->shape, out_shape);
  std::vector<std::int64_t> position(rank, 0);  // the output index, one counter per dimension
  std::array<std::int64_t, N> offset{};          // each operand's element for that index
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::array<float, N> args;
    for (std::size_t n = 0; n < N; ++n) args[n] = operands[n]->data[static_cast<std::size_t>(offset[n])];
    out[i] = std::apply(f, args);
    // Advance the index like an odometer, innermost dimension first.
    for (std::size_t d = rank; d-- > 0;) {
      for (std::size_t n = 0; n < N; ++n) offset[n] += strides[n][d];
      if (++position[d] < out_shape[d]) break;
      for (std::size_t n = 0; n < N; ++n) offset[n] -= strides[n][d] * out_shape[d];
      position[d] = 0;
    }
  }
}

}  // namespace

void unary(OpKind kind, std::span<const float> x, std::span<float> out) {
  switch (kind) {
    case OpKind::exp: return map(x, out, [](float v) { return std::exp(v); });
    case OpKind::neg: return map(x, out, [](float v) { return -v; });
    case OpKind::sigmoid: return map(x, out, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
    case OpKind::tanh: return map(x, out, [](float v) { return std::tanh(v); });
    // log(1 + e^x) without overflowing e^x for large x.
    case OpKind::softplus:
      return map(x, out, [](float v) { return std::max(v, 0.0f) + std::log1p(std::exp(-std::abs(v))); });
    case OpKind::relu: return map(x, out, [](float v) { return v > 0.0f ? v : 0.0f; });
    case OpKind::square: return map(x, out, [](float v) { return v * v; });
    default: break;
  }
  throw std::logic_error(fmt::format("'{}' is not a unary elementwise op", op_name(kind)));
}

void binary(OpKind kind, const TensorView& a, const TensorView& b, std::span<float> out, const Shape& out_shape) {
  std::array operands{&a, &b};
  switch (kind) {
    case OpKind::add: return broadcast(operands, out, out_shape, [](float x, float y) { return x + y; });
    case OpKind::sub: return broadcast(operands, out, out_shape, [](float x, float y) { return x - y; });
    case OpKind::mul: return broadcast(operands, out, out_shape, [](float x, float y) { return x * y; });
    case OpKind::div: return broadcast(operands, out, out_shape, [](float x, float y) { return x / y; });
    default: break;
  }
  throw std::logic_error(fmt::format("'{}' is not a binary elementwise op", op_name(kind)));
}

void lerp(const TensorView& a, const TensorView& b, const TensorView& t, std::span<float> out, const Shape& out_shape) {
  broadcast(std::array{&a, &b, &t}, out, out_shape, [](float x, float y, float s) { return x + (y - x) * s; });
}

}  // namespace rwkvc::cpu
