// Zip archives as torch.save writes them (entries stored, 64-byte aligned, zip64 past 4 GiB),
// read from bytes already in memory: a stored entry is a view of those bytes, not a copy.
// Deflated entries, which other tools may produce when re-packing, are inflated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkvc {

// Every zip archive (and so every .pth) begins with a local file header.
inline constexpr std::string_view kZipSignature{"PK\x03\x04", 4};

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflated
  std::uint16_t flags = 0;
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;
  std::uint64_t local_header_offset = 0;
};

// An entry's contents; `owner` keeps `bytes` alive (the archive's memory, or an inflated copy).
struct ZipEntryData {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;
};

class ZipArchive {
 public:
  // Reads the central directory of the archive in `bytes`, which stay valid while `owner`
  // lives. Every error is a std::invalid_argument whose message starts with `origin`.
  ZipArchive(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, std::string origin);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;

  // The entry's contents after checking its CRC-32.
  ZipEntryData read(const ZipEntry& entry) const;

  const std::string& origin() const { return origin_; }

 private:
  [[noreturn]] void fail(const std::string& why) const;
  void read_directory();
  std::span<const std::byte> stored_bytes(const ZipEntry& entry) const;

  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> owner_;
  std::string origin_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

// CRC-32 as zip uses it (ISO-HDLC: reflected polynomial 0xEDB88320).
std::uint32_t zip_crc32(std::span<const std::byte> bytes);

}  // namespace rwkvc
