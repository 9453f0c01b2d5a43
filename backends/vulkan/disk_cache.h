// Where the Vulkan backend keeps what it compiled, between runs: SPIR-V modules keyed by a hash
// of their GLSL, and the driver's pipeline cache keyed by device and driver version.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

namespace rwkvc::vulkan {

// $RWKVC_VULKAN_CACHE, else $XDG_CACHE_HOME/rwkvc/vulkan, else ~/.cache/rwkvc/vulkan; empty
// when none can be named (then nothing is cached on disk).
std::filesystem::path cache_directory();

// FNV-1a, 64 bits: stable across runs and builds, which std::hash is not.
std::uint64_t stable_hash(std::string_view bytes);

// The whole file, or nothing when it cannot be read.
std::optional<std::vector<std::byte>> read_file(const std::filesystem::path& path);
// Writes through a temporary file and a rename, so a reader never sees half a file; failures
// are ignored (a cache that cannot be written only costs the next start time).
void write_file(const std::filesystem::path& path, const void* data, std::size_t size);

}  // namespace rwkvc::vulkan
