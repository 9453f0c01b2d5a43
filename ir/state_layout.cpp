#include "ir/state_layout.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

std::size_t StateLayout::total_floats() const {
  std::size_t n = 0;
  for (const StateSlot& slot : slots) n += static_cast<std::size_t>(slot.shape.numel());
  return n;
}

StateLayout state_layout(const Graph& graph) {
  StateLayout layout{graph.name, {}};
  for (const StateDecl& decl : graph.states) layout.slots.push_back({decl.slot, graph.type(decl.input).shape, decl.init});
  return layout;
}

HostState HostState::fresh(const StateLayout& layout) {
  HostState state{layout, {}};
  for (const StateSlot& slot : layout.slots)
    state.slots.emplace_back(static_cast<std::size_t>(slot.shape.numel()), static_cast<float>(slot.init));
  return state;
}

void HostState::check_matches(const StateLayout& expected) const {
  if (layout.arch != expected.arch)
    throw std::invalid_argument(fmt::format("state is for a '{}' model, this model is '{}'", layout.arch, expected.arch));
  if (layout.slots.size() != expected.slots.size())
    throw std::invalid_argument(fmt::format("state has {} slots, this model's state has {}", layout.slots.size(),
                                            expected.slots.size()));
  for (std::size_t i = 0; i < expected.slots.size(); ++i) {
    const StateSlot& have = layout.slots[i];
    const StateSlot& want = expected.slots[i];
    if (have.name != want.name || have.shape != want.shape)
      throw std::invalid_argument(fmt::format("state slot {} is '{}' {}, this model expects '{}' {}", i, have.name,
                                              to_string(have.shape), want.name, to_string(want.shape)));
    if (slots.size() <= i || slots[i].size() != static_cast<std::size_t>(want.shape.numel()))
      throw std::invalid_argument(fmt::format("state slot '{}' holds the wrong number of values", want.name));
  }
}

}  // namespace rwkvc
