#include "bench/kernel_graphs.h"

#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "frontend/random.h"
#include "ir/builder.h"
#include "ir/verifier.h"

namespace rwkvc::bench {

namespace {

constexpr std::int64_t kVocab = 64;  // embedding rows: small, so the tables stay in cache

HostTensor random_tensor(Shape shape, std::uint64_t seed, double low, double high, DType dtype = DType::f32) {
  Rng rng(seed);
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (float& v : values) v = static_cast<float>(rng.uniform(low, high));
  return HostTensor::from_f32(std::move(shape), std::move(values)).converted(dtype);
}

// Removes a value no op or declaration refers to any more, renumbering the later ones.
void erase_value(Graph& graph, ValueId gone) {
  auto renumber = [gone](ValueId& id) {
    if (id > gone) --id;
  };
  graph.values.erase(graph.values.begin() + gone);
  for (Op& op : graph.ops) {
    for (ValueId& id : op.operands) renumber(id);
    for (ValueId& id : op.results) renumber(id);
  }
  for (WeightDecl& w : graph.weights) renumber(w.value);
  for (StateDecl& s : graph.states) renumber(s.input), renumber(s.output);
  renumber(graph.tokens);
  renumber(graph.logits);
}

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

// An embedding of T tokens from a random [kVocab, width] table with values in [low, high).
ValueId embedded(GraphBuilder& b, KernelGraph& kg, ValueId tokens, const std::string& key, std::int64_t width,
                 double low, double high) {
  ValueId table = b.weight(key, f32(Shape{kVocab, width}));
  kg.weights[key] = random_tensor(Shape{kVocab, width}, std::hash<std::string>{}(key), low, high);
  return b.op1(OpKind::embedding, {table, tokens}, {}, key + ".x");
}

KernelGraph matmul_graph(std::string name, std::int64_t t, std::int64_t n, std::int64_t k, DType dtype) {
  KernelGraph kg{std::move(name), {}, {}, t, t > 1, 0, 0};
  GraphBuilder b(kg.name);
  ValueId x = embedded(b, kg, b.tokens(), "x", k, -1, 1);
  ValueId w = b.weight("w", TensorType{dtype, Shape{n, k}});
  kg.weights["w"] = random_tensor(Shape{n, k}, 7, -0.1, 0.1, dtype);
  b.set_logits(b.linear(x, w, "y"));
  kg.graph = b.finish();
  const double tt = static_cast<double>(t), nn = static_cast<double>(n), kk = static_cast<double>(k);
  kg.bytes = nn * kk * static_cast<double>(dtype_size(dtype)) + 4 * tt * (kk + nn);
  kg.flops = 2 * tt * nn * kk;
  return kg;
}

}  // namespace

KernelGraph gemv_graph(std::int64_t n, std::int64_t k, DType weight_dtype) {
  return matmul_graph(fmt::format("gemv/{}x{}/{}", n, k, dtype_name(weight_dtype)), 1, n, k, weight_dtype);
}

KernelGraph gemm_graph(std::int64_t t, std::int64_t n, std::int64_t k, DType weight_dtype) {
  return matmul_graph(fmt::format("gemm/T{}/{}x{}/{}", t, n, k, dtype_name(weight_dtype)), t, n, k, weight_dtype);
}

KernelGraph wkv7_graph(std::int64_t t, std::int64_t heads, std::int64_t head_size) {
  const std::int64_t c = heads * head_size;
  KernelGraph kg{fmt::format("wkv7/T{}/H{}xN{}", t, heads, head_size), {}, {}, t, false, 0, 0};
  GraphBuilder b(kg.name);
  ValueId tokens = b.tokens();
  ValueId r = embedded(b, kg, tokens, "r", c, -1, 1);
  ValueId w = embedded(b, kg, tokens, "w", c, 0.9, 0.999);  // decay factors in (0, 1)
  ValueId k = embedded(b, kg, tokens, "k", c, -0.2, 0.2);
  ValueId v = embedded(b, kg, tokens, "v", c, -1, 1);
  ValueId a = embedded(b, kg, tokens, "a", c, -0.1, 0.1);
  ValueId bb = embedded(b, kg, tokens, "b", c, -0.1, 0.1);
  ValueId s = b.state("wkv", f32(Shape{heads, head_size, head_size}));
  std::vector<ValueId> out = b.op(OpKind::wkv7, {r, w, k, v, a, bb, s}, {}, {"y", "wkv.out"});
  b.state_out("wkv", out[1]);
  b.set_logits(out[0]);
  kg.graph = b.finish();
  const double tt = static_cast<double>(t), state = static_cast<double>(c * head_size);
  kg.bytes = 4 * (2 * state + 7 * tt * static_cast<double>(c));  // state in and out; six inputs and y
  kg.flops = 9 * state * tt;  // per state element and token: S.a (2), update (5), S.r (2)
  return kg;
}

KernelGraph wkv4_graph(std::int64_t t, std::int64_t channels) {
  KernelGraph kg{fmt::format("wkv4/T{}/C{}", t, channels), {}, {}, t, false, 0, 0};
  GraphBuilder b(kg.name);
  ValueId tokens = b.tokens();
  ValueId k = embedded(b, kg, tokens, "k", channels, -1, 1);
  ValueId v = embedded(b, kg, tokens, "v", channels, -1, 1);
  ValueId w = b.weight("w", f32(Shape{channels}));
  ValueId u = b.weight("u", f32(Shape{channels}));
  kg.weights["w"] = random_tensor(Shape{channels}, 11, -2, -0.01);
  kg.weights["u"] = random_tensor(Shape{channels}, 12, -1, 1);
  ValueId aa = b.state("aa", f32(Shape{channels}));
  ValueId bbs = b.state("bb", f32(Shape{channels}));
  ValueId pp = b.state("pp", f32(Shape{channels}), -1e30);
  std::vector<ValueId> out = b.op(OpKind::wkv4, {w, u, k, v, aa, bbs, pp}, {}, {"y", "aa.out", "bb.out", "pp.out"});
  b.state_out("aa", out[1]);
  b.state_out("bb", out[2]);
  b.state_out("pp", out[3]);
  b.set_logits(out[0]);
  kg.graph = b.finish();
  const double tt = static_cast<double>(t), cc = static_cast<double>(channels);
  kg.bytes = 4 * (8 * cc + 3 * tt * cc);  // w, u, state in and out; k, v, y
  kg.flops = 20 * tt * cc;                // about 20 operations a channel and token, exp counted as one
  return kg;
}

KernelGraph token_shift_mix_graph(std::int64_t t, std::int64_t channels) {
  KernelGraph kg{fmt::format("token_shift_mix/T{}/C{}", t, channels), {}, {}, t, false, 0, 0};
  GraphBuilder b(kg.name);
  ValueId x = embedded(b, kg, b.tokens(), "x", channels, -1, 1);
  ValueId prev = b.state("shift", f32(Shape{channels}));
  const std::vector<std::string> names{"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
  std::vector<ValueId> mixes;
  for (std::size_t i = 0; i < names.size(); ++i) {
    mixes.push_back(b.weight(names[i], f32(Shape{channels})));
    kg.weights[names[i]] = random_tensor(Shape{channels}, 20 + i, 0, 1);
  }
  // The unfused ops, whose values the region then produces instead.
  ValueId last = b.op1(OpKind::last_row, {x}, {}, "last");
  ValueId shifted = b.op1(OpKind::token_shift, {x, prev}, {}, "shifted");
  std::vector<ValueId> mixed;
  for (std::size_t i = 0; i < mixes.size(); ++i) mixed.push_back(b.lerp(x, shifted, mixes[i], "mixed." + names[i]));
  b.state_out("shift", last);
  b.set_logits(mixed[0]);
  Graph graph = b.finish();

  // The region fuse-token-shift makes of those ops: arguments x, prev and the six mixes.
  auto region = std::make_shared<Region>();
  region->kind = "token_shift_mix";
  region->arguments = 2 + mixes.size();
  region->values = {graph.type(x), graph.type(prev)};
  for (ValueId m : mixes) region->values.push_back(graph.type(m));
  auto local = [&](TensorType type) {
    region->values.push_back(std::move(type));
    return static_cast<ValueId>(region->values.size() - 1);
  };
  ValueId local_last = local(graph.type(last)), local_shifted = local(graph.type(shifted));
  region->ops.push_back(Op{OpKind::last_row, {0}, {local_last}, {}, nullptr});
  region->ops.push_back(Op{OpKind::token_shift, {0, 1}, {local_shifted}, {}, nullptr});
  region->yields.push_back(local_last);
  for (std::size_t i = 0; i < mixes.size(); ++i) {
    ValueId m = local(graph.type(mixed[i]));
    region->ops.push_back(Op{OpKind::lerp, {0, local_shifted, static_cast<ValueId>(2 + i)}, {m}, {}, nullptr});
    region->yields.push_back(m);
  }
  Op fused{OpKind::region, {x, prev}, {last}, {}, region};
  fused.operands.insert(fused.operands.end(), mixes.begin(), mixes.end());
  fused.results.insert(fused.results.end(), mixed.begin(), mixed.end());
  graph.ops.resize(1);  // the embedding
  graph.ops.push_back(std::move(fused));
  erase_value(graph, shifted);  // now local to the region
  verify(graph);
  kg.graph = std::move(graph);
  const double tt = static_cast<double>(t), cc = static_cast<double>(channels);
  kg.bytes = 4 * (tt * cc + 6 * tt * cc + 8 * cc);  // x in, six mixes out; prev, last and the mix weights
  kg.flops = 6 * 3 * tt * cc;                       // a lerp is a sub, a mul and an add
  return kg;
}

}  // namespace rwkvc::bench
