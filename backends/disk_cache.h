// What rwkvc keeps between runs (compiled kernels, folded weights) lives in one cache folder
// per kind of content, as files named by a hash of everything that made them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

namespace rwkvc {

// $RWKVC_CACHE_DIR/<kind>, else $XDG_CACHE_HOME/rwkvc/<kind>, else ~/.cache/rwkvc/<kind>; empty
// when none can be named (then nothing is cached on disk).
std::filesystem::path cache_directory(std::string_view kind);

// FNV-1a, 64 bits: stable across runs and builds, which std::hash is not. `seed` continues a
// hash over several pieces.
inline constexpr std::uint64_t kStableHashSeed = 14695981039346656037ull;
std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed = kStableHashSeed);

// The whole file, or nothing when it cannot be read.
std::optional<std::vector<std::byte>> read_file(const std::filesystem::path& path);
// Writes through a temporary file and a rename, so a reader never sees half a file; failures
// are ignored (a cache that cannot be written only costs the next start time).
void write_file(const std::filesystem::path& path, const void* data, std::size_t size);

}  // namespace rwkvc
