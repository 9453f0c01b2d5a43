// plan-memory: places every per-call op result in a numbered buffer, reusing a buffer once its
// last value is dead (liveness in op order, best fit by size); --stats reports the planned peak.
#include <algorithm>
#include <optional>

#include "ir/liveness.h"
#include "passes/graph_rewrite.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

// A buffer's size grows with T or does not; the two kinds never share, so a size is one number.
struct Size {
  bool per_token;
  std::int64_t bytes;  // per token when per_token
};

Size size_of(const TensorType& type) {
  auto element = static_cast<std::int64_t>(dtype_size(type.dtype));
  if (type.shape.has_seq()) return {true, type.shape.numel(1) * element};
  return {false, type.shape.numel() * element};
}

struct Buffer {
  Size size;
  std::size_t busy_until = 0;  // the last op index of the value it holds
  bool used = false;
};

}  // namespace

Graph plan_memory(const Graph& graph) {
  Graph out = graph;
  for (Value& value : out.values) value.buffer = kNoBuffer;
  std::vector<LiveRange> ranges = live_ranges(out);
  std::vector<bool> token_free = weight_only_values(out);
  std::vector<Buffer> buffers;
  for (std::size_t i = 0; i < out.ops.size(); ++i) {
    const Op& op = out.ops[i];
    if (!is_plannable(out, op)) continue;
    for (ValueId result : op.results) {
      auto id = static_cast<std::size_t>(result);
      if (token_free[id]) continue;  // computed once at compile time, not per call
      Size need = size_of(out.values[id].type);
      // Best fit among the free buffers of the same kind: the smallest that is large enough,
      // else the largest (which then grows).
      std::optional<std::size_t> pick;
      for (std::size_t b = 0; b < buffers.size(); ++b) {
        const Buffer& candidate = buffers[b];
        if ((candidate.used && candidate.busy_until >= i) || candidate.size.per_token != need.per_token) continue;
        if (!pick) {
          pick = b;
          continue;
        }
        const Buffer& best = buffers[*pick];
        bool fits = candidate.size.bytes >= need.bytes, best_fits = best.size.bytes >= need.bytes;
        if (fits != best_fits ? fits : (fits ? candidate.size.bytes < best.size.bytes : candidate.size.bytes > best.size.bytes))
          pick = b;
      }
      if (!pick) {
        pick = buffers.size();
        buffers.push_back({need, 0, false});
      }
      Buffer& buffer = buffers[*pick];
      buffer.size.bytes = std::max(buffer.size.bytes, need.bytes);
      buffer.busy_until = ranges[id].last;
      buffer.used = true;
      out.values[id].buffer = static_cast<std::int32_t>(*pick);
    }
  }
  return out;
}

}  // namespace rwkvc::passes
