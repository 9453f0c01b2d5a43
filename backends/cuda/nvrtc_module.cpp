#include "backends/cuda/nvrtc_module.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_device.h"
#include "backends/disk_cache.h"
#include "backends/task_pool.h"

namespace rwkvc::cuda {

namespace {

std::vector<std::string> compile_options(const std::string& arch) {
  return {"--gpu-architecture=" + arch, "--std=c++17", "--device-as-default-execution-space"};
}

// 128 bits from two differently seeded hash passes: a file name, not a security measure.
std::string cache_key(const std::string& source, const std::string& arch, const std::vector<std::string>& options) {
  int major = 0, minor = 0;
  nvrtcVersion(&major, &minor);
  std::string joined;
  for (const std::string& option : options) joined += option + " ";
  std::string text = fmt::format("{}\n{}\nnvrtc {}.{}\n{}", arch, joined, major, minor, source);
  return fmt::format("{:016x}{:016x}", stable_hash(text), stable_hash(text, 0x84222325cbf29ce4ull));
}

std::vector<char> compile(const std::string& source, const std::string& arch, const std::string& what) {
  const std::vector<std::string> options = compile_options(arch);
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
    throw std::runtime_error(
        fmt::format("NVRTC could not compile {} for {}: {}\n{}", what, arch, nvrtcGetErrorString(result), log));
  }
  std::size_t size = 0;
  check(nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
  std::vector<char> cubin(size);
  check(nvrtcGetCUBIN(program, cubin.data()), "nvrtcGetCUBIN");
  nvrtcDestroyProgram(&program);
  return cubin;
}

std::filesystem::path cache_path(const std::filesystem::path& dir, const std::string& source, const std::string& arch) {
  return dir.empty() ? dir : dir / (cache_key(source, arch, compile_options(arch)) + ".cubin");
}

std::optional<std::vector<char>> cached(const std::filesystem::path& path) {
  if (path.empty()) return std::nullopt;
  std::optional<std::vector<std::byte>> bytes = read_file(path);
  if (!bytes || bytes->empty()) return std::nullopt;
  std::vector<char> cubin(bytes->size());
  std::memcpy(cubin.data(), bytes->data(), cubin.size());
  return cubin;
}

void store(const std::filesystem::path& path, const std::vector<char>& cubin) {
  if (!path.empty()) write_file(path, cubin.data(), cubin.size());
}

enum class Outcome { from_cache, compiled, fallback };

// The part's cubin, cached under its own source's key even when only its fallback compiled, so
// the next start finds it without trying the source again.
std::vector<char> part_cubin(const ModulePart& part, const std::string& arch, const std::filesystem::path& dir,
                             Outcome& outcome) {
  std::filesystem::path path = cache_path(dir, part.source, arch);
  if (std::optional<std::vector<char>> cubin = cached(path)) {
    outcome = Outcome::from_cache;
    return *cubin;
  }
  std::vector<char> cubin;
  try {
    cubin = compile(part.source, arch, part.name);
    outcome = Outcome::compiled;
  } catch (const std::runtime_error&) {
    if (part.fallback_source.empty()) throw;
    cubin = compile(part.fallback_source, arch, part.name);
    outcome = Outcome::fallback;
  }
  store(path, cubin);
  return cubin;
}

double process_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

}  // namespace

std::vector<char> compile_cubin(const std::string& source, const std::string& arch, bool* from_cache) {
  std::filesystem::path path = cache_path(cache_directory("cuda"), source, arch);
  if (std::optional<std::vector<char>> cubin = cached(path)) {
    if (from_cache) *from_cache = true;
    return *cubin;
  }
  std::vector<char> cubin = compile(source, arch, "the kernels");
  store(path, cubin);
  if (from_cache) *from_cache = false;
  return cubin;
}

std::vector<std::vector<char>> compile_parts(const std::vector<ModulePart>& parts, const std::string& arch,
                                             CompileStats* stats) {
  auto start = std::chrono::steady_clock::now();
  double cpu_start = process_cpu_seconds();
  std::filesystem::path dir = cache_directory("cuda");
  // Each distinct source once (two threads must not write one cache file), the longest first, so
  // that no long compile starts last.
  std::vector<std::size_t> order, same_as(parts.size());
  std::map<std::string_view, std::size_t> first_of;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto [it, added] = first_of.try_emplace(parts[i].source, i);
    same_as[i] = it->second;
    if (added) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return parts[a].source.size() > parts[b].source.size(); });
  std::vector<std::vector<char>> cubins(parts.size());
  std::vector<Outcome> outcomes(parts.size(), Outcome::from_cache);
  std::size_t threads = std::min(pool_threads("RWKVC_CUDA_COMPILE_THREADS"), std::max<std::size_t>(order.size(), 1));
  run_jobs(order.size(), threads, [&](std::size_t job) {
    std::size_t i = order[job];
    cubins[i] = part_cubin(parts[i], arch, dir, outcomes[i]);
  });
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (same_as[i] != i) cubins[i] = cubins[same_as[i]];
  if (stats != nullptr) {
    *stats = CompileStats{};
    stats->parts = parts.size();
    stats->threads = threads;
    for (Outcome outcome : outcomes) {
      stats->from_cache += outcome == Outcome::from_cache;
      stats->compiled += outcome == Outcome::compiled ? 1 : outcome == Outcome::fallback ? 2 : 0;
      stats->fallbacks += outcome == Outcome::fallback;
    }
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats->cpu_seconds = process_cpu_seconds() - cpu_start;
  }
  return cubins;
}

Module::Module(int device, const std::vector<ModulePart>& parts, const std::string& arch) : device_(device) {
  std::vector<std::vector<char>> cubins = compile_parts(parts, arch, &stats_);
  use_device(device_);
  try {
    for (std::size_t p = 0; p < parts.size(); ++p) {
      cudaLibrary_t library = nullptr;
      check(cudaLibraryLoadData(&library, cubins[p].data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
            fmt::format("cudaLibraryLoadData ({})", parts[p].name));
      libraries_.push_back(library);
      for (const std::string& name : parts[p].kernels) part_of_.try_emplace(name, p);
    }
  } catch (...) {
    for (cudaLibrary_t library : libraries_) cudaLibraryUnload(library);
    throw;
  }
}

Module::Module(int device, const std::string& source, const std::string& arch)
    : Module(device, std::vector<ModulePart>{{"the kernels", source, {}, ""}}, arch) {}

Module::~Module() {
  if (libraries_.empty()) return;
  cudaSetDevice(device_);
  for (cudaLibrary_t library : libraries_) cudaLibraryUnload(library);
}

cudaKernel_t Module::kernel(const std::string& name) const {
  auto found = kernels_.find(name);
  if (found != kernels_.end()) return found->second;
  cudaKernel_t kernel = nullptr;
  if (auto part = part_of_.find(name); part != part_of_.end()) {
    check(cudaLibraryGetKernel(&kernel, libraries_[part->second], name.c_str()),
          fmt::format("cudaLibraryGetKernel '{}'", name));
  } else {
    // Not listed: the first part that defines it (a failed look-up is not a sticky error).
    cudaError_t status = cudaErrorSymbolNotFound;
    for (cudaLibrary_t library : libraries_) {
      status = cudaLibraryGetKernel(&kernel, library, name.c_str());
      if (status == cudaSuccess) break;
      cudaGetLastError();
    }
    check(status, fmt::format("cudaLibraryGetKernel '{}'", name));
  }
  kernels_.emplace(name, kernel);
  return kernel;
}

}  // namespace rwkvc::cuda
