// Pieces every RWKV version's graph shares: weights declared by checkpoint name, LayerNorm,
// and the token shift that reads the previous token's row from the state.
// Builders declare values in separate statements (or braced lists), never in two arguments of
// one call, whose evaluation order C++ leaves open: the graph must not depend on the compiler.
#pragma once

#include <string>

#include "ir/builder.h"

namespace rwkvc::block {

inline constexpr double kLayerNormEps = 1e-5;

inline ValueId vector_weight(GraphBuilder& b, const std::string& key, std::int64_t size) {
  return b.weight(key, TensorType{DType::f32, Shape{size}});
}

inline ValueId matrix_weight(GraphBuilder& b, const std::string& key, std::int64_t rows, std::int64_t cols) {
  return b.weight(key, TensorType{DType::f32, Shape{rows, cols}});
}

// LN(x; prefix.weight, prefix.bias) over channels.
inline ValueId layer_norm(GraphBuilder& b, ValueId x, const std::string& prefix, std::int64_t channels,
                          const std::string& name) {
  ValueId weight = vector_weight(b, prefix + ".weight", channels);
  ValueId bias = vector_weight(b, prefix + ".bias", channels);
  return b.layer_norm(x, weight, bias, kLayerNormEps, name);
}

// The previous token's row for every position: row 0 comes from state `slot`, and the last row
// of x becomes that slot's new value.
inline ValueId token_shift(GraphBuilder& b, ValueId x, const std::string& slot, std::int64_t channels) {
  ValueId previous = b.state(slot, TensorType{DType::f32, Shape{channels}});
  b.state_out(slot, b.op1(OpKind::last_row, {x}, {}, "last"));
  return b.op1(OpKind::token_shift, {x, previous}, {}, "shifted");
}

// Embedding rows pass through blocks.0.ln0 before the first block.
inline ValueId embed(GraphBuilder& b, std::int64_t vocab, std::int64_t channels) {
  ValueId table = matrix_weight(b, "emb.weight", vocab, channels);
  ValueId x = b.op1(OpKind::embedding, {table, b.tokens()}, {}, "x.emb");
  return layer_norm(b, x, "blocks.0.ln0", channels, "x.ln0");
}

// logits = LN(x; ln_out) head^T
inline ValueId head(GraphBuilder& b, ValueId x, std::int64_t vocab, std::int64_t channels) {
  b.set_scope("");
  ValueId normed = layer_norm(b, x, "ln_out", channels, "x.ln_out");
  return b.linear(normed, matrix_weight(b, "head.weight", vocab, channels), "logits");
}

}  // namespace rwkvc::block
