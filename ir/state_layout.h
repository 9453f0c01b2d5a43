// The recurrent state as the graph declares it, and its host-memory form: what a backend
// exports and imports, so a state can move between backends and to and from files.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace rwkvc {

// One f32 tensor per slot, in the graph's slot order. docs/state.md gives the per-version layout.
struct StateSlot {
  std::string name;
  Shape shape;  // concrete: states never depend on T
  double init = 0.0;
  bool operator==(const StateSlot&) const = default;
};

struct StateLayout {
  std::string arch;
  std::vector<StateSlot> slots;

  std::size_t total_floats() const;
  bool operator==(const StateLayout&) const = default;
};

StateLayout state_layout(const Graph& graph);

// A state in host memory: one float vector per slot of `layout`.
struct HostState {
  StateLayout layout;
  std::vector<std::vector<float>> slots;

  // A fresh state: every slot filled with its init value.
  static HostState fresh(const StateLayout& layout);
  // Throws std::invalid_argument naming the first slot whose name or shape differs.
  void check_matches(const StateLayout& expected) const;
  bool operator==(const HostState&) const = default;
};

}  // namespace rwkvc
