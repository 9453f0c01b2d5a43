// A program's module split into NVRTC programs that compile at once, each cached on its own, so
// a module compiles on every core and two modules (two tests, two model shapes) share the cubins
// of the kernels they have in common:
// - "the misc kernels": the prelude and kMiscSource, the same in every module;
// - a part per family that itself defines a kernel the steps launch (wkv4_channels);
// - a part per definition (generated kernel or entry point): the prelude, then only the
//   families whose top-level names it uses (and those the families use in turn).
// Every part starts with tuning_defines() and the prelude. RWKVC_CUDA_COMPILE_SPLIT=0 keeps the
// module one program (text()), as before.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cuda/cuda_program.h"
#include "backends/cuda/nvrtc_module.h"

namespace rwkvc::cuda {

std::vector<ModulePart> module_parts(const ModuleSource& module);

// What another source can refer to in `family`: the names of its macros and of what it declares
// at namespace scope (functions, types, variables), the language's own and `__`-names left out.
std::set<std::string, std::less<>> top_level_names(std::string_view family);

}  // namespace rwkvc::cuda
