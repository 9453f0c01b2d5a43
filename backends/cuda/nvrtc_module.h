// CUDA C++ compiled at run time: NVRTC builds a cubin for the device's architecture, cached on
// disk (keyed by the source, the architecture and NVRTC's version) so a second start compiles
// nothing; the runtime loads it as a library whose kernels are launched by name.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

namespace rwkvc::cuda {

// The cubin of `source` for `arch` ("sm_90"), from the cache (backends/disk_cache.h, folder
// "cuda") or compiled (and then cached).
// Throws std::runtime_error with NVRTC's log when the source does not compile.
std::vector<char> compile_cubin(const std::string& source, const std::string& arch, bool* from_cache = nullptr);

class Module {
 public:
  Module(int device, const std::string& source, const std::string& arch);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Throws std::runtime_error for a kernel the source does not define.
  cudaKernel_t kernel(const std::string& name) const;
  bool compiled_from_cache() const { return from_cache_; }

 private:
  int device_;
  cudaLibrary_t library_ = nullptr;
  bool from_cache_ = false;
  mutable std::map<std::string, cudaKernel_t, std::less<>> kernels_;
};

}  // namespace rwkvc::cuda
