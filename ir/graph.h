// A graph: SSA values, the ops that produce them, and the graph's interface. The recurrent
// state is explicit: each state slot is a graph input and its updated value a graph output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/op.h"

namespace rwkvc {

inline constexpr std::int32_t kNoBuffer = -1;

struct Value {
  std::string name;  // unique within the graph; printed as %name
  TensorType type;
  // The activation buffer plan-memory placed this op result in (printed "@3" after its type);
  // values whose lifetimes overlap never share one (the verifier checks). kNoBuffer: unplanned.
  std::int32_t buffer = kNoBuffer;
  bool operator==(const Value&) const = default;
};

// The body of a kernel region (`%a, %b = region "kind"(%x, %y) { ... }`): a small graph of its
// own. Its values are numbered locally (printed %0, %1, ...): the first `arguments` stand for
// the region's operands, in order and of the same types; the ops define the rest in order;
// `yields` gives, per region result, the local value it returns.
struct Region {
  std::string kind;  // the fusion that made it: "token_shift_mix", "wkv", "elementwise", "folded"
  std::size_t arguments = 0;
  std::vector<TensorType> values;  // by local ValueId
  std::vector<Op> ops;             // in execution order; operands and results are local ids
  std::vector<ValueId> yields;     // local ids, one per region result
  bool operator==(const Region&) const = default;
};

// A weight, bound by its checkpoint tensor name (e.g. "blocks.0.att.key.weight").
struct WeightDecl {
  ValueId value;
  std::string key;
  bool operator==(const WeightDecl&) const = default;
};

// One slot of the recurrent state: read as `input`, written back as `output`. A fresh state
// holds `init` in every element (0, or -1e30 for RWKV-4's pp).
struct StateDecl {
  std::string slot;  // e.g. "blocks.0.att.shift"
  ValueId input = kNoValue;
  ValueId output = kNoValue;
  double init = 0.0;
  bool operator==(const StateDecl&) const = default;
};

struct Graph {
  std::string name;  // the architecture, e.g. "rwkv7"
  std::vector<Value> values;
  ValueId tokens = kNoValue;  // i32[T]
  std::vector<WeightDecl> weights;
  std::vector<StateDecl> states;
  std::vector<Op> ops;  // in execution order
  ValueId logits = kNoValue;

  const Value& value(ValueId id) const { return values.at(static_cast<std::size_t>(id)); }
  const TensorType& type(ValueId id) const { return value(id).type; }
  // "%name", for messages and the textual form.
  std::string ref(ValueId id) const;

  bool operator==(const Graph&) const = default;
};

}  // namespace rwkvc
