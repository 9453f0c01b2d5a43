// Recurrent states saved to disk, so a sequence can continue later or on another backend.
#pragma once

#include <string>

#include "ir/state_layout.h"

namespace rwkvc {

// A safetensors file with one F32 tensor per slot, named by the slot and shaped like it, and
// metadata that rebuilds the layout exactly: format "rwkvc-state", arch, the slot order
// (comma-separated) and each slot's init value. Written atomically.
void save_state(const std::string& path, const HostState& state);

// Throws std::invalid_argument naming the file when it is not an rwkvc state or does not match
// its own metadata.
HostState load_state(const std::string& path);

}  // namespace rwkvc
