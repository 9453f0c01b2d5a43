#include "backends/cuda/nvrtc_module.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_device.h"

namespace rwkvc::cuda {

namespace {

std::uint64_t fnv1a(std::string_view text, std::uint64_t hash) {
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

// 128 bits from two differently seeded FNV-1a passes: a file name, not a security measure.
std::string cache_key(const std::string& source, const std::string& arch, const std::string& options) {
  int major = 0, minor = 0;
  nvrtcVersion(&major, &minor);
  std::string text = fmt::format("{}\n{}\nnvrtc {}.{}\n{}", arch, options, major, minor, source);
  return fmt::format("{:016x}{:016x}", fnv1a(text, 0xcbf29ce484222325ull), fnv1a(text, 0x84222325cbf29ce4ull));
}

std::vector<char> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Written under a temporary name and renamed: a concurrent reader sees the whole file or none.
void write_file(const std::filesystem::path& path, const std::vector<char>& bytes) {
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error) return;  // no cache this time: compiling again next start is the only cost
  std::filesystem::path temporary = path;
  temporary += fmt::format(".{}.tmp", getpid());
  {
    std::ofstream out(temporary, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return;
  }
  std::filesystem::rename(temporary, path, error);
  if (error) std::filesystem::remove(temporary, error);
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

std::string kernel_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return std::string(xdg) + "/rwkvc/cuda";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::string(home) + "/.cache/rwkvc/cuda";
  return {};
}

std::vector<char> compile_cubin(const std::string& source, const std::string& arch, bool* from_cache) {
  const std::vector<std::string> options = {"--gpu-architecture=" + arch, "--std=c++17", "--device-as-default-execution-space"};
  std::string joined;
  for (const std::string& option : options) joined += option + " ";
  std::string dir = kernel_cache_dir();
  std::filesystem::path path = dir.empty() ? std::filesystem::path() : std::filesystem::path(dir) / (cache_key(source, arch, joined) + ".cubin");
  if (!dir.empty()) {
    std::vector<char> cached = read_file(path);
    if (!cached.empty()) {
      if (from_cache) *from_cache = true;
      return cached;
    }
  }
  std::vector<char> cubin = compile(source, arch, options);
  if (!dir.empty()) write_file(path, cubin);
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
