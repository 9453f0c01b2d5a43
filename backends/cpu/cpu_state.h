// The CPU backend's state storage: the host form itself, one f32 vector per slot.
#pragma once

#include <memory>
#include <string_view>

#include "backends/backend.h"

namespace rwkvc {

inline constexpr std::string_view kCpuBackendName = "cpu";

class CpuStateStorage final : public StateStorage {
 public:
  explicit CpuStateStorage(HostState host) : host_(std::move(host)) {}

  std::unique_ptr<StateStorage> clone() const override;
  HostState to_host(const StateLayout& layout) const override;
  std::string_view backend() const override { return kCpuBackendName; }

  const HostState& host() const { return host_; }
  HostState& host() { return host_; }

 private:
  HostState host_;
};

}  // namespace rwkvc
