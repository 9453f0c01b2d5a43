// RWKV-7 ("x070") as IR; docs/equations.md, section RWKV-7, gives each line's equation.
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "frontend/block_helpers.h"
#include "frontend/graph_builders.h"

namespace rwkvc {

namespace {

constexpr double kGroupNormEps = 64e-5;
constexpr double kL2NormEps = 1e-12;

struct Rwkv7Builder {
  const ModelConfig& cfg;
  GraphBuilder b{"rwkv7"};
  ValueId v_first = kNoValue;
  std::int64_t C = cfg.embd;
  std::int64_t H = cfg.heads();
  std::int64_t N = cfg.head_size;

  ValueId vec(const std::string& key) { return block::vector_weight(b, key, C); }
  ValueId mat(const std::string& key, std::int64_t rows, std::int64_t cols) {
    return block::matrix_weight(b, key, rows, cols);
  }
  // x @ first @ second: a LoRA with factors stored [C, rank] and [rank, C].
  ValueId lora(ValueId x, const std::string& prefix, std::int64_t rank, std::optional<OpKind> activation,
               const std::string& name) {
    ValueId hidden = b.matmul(x, mat(prefix + "1", C, rank), name + ".down");
    if (activation) hidden = b.unary(*activation, hidden, name + ".act");
    return b.matmul(hidden, mat(prefix + "2", rank, C), name + ".up");
  }

  ValueId time_mix(ValueId x, std::int64_t layer) {
    std::string p = fmt::format("blocks.{}.att.", layer);
    b.set_scope(p);
    ValueId shifted = block::token_shift(b, x, p + "shift", C);
    auto mixed = [&](const char* which) { return b.lerp(x, shifted, vec(p + "x_" + which), fmt::format("x{}", which)); };
    ValueId xr = mixed("r"), xw = mixed("w"), xk = mixed("k"), xv = mixed("v"), xa = mixed("a"), xg = mixed("g");

    ValueId r = b.linear(xr, mat(p + "receptance.weight", C, C), "r");
    ValueId k = b.linear(xk, mat(p + "key.weight", C, C), "k");
    ValueId v = b.linear(xv, mat(p + "value.weight", C, C), "v");

    // decay = exp(-e^-0.5 * sigmoid(w0 + tanh(xw w1) w2))
    ValueId w0 = vec(p + "w0");
    ValueId w = b.add(w0, lora(xw, p + "w", cfg.decay_lora, OpKind::tanh, "w.lora"), "w");
    ValueId neg_exp_half = b.constant(-std::exp(-0.5), "neg_exp_half");
    ValueId decay = b.unary(OpKind::exp, b.mul(b.unary(OpKind::sigmoid, w), neg_exp_half), "decay");
    ValueId a0 = vec(p + "a0");
    ValueId a = b.unary(OpKind::sigmoid, b.add(a0, lora(xa, p + "a", cfg.aaa_lora, std::nullopt, "a.lora")), "a");
    ValueId g = lora(xg, p + "g", cfg.gate_lora, OpKind::sigmoid, "g");

    ValueId kk = b.l2_norm(b.mul(k, vec(p + "k_k")), H, kL2NormEps, "kk");
    ValueId one = b.constant(1.0, "one");
    ValueId k_a = vec(p + "k_a");
    k = b.mul(k, b.add(one, b.mul(b.sub(a, one), k_a)), "k.gated");

    if (layer == 0) {
      v_first = v;
    } else {
      ValueId v0 = vec(p + "v0");
      ValueId gate = b.unary(OpKind::sigmoid, b.add(v0, lora(xv, p + "v", cfg.mv_lora, std::nullopt, "v.lora")));
      v = b.lerp(v, v_first, gate, "v.mixed");
    }

    ValueId state = b.state(p + "wkv", TensorType{DType::f32, Shape{H, N, N}});
    auto wkv = b.op(OpKind::wkv7, {r, decay, k, v, b.unary(OpKind::neg, kk, "kk.neg"), b.mul(kk, a, "kk.a"), state}, {},
                    {"wkv", "wkv.state"});
    b.state_out(p + "wkv", wkv[1]);

    ValueId ln_x_weight = vec(p + "ln_x.weight");
    ValueId ln_x_bias = vec(p + "ln_x.bias");
    ValueId y = b.group_norm(wkv[0], ln_x_weight, ln_x_bias, H, kGroupNormEps, "y.norm");
    // The bonus term: per head, (sum of r*k*r_k) * v.
    ValueId r_k = b.reshape(b.weight(p + "r_k", TensorType{DType::f32, Shape{H, N}}), {C});
    ValueId rk = b.mul(b.mul(r, k), r_k, "rk");
    ValueId rk_sum = b.op1(OpKind::reduce_sum, {b.reshape(rk, {kSeq, H, N})}, {}, "rk.sum");
    ValueId bonus = b.reshape(b.mul(rk_sum, b.reshape(v, {kSeq, H, N})), {kSeq, C}, "bonus");
    y = b.add(y, bonus, "y");
    ValueId gated = b.mul(y, g, "y.gated");
    return b.linear(gated, mat(p + "output.weight", C, C), "out");
  }

  ValueId channel_mix(ValueId x, std::int64_t layer) {
    std::string p = fmt::format("blocks.{}.ffn.", layer);
    b.set_scope(p);
    ValueId shifted = block::token_shift(b, x, p + "shift", C);
    ValueId xk = b.lerp(x, shifted, vec(p + "x_k"), "xk");
    ValueId hidden = b.unary(OpKind::square, b.unary(OpKind::relu, b.linear(xk, mat(p + "key.weight", cfg.ffn, C))), "k");
    return b.linear(hidden, mat(p + "value.weight", C, cfg.ffn), "out");
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

Graph build_rwkv7_graph(const ModelConfig& config) { return Rwkv7Builder{config}.build(); }

}  // namespace rwkvc
