#include "backends/cpu/interpreter.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/cpu/kernels.h"
#include "ir/error.h"

namespace rwkvc::cpu {

std::span<float> Frame::allocate(ValueId id, std::int64_t count) {
  auto n = static_cast<std::size_t>(count);
  auto index = static_cast<std::size_t>(id);
  if (index < planned_buffer.size() && planned_buffer[index] != kNoBuffer) {
    // Growing may move the buffer: only dead values (the verifier proved it) pointed into it.
    std::vector<float>& buffer = (*planned)[static_cast<std::size_t>(planned_buffer[index])];
    if (buffer.size() < n) buffer.resize(n);
    std::span<float> place(buffer.data(), n);
    std::fill(place.begin(), place.end(), 0.0f);
    values[index] = place;
    return place;
  }
  std::vector<float>& buffer = owned[index];
  buffer.assign(n, 0.0f);
  values[index] = buffer;
  return buffer;
}

void Frame::release(ValueId id) {
  std::vector<float>().swap(owned[static_cast<std::size_t>(id)]);
  values[static_cast<std::size_t>(id)] = {};
}

void check_supported(const Graph& graph, const Op& op, std::size_t index) {
  for (std::size_t i = 0; i < op.operands.size(); ++i) {
    ValueId id = op.operands[i];
    if (op.kind == OpKind::embedding && i == 1) {
      if (id != graph.tokens)
        throw IrError(fmt::format("op #{} embedding: the CPU backend gathers rows by the graph's tokens {}, not {}",
                                  index, graph.ref(graph.tokens), graph.ref(id)));
    } else if (!is_float(graph.type(id).dtype)) {
      throw IrError(fmt::format("op #{} {}: the CPU backend computes in f32 and cannot take {} {}", index,
                                op_name(op.kind), to_string(graph.type(id)), graph.ref(id)));
    }
  }
  // A region's body reads only its arguments: an embedding there would have no tokens to gather by.
  if (op.region)
    for (const Op& inner : op.region->ops)
      if (inner.kind == OpKind::embedding || inner.kind == OpKind::region)
        throw IrError(fmt::format("op #{} region \"{}\": the CPU backend runs no {} inside a region", index,
                                  op.region->kind, op_name(inner.kind)));
}

void run_op(const Op& op, Frame& frame) {
  auto shape = [&](ValueId id) { return frame.types[static_cast<std::size_t>(id)].shape.bind(frame.seq_len); };
  auto input = [&](std::size_t i) { return frame.values[static_cast<std::size_t>(op.operands[i])]; };
  auto view = [&](std::size_t i) { return TensorView{input(i), shape(op.operands[i])}; };
  auto input_shape = [&](std::size_t i) { return shape(op.operands[i]); };
  auto output = [&](std::size_t i) { return frame.allocate(op.results[i], shape(op.results[i]).numel()); };
  auto eps = [&] { return static_cast<float>(op.float_attr("eps")); };

  if (is_unary_elementwise(op.kind)) return unary(op.kind, input(0), output(0));
  if (is_binary_elementwise(op.kind))
    return binary(op.kind, view(0), view(1), output(0), shape(op.results[0]));

  switch (op.kind) {
    case OpKind::embedding:
      return embedding(input(0), input_shape(0)[1], frame.tokens, output(0));
    case OpKind::layer_norm:
      return layer_norm(input(0), input_shape(0).back(), input(1), input(2), eps(), output(0));
    case OpKind::group_norm:
      return group_norm(input(0), input_shape(0)[1], op.int_attr("groups"), input(1), input(2), eps(), output(0));
    case OpKind::matmul: {
      bool transpose_b = op.int_attr("transpose_b") != 0;
      Shape b = input_shape(1);
      return matmul(input(0), input(1), transpose_b ? b[1] : b[0], transpose_b ? b[0] : b[1], transpose_b,
                         output(0));
    }
    case OpKind::token_shift: return token_shift(input(0), input(1), output(0));
    case OpKind::last_row: return last_row(input(0), output(0));
    case OpKind::lerp: return lerp(view(0), view(1), view(2), output(0), shape(op.results[0]));
    case OpKind::l2_norm:
      return l2_norm(input(0), input_shape(0).back(), op.int_attr("groups"), eps(), output(0));
    case OpKind::reduce_sum: return reduce_sum(input(0), input_shape(0).back(), output(0));
    case OpKind::reshape: return reshape(input(0), output(0));
    case OpKind::constant: {
      output(0)[0] = static_cast<float>(op.float_attr("value"));
      return;
    }
    case OpKind::wkv4: {
      // The kernel updates the state in place: start the results from the incoming state.
      std::span<float> y = output(0), aa = output(1), bb = output(2), pp = output(3);
      std::ranges::copy(input(4), aa.begin());
      std::ranges::copy(input(5), bb.begin());
      std::ranges::copy(input(6), pp.begin());
      return wkv4(input(0), input(1), input(2), input(3), {aa, bb, pp}, y);
    }
    case OpKind::wkv7: {
      std::span<float> y = output(0), state = output(1);
      std::ranges::copy(input(6), state.begin());
      return wkv7({input(0), input(1), input(2), input(3), input(4), input(5)}, input_shape(6)[1], state, y);
    }
    case OpKind::region: {
      // Interpreted: the body's ops run through this same dispatch over a frame of its own.
      const Region& region = *op.region;
      Frame body(region.values, frame.seq_len, frame.tokens);
      for (std::size_t i = 0; i < region.arguments; ++i) body.values[i] = input(i);
      for (const Op& inner : region.ops) run_op(inner, body);
      for (std::size_t i = 0; i < region.yields.size(); ++i)
        std::ranges::copy(body.values[static_cast<std::size_t>(region.yields[i])], output(i).begin());
      return;
    }
    default: break;
  }
  throw IrError(fmt::format("the CPU backend has no kernel for '{}'", op_name(op.kind)));
}

}  // namespace rwkvc::cpu
