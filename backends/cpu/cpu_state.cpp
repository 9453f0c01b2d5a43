#include "backends/cpu/cpu_state.h"

namespace rwkvc {

std::unique_ptr<StateStorage> CpuStateStorage::clone() const { return std::make_unique<CpuStateStorage>(host_); }

HostState CpuStateStorage::to_host(const StateLayout& layout) const {
  host_.check_matches(layout);
  return host_;
}

}  // namespace rwkvc
