// rwkvc devices: every backend of this build with its devices by index (what --device takes),
// or the reason it has none.
#include <fmt/format.h>

#include "backends/backend.h"
#include "tools/commands.h"

namespace rwkvc::cli {

namespace {

void run_devices() {
  for (const DeviceList& list : list_devices()) {
    if (!list.unavailable.empty() || list.devices.empty()) {
      fmt::print("{}: {}\n", list.backend, list.unavailable.empty() ? "no device" : list.unavailable);
      continue;
    }
    fmt::print("{}:\n", list.backend);
    for (std::size_t i = 0; i < list.devices.size(); ++i) fmt::print("  [{}] {}\n", i, list.devices[i]);
  }
}

}  // namespace

void add_devices_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("devices", "List each backend's devices with the index --device takes");
  cmd->callback(run_devices);
}

}  // namespace rwkvc::cli
