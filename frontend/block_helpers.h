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

// Every block: x += TimeMix(LN(x; ln1)); x += ChannelMix(LN(x; ln2)). The mixers take the
// normalised input and the layer index and return the residual branch.
template <typename TimeMix, typename ChannelMix>
ValueId residual_blocks(GraphBuilder& b, ValueId x, std::int64_t layers, std::int64_t channels, TimeMix time_mix,
                        ChannelMix channel_mix) {
  for (std::int64_t i = 0; i < layers; ++i) {
    std::string scope = "blocks." + std::to_string(i) + ".";
    b.set_scope(scope);
    ValueId att_out = time_mix(layer_norm(b, x, scope + "ln1", channels, "x.ln1"), i);
    b.set_scope(scope);
    x = b.add(x, att_out, "x.att");
    ValueId ffn_out = channel_mix(layer_norm(b, x, scope + "ln2", channels, "x.ln2"), i);
    b.set_scope(scope);
    x = b.add(x, ffn_out, "x.ffn");
  }
  return x;
}

// logits = LN(x; ln_out) head^T
inline ValueId head(GraphBuilder& b, ValueId x, std::int64_t vocab, std::int64_t channels) {
  b.set_scope("");
  ValueId normed = layer_norm(b, x, "ln_out", channels, "x.ln_out");
  return b.linear(normed, matrix_weight(b, "head.weight", vocab, channels), "logits");
}

}  // namespace rwkvc::block
