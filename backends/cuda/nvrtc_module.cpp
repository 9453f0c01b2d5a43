#include "backends/cuda/nvrtc_module.h"

#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_device.h"
#include "backends/disk_cache.h"

namespace rwkvc::cuda {

namespace {

// 128 bits from two differently seeded hash passes: a file name, not a security measure.
std::string cache_key(const std::string& source, const std::string& arch, const std::string& options) {
  int major = 0, minor = 0;
  nvrtcVersion(&major, &minor);
  std::string text = fmt::format("{}\n{}\nnvrtc {}.{}\n{}", arch, options, major, minor, source);
  return fmt::format("{:016x}{:016x}", stable_hash(text), stable_hash(text, 0x84222325cbf29ce4ull));
}

std::vector<char> compile(const std::string& source, const std::string& arch, const std::vector<std::string>& options) {
  nvrtcProgram program = nullptr;
  check(nvrtcCreateProgram(&program, source.c_str(), "rwkvc_kernels.cu", 0, nullptr, nullptr), "nvrtcCreateProgram");
  std::vector<const char*> argv;
  for (const std::string& option : options) argv.push_back(option.c_str());
  nvrtcResult result = nvrtcCompileProgram(program, static_cast<int>(argv.size()), argv.data());
  if (result != NVRTC_SUCCESS) {
    std::size_t size = 0;
    nvrtcGetProgramLogSize(program, &size);
    std::string log(size, '\0');
    nvrtcGetProgramLog(program, log.data());
    nvrtcDestroyProgram(&program);
    if (log.size() > 8000) log.resize(8000);
    throw std::runtime_error(fmt::format("NVRTC could not compile the kernels for {}: {}\n{}", arch,
                                         nvrtcGetErrorString(result), log));
  }
  std::size_t size = 0;
  check(nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
  std::vector<char> cubin(size);
  check(nvrtcGetCUBIN(program, cubin.data()), "nvrtcGetCUBIN");
  nvrtcDestroyProgram(&program);
  return cubin;
}

}  // namespace

std::vector<char> compile_cubin(const std::string& source, const std::string& arch, bool* from_cache) {
  const std::vector<std::string> options = {"--gpu-architecture=" + arch, "--std=c++17", "--device-as-default-execution-space"};
  std::string joined;
  for (const std::string& option : options) joined += option + " ";
  std::filesystem::path dir = cache_directory("cuda");
  std::filesystem::path path = dir.empty() ? dir : dir / (cache_key(source, arch, joined) + ".cubin");
  if (!dir.empty()) {
    if (std::optional<std::vector<std::byte>> cached = read_file(path); cached && !cached->empty()) {
      if (from_cache) *from_cache = true;
      std::vector<char> cubin(cached->size());
      std::memcpy(cubin.data(), cached->data(), cubin.size());
      return cubin;
    }
  }
  std::vector<char> cubin = compile(source, arch, options);
  if (!dir.empty()) write_file(path, cubin.data(), cubin.size());
  if (from_cache) *from_cache = false;
  return cubin;
}

Module::Module(int device, const std::string& source, const std::string& arch) : device_(device) {
  std::vector<char> cubin = compile_cubin(source, arch, &from_cache_);
  use_device(device_);
  check(cudaLibraryLoadData(&library_, cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0), "cudaLibraryLoadData");
}

Module::~Module() {
  if (library_ == nullptr) return;
  cudaSetDevice(device_);
  cudaLibraryUnload(library_);
}

cudaKernel_t Module::kernel(const std::string& name) const {
  auto found = kernels_.find(name);
  if (found != kernels_.end()) return found->second;
  cudaKernel_t kernel = nullptr;
  check(cudaLibraryGetKernel(&kernel, library_, name.c_str()), fmt::format("cudaLibraryGetKernel '{}'", name));
  kernels_.emplace(name, kernel);
  return kernel;
}

}  // namespace rwkvc::cuda
