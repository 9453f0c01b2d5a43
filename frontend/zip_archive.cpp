#include "frontend/zip_archive.h"

#include <zlib.h>

#include <array>
#include <bit>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "frontend/inflate.h"

namespace rwkvc {

namespace {

static_assert(std::endian::native == std::endian::little, "zip fields are read as little-endian");

// Record signatures and fixed sizes (PKWARE APPNOTE 4.3).
constexpr std::uint32_t kLocalHeader = 0x04034b50;
constexpr std::size_t kLocalHeaderSize = 30;
constexpr std::uint32_t kCentralHeader = 0x02014b50;
constexpr std::size_t kCentralHeaderSize = 46;
constexpr std::uint32_t kEndRecord = 0x06054b50;
constexpr std::size_t kEndRecordSize = 22;
constexpr std::size_t kMaxCommentSize = 0xffff;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::uint32_t kZip64EndRecord = 0x06064b50;
constexpr std::size_t kZip64EndRecordSize = 56;
constexpr std::uint16_t kZip64ExtraField = 0x0001;
constexpr std::uint32_t kSaturated32 = 0xffffffff;  // "see the zip64 field"
constexpr std::uint16_t kSaturated16 = 0xffff;
constexpr std::uint16_t kEncryptedFlag = 0x0001;
constexpr std::uint16_t kStored = 0;
constexpr std::uint16_t kDeflated = 8;
// A deflate match yields at most 258 bytes and costs at least 2 bits (a length and a distance
// code): no stream inflates to more than 1032 times its size.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// Little-endian fields of the archive; callers check that [at, at + width) lies inside.
struct Fields {
  std::span<const std::byte> bytes;

  template <typename T>
  T at(std::uint64_t offset) const {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
  }
  std::uint16_t u16(std::uint64_t offset) const { return at<std::uint16_t>(offset); }
  std::uint32_t u32(std::uint64_t offset) const { return at<std::uint32_t>(offset); }
  std::uint64_t u64(std::uint64_t offset) const { return at<std::uint64_t>(offset); }
  // True when `count` bytes from `offset` lie inside, without overflow.
  bool holds(std::uint64_t offset, std::uint64_t count) const {
    return offset <= bytes.size() && count <= bytes.size() - offset;
  }
};

// The end record closes the file, followed only by its own comment; searched from the back.
std::optional<std::uint64_t> find_end_record(const Fields& f) {
  std::uint64_t size = f.bytes.size();
  std::uint64_t lowest = size > kEndRecordSize + kMaxCommentSize ? size - kEndRecordSize - kMaxCommentSize : 0;
  for (std::uint64_t at = size - kEndRecordSize + 1; at-- > lowest;)
    if (f.u32(at) == kEndRecord && at + kEndRecordSize + f.u16(at + 20) == size) return at;
  return std::nullopt;
}

}  // namespace

std::uint32_t zip_crc32(std::span<const std::byte> bytes) {
  return static_cast<std::uint32_t>(
      ::crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<z_size_t>(bytes.size())));
}

ZipArchive::ZipArchive(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, std::string origin)
    : bytes_(bytes), owner_(std::move(owner)), origin_(std::move(origin)) {
  read_directory();
}

void ZipArchive::fail(const std::string& why) const {
  throw std::invalid_argument(fmt::format("{}: {}", origin_, why));
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipArchive::read_directory() {
  Fields f{bytes_};
  if (bytes_.size() < kEndRecordSize)
    fail(fmt::format("it is {} bytes long, too short for a zip archive: the file is truncated", bytes_.size()));

  std::optional<std::uint64_t> end_record = find_end_record(f);
  if (!end_record) fail("it has no zip end-of-central-directory record: the file is truncated or not a zip archive");
  std::uint64_t end = *end_record;

  std::uint64_t disk = f.u16(end + 4), directory_disk = f.u16(end + 6);
  std::uint64_t count = f.u16(end + 10), directory_size = f.u32(end + 12), directory_offset = f.u32(end + 16);
  if (end >= kZip64LocatorSize && f.u32(end - kZip64LocatorSize) == kZip64Locator) {
    std::uint64_t record = f.u64(end - kZip64LocatorSize + 8);
    if (!f.holds(record, kZip64EndRecordSize) || f.u32(record) != kZip64EndRecord)
      fail(fmt::format("its zip64 locator points to byte {}, where there is no zip64 end-of-central-directory record",
                       record));
    disk = f.u32(record + 16);
    directory_disk = f.u32(record + 20);
    count = f.u64(record + 32);
    directory_size = f.u64(record + 40);
    directory_offset = f.u64(record + 48);
  } else if (count == kSaturated16 || directory_size == kSaturated32 || directory_offset == kSaturated32) {
    fail("its end-of-central-directory record defers to a zip64 record that the file lacks: the file is truncated");
  }
  if (disk != 0 || directory_disk != 0) fail("it is a multi-volume zip archive, which rwkvc does not read");
  if (!f.holds(directory_offset, directory_size))
    fail(
        fmt::format("its central directory (bytes {} to {}) lies beyond the end of the file ({} bytes): the file is "
                    "truncated",
                    directory_offset, directory_offset + directory_size, bytes_.size()));
  if (count > directory_size / kCentralHeaderSize)
    fail(
        fmt::format("its central directory of {} bytes cannot hold the {} entries it declares", directory_size, count));

  entries_.reserve(count);
  std::uint64_t at = directory_offset, limit = directory_offset + directory_size;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (limit - at < kCentralHeaderSize || f.u32(at) != kCentralHeader)
      fail(fmt::format("central directory entry {} (byte {}) is not a central file header", i, at));
    std::uint64_t name_size = f.u16(at + 28), extra_size = f.u16(at + 30), comment_size = f.u16(at + 32);
    if (limit - at - kCentralHeaderSize < name_size + extra_size + comment_size)
      fail(fmt::format("central directory entry {} (byte {}) runs past the end of the directory", i, at));
    ZipEntry e;
    e.flags = f.u16(at + 8);
    e.method = f.u16(at + 10);
    e.crc32 = f.u32(at + 16);
    e.compressed_size = f.u32(at + 20);
    e.size = f.u32(at + 24);
    e.local_header_offset = f.u32(at + 42);
    e.name.assign(reinterpret_cast<const char*>(bytes_.data() + at + kCentralHeaderSize), name_size);

    // The zip64 field holds, in this order, exactly those of the three values saturated above.
    std::uint64_t extra = at + kCentralHeaderSize + name_size, extra_end = extra + extra_size;
    bool zip64_read = false;
    while (extra_end - extra >= 4) {
      std::uint16_t id = f.u16(extra), size = f.u16(extra + 2);
      if (size > extra_end - extra - 4)
        fail(fmt::format("entry '{}' has an extra field running past its header", e.name));
      if (id == kZip64ExtraField && !zip64_read) {
        std::uint64_t field = extra + 4, field_end = field + size;
        for (std::uint64_t* value : {&e.size, &e.compressed_size, &e.local_header_offset}) {
          if (*value != kSaturated32) continue;
          if (field_end - field < 8) fail(fmt::format("entry '{}' has a zip64 field too short for its sizes", e.name));
          *value = f.u64(field);
          field += 8;
        }
        zip64_read = true;
      }
      extra += 4 + size;
    }
    if (!zip64_read &&
        (e.size == kSaturated32 || e.compressed_size == kSaturated32 || e.local_header_offset == kSaturated32))
      fail(fmt::format("entry '{}' defers its sizes to a zip64 field that it lacks", e.name));
    if (!index_.emplace(e.name, entries_.size()).second) fail(fmt::format("entry '{}' appears twice", e.name));
    entries_.push_back(std::move(e));
    at += kCentralHeaderSize + name_size + extra_size + comment_size;
  }
}

std::span<const std::byte> ZipArchive::stored_bytes(const ZipEntry& entry) const {
  Fields f{bytes_};
  std::uint64_t at = entry.local_header_offset;
  if (!f.holds(at, kLocalHeaderSize) || f.u32(at) != kLocalHeader)
    fail(fmt::format("entry '{}' has no local file header at byte {}", entry.name, at));
  std::uint64_t name_size = f.u16(at + 26), extra_size = f.u16(at + 28);
  std::uint64_t start = at + kLocalHeaderSize + name_size + extra_size;
  if (!f.holds(at + kLocalHeaderSize, name_size) ||
      std::string_view(reinterpret_cast<const char*>(bytes_.data() + at + kLocalHeaderSize), name_size) != entry.name)
    fail(fmt::format("entry '{}' has a local file header (byte {}) that names another entry", entry.name, at));
  if (!f.holds(start, entry.compressed_size))
    fail(fmt::format("entry '{}' (bytes {} to {}) runs past the end of the file ({} bytes): the file is truncated",
                     entry.name, start, start + entry.compressed_size, bytes_.size()));
  return bytes_.subspan(start, entry.compressed_size);
}

ZipEntryData ZipArchive::read(const ZipEntry& entry) const {
  if (entry.flags & kEncryptedFlag) fail(fmt::format("entry '{}' is encrypted", entry.name));
  std::span<const std::byte> stored = stored_bytes(entry);
  ZipEntryData data;
  if (entry.method == kStored) {
    if (entry.compressed_size != entry.size)
      fail(fmt::format("entry '{}' is stored uncompressed, yet its sizes differ ({} and {} bytes)", entry.name,
                       entry.compressed_size, entry.size));
    data = {stored, owner_};
  } else if (entry.method == kDeflated) {
    if (entry.size / kMaxDeflateRatio > entry.compressed_size)
      fail(fmt::format("entry '{}' claims {} bytes inflated from {} deflated, more than deflate can produce",
                       entry.name, entry.size, entry.compressed_size));
    std::shared_ptr<std::byte[]> inflated(new std::byte[entry.size]);
    std::span<std::byte> output(inflated.get(), entry.size);
    try {
      inflate_raw(stored, output);
    } catch (const std::invalid_argument& e) {
      fail(fmt::format("entry '{}' does not inflate: {}", entry.name, e.what()));
    }
    data = {output, inflated};
  } else {
    fail(fmt::format("entry '{}' uses compression method {}; rwkvc reads stored (0) and deflated (8) entries",
                     entry.name, entry.method));
  }
  std::uint32_t crc = zip_crc32(data.bytes);
  if (crc != entry.crc32)
    fail(
        fmt::format("entry '{}' fails its CRC-32 check (the directory says {:08x}, the bytes give {:08x}): the file "
                    "is corrupt",
                    entry.name, entry.crc32, crc));
  return data;
}

}  // namespace rwkvc
