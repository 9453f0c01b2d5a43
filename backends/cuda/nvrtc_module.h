// CUDA C++ compiled at run time: NVRTC builds a cubin for the device's architecture, cached on
// disk (keyed by the source, the architecture, the options and NVRTC's version) so a second
// start compiles nothing; the runtime loads it as a library whose kernels are launched by name.
// A module is several such programs (module_parts.h), compiled at once on a pool of threads.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

namespace rwkvc::cuda {

// The cubin of `source` for `arch` ("sm_90"), from the cache (backends/disk_cache.h, folder
// "cuda") or compiled (and then cached).
// Throws std::runtime_error with NVRTC's log when the source does not compile.
std::vector<char> compile_cubin(const std::string& source, const std::string& arch, bool* from_cache = nullptr);

// One NVRTC program of a module, compiled, cached and loaded on its own.
struct ModulePart {
  std::string name;                  // for messages: "kernel 'fused_3a…'", "the misc kernels"
  std::string source;
  std::vector<std::string> kernels;  // the kernels looked up in this part
  // Tried when `source` does not compile: the same kernel with every family of the module ahead
  // of it (the families a part needs are found by the names it uses, which could miss one).
  std::string fallback_source;
};

struct CompileStats {
  std::size_t parts = 0;
  std::size_t from_cache = 0;  // parts found in the disk cache: no NVRTC call
  std::size_t compiled = 0;    // NVRTC programs compiled, fallbacks included
  std::size_t fallbacks = 0;   // parts whose own source did not compile but their fallback did
  std::size_t threads = 0;
  double seconds = 0;          // wall time of compile_parts
  double cpu_seconds = 0;      // the process's CPU time meanwhile, every thread's
};

// The cubin of every part, in order, compiled on up to RWKVC_CUDA_COMPILE_THREADS threads (default:
// the hardware's). Throws std::runtime_error naming the part (its kernel) with NVRTC's log when one
// does not compile.
std::vector<std::vector<char>> compile_parts(const std::vector<ModulePart>& parts, const std::string& arch,
                                             CompileStats* stats = nullptr);

class Module {
 public:
  // One library per part; kernel(name) looks in the part that lists the name, else in each.
  Module(int device, const std::vector<ModulePart>& parts, const std::string& arch);
  Module(int device, const std::string& source, const std::string& arch);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Throws std::runtime_error for a kernel no part defines.
  cudaKernel_t kernel(const std::string& name) const;
  bool compiled_from_cache() const { return stats_.from_cache == stats_.parts; }
  const CompileStats& compile_stats() const { return stats_; }

 private:
  int device_;
  std::vector<cudaLibrary_t> libraries_;
  std::map<std::string, std::size_t, std::less<>> part_of_;  // listed kernel -> library
  CompileStats stats_;
  mutable std::map<std::string, cudaKernel_t, std::less<>> kernels_;
};

}  // namespace rwkvc::cuda
