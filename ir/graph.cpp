#include "ir/graph.h"

namespace rwkvc {

std::string Graph::ref(ValueId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= values.size()) return "%<undefined #" + std::to_string(id) + ">";
  return "%" + value(id).name;
}

}  // namespace rwkvc
