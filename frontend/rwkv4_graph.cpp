// RWKV-4 as IR; docs/equations.md, section RWKV-4, gives each line's equation.
#include <fmt/format.h>

#include "frontend/block_helpers.h"
#include "frontend/graph_builders.h"

namespace rwkvc {

namespace {

// RWKV-4's pp slot starts "minus infinity": the first token's e^(pp - q) must vanish.
constexpr double kEmptyMaxExponent = -1e30;

struct Rwkv4Builder {
  const ModelConfig& cfg;
  GraphBuilder b{"rwkv4"};
  std::int64_t C = cfg.embd;

  ValueId vec(const std::string& key) { return block::vector_weight(b, key, C); }
  ValueId mat(const std::string& key, std::int64_t rows, std::int64_t cols) {
    return block::matrix_weight(b, key, rows, cols);
  }
  // x*mix + x_prev*(1 - mix), written as the lerp from x_prev towards x.
  ValueId mixed(ValueId x, ValueId shifted, const std::string& key, const std::string& name) {
    return b.lerp(shifted, x, vec(key), name);
  }

  ValueId time_mix(ValueId x, std::int64_t layer) {
    std::string p = fmt::format("blocks.{}.att.", layer);
    b.set_scope(p);
    ValueId shifted = block::token_shift(b, x, p + "shift", C);
    ValueId xk = mixed(x, shifted, p + "time_mix_k", "xk");
    ValueId xv = mixed(x, shifted, p + "time_mix_v", "xv");
    ValueId xr = mixed(x, shifted, p + "time_mix_r", "xr");
    ValueId r = b.unary(OpKind::sigmoid, b.linear(xr, mat(p + "receptance.weight", C, C)), "r");
    ValueId k = b.linear(xk, mat(p + "key.weight", C, C), "k");
    ValueId v = b.linear(xv, mat(p + "value.weight", C, C), "v");

    ValueId w = b.unary(OpKind::neg, b.unary(OpKind::exp, vec(p + "time_decay")), "w");
    ValueId u = vec(p + "time_first");
    TensorType row{DType::f32, Shape{C}};
    ValueId aa = b.state(p + "aa", row);
    ValueId bb = b.state(p + "bb", row);
    ValueId pp = b.state(p + "pp", row, kEmptyMaxExponent);
    auto wkv = b.op(OpKind::wkv4, {w, u, k, v, aa, bb, pp}, {}, {"wkv", "aa.next", "bb.next", "pp.next"});
    b.state_out(p + "aa", wkv[1]);
    b.state_out(p + "bb", wkv[2]);
    b.state_out(p + "pp", wkv[3]);
    ValueId gated = b.mul(r, wkv[0], "rwkv");
    return b.linear(gated, mat(p + "output.weight", C, C), "out");
  }

  ValueId channel_mix(ValueId x, std::int64_t layer) {
    std::string p = fmt::format("blocks.{}.ffn.", layer);
    b.set_scope(p);
    ValueId shifted = block::token_shift(b, x, p + "shift", C);
    ValueId xk = mixed(x, shifted, p + "time_mix_k", "xk");
    ValueId xr = mixed(x, shifted, p + "time_mix_r", "xr");
    ValueId r = b.unary(OpKind::sigmoid, b.linear(xr, mat(p + "receptance.weight", C, C)), "r");
    ValueId hidden = b.unary(OpKind::square, b.unary(OpKind::relu, b.linear(xk, mat(p + "key.weight", cfg.ffn, C))), "k");
    return b.mul(r, b.linear(hidden, mat(p + "value.weight", C, cfg.ffn)), "out");
  }

  Graph build() {
    ValueId x = block::embed(b, cfg.vocab, C);
    x = block::residual_blocks(
        b, x, cfg.layers, C, [&](ValueId in, std::int64_t i) { return time_mix(in, i); },
        [&](ValueId in, std::int64_t i) { return channel_mix(in, i); });
    b.set_logits(block::head(b, x, cfg.vocab, C));
    return b.finish();
  }
};

}  // namespace

Graph build_rwkv4_graph(const ModelConfig& config) { return Rwkv4Builder{config}.build(); }

}  // namespace rwkvc
