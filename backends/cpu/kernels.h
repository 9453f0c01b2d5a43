// The CPU reference's kernels: plain loops over row-major f32 spans, one function per op
// (semantics: docs/ir.md). Shapes are concrete (T already bound) and were checked by the
// verifier; `out` never aliases an input, and every kernel writes all of it.
#pragma once

#include <cstdint>
#include <span>

#include "ir/op.h"
#include "ir/shape.h"

namespace rwkvc::cpu {

// An operand whose shape matters (broadcasting).
struct TensorView {
  std::span<const float> data;
  Shape shape;
};

// elementwise.cpp
// exp, neg, sigmoid, tanh, softplus, relu, square.
void unary(OpKind kind, std::span<const float> x, std::span<float> out);
// add, sub, mul, div; operands broadcast like NumPy to out_shape.
void binary(OpKind kind, const TensorView& a, const TensorView& b, std::span<float> out, const Shape& out_shape);
// a + (b - a) * t, broadcasting.
void lerp(const TensorView& a, const TensorView& b, const TensorView& t, std::span<float> out, const Shape& out_shape);

// norms.cpp: x is a stack of rows of `columns` elements.
void layer_norm(std::span<const float> x, std::int64_t columns, std::span<const float> weight,
                std::span<const float> bias, float eps, std::span<float> out);
void group_norm(std::span<const float> x, std::int64_t channels, std::int64_t groups, std::span<const float> weight,
                std::span<const float> bias, float eps, std::span<float> out);
void l2_norm(std::span<const float> x, std::int64_t columns, std::int64_t groups, float eps, std::span<float> out);
void reduce_sum(std::span<const float> x, std::int64_t columns, std::span<float> out);

// matmul.cpp: a is [M, K]; b is [N, K] when transpose_b (out = a b^T), else [K, N] (out = a b);
// out is [M, N]. Threaded over output columns.
void matmul(std::span<const float> a, std::span<const float> b, std::int64_t k, std::int64_t n, bool transpose_b,
            std::span<float> out);

// sequence.cpp
// out[t] = table[tokens[t]]; throws std::invalid_argument for a token outside the table.
void embedding(std::span<const float> table, std::int64_t columns, std::span<const std::int32_t> tokens,
               std::span<float> out);
// x is [T, C] with C = previous.size(): out[0] = previous, out[t] = x[t - 1].
void token_shift(std::span<const float> x, std::span<const float> previous, std::span<float> out);
// out = the last of the rows of out.size() elements that make up x.
void last_row(std::span<const float> x, std::span<float> out);
// Row-major data is unchanged by a reshape: a copy.
void reshape(std::span<const float> x, std::span<float> out);

// wkv4.cpp: k, v, y are [T, C]; w, u and the state (aa, bb, pp) are [C]. The state is updated in
// place to its value after the last token.
struct Wkv4State {
  std::span<float> aa, bb, pp;
};
void wkv4(std::span<const float> w, std::span<const float> u, std::span<const float> k, std::span<const float> v,
          Wkv4State state, std::span<float> y);

// wkv7.cpp: every sequence is [T, H * N]; state is [H, N, N] (rows index v, columns index k) and
// is updated in place to its value after the last token.
struct Wkv7Sequences {
  std::span<const float> r, w, k, v, a, b;
};
void wkv7(const Wkv7Sequences& in, std::int64_t head_size, std::span<float> state, std::span<float> y);

}  // namespace rwkvc::cpu
