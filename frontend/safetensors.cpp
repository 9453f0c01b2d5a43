#include "frontend/safetensors.h"

#include "frontend/mapped_file.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "frontend/atomic_file.h"

namespace rwkvc {

namespace {

// Tensor bytes are copied or viewed as they lie in the file, which is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::size_t kLengthBytes = 8;

struct DTypeCode {
  std::string_view code;
  DType dtype;
};
constexpr DTypeCode kDTypeCodes[] = {
    {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"I32", DType::i32}};

std::optional<DType> dtype_from_code(std::string_view code) {
  for (const DTypeCode& entry : kDTypeCodes)
    if (entry.code == code) return entry.dtype;
  return std::nullopt;
}

std::string_view code_of(DType dtype) {
  for (const DTypeCode& entry : kDTypeCodes)
    if (entry.dtype == dtype) return entry.code;
  throw std::invalid_argument(fmt::format("safetensors has no code for dtype {}", dtype_name(dtype)));
}


struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;  // within the data section
};

class HeaderReader {
 public:
  HeaderReader(const std::string& path, std::uint64_t data_size) : path_(path), data_size_(data_size) {}

  TensorEntry entry(const std::string& name, const json& value) const {
    if (!value.is_object()) bad(name, "is not a JSON object");
    TensorEntry e{name, dtype(name, value), shape(name, value), 0, 0};
    std::tie(e.begin, e.end) = offsets(name, value);
    std::uint64_t element_size = dtype_size(e.dtype);
    std::uint64_t numel = element_count(name, e.shape, element_size);
    if (e.end - e.begin != numel * element_size)
      bad(name, fmt::format("holds {} bytes, but shape {} of {} needs {} bytes", e.end - e.begin, to_string(e.shape),
                            code_of(e.dtype), numel * element_size));
    return e;
  }

  std::map<std::string, std::string> metadata(const json& value) const {
    if (!value.is_object())
      throw std::invalid_argument(fmt::format("safetensors file '{}': {} is not a JSON object", path_, kMetadataKey));
    std::map<std::string, std::string> result;
    for (const auto& [key, item] : value.items()) {
      if (!item.is_string())
        throw std::invalid_argument(
            fmt::format("safetensors file '{}': {} entry '{}' is not a string", path_, kMetadataKey, key));
      result.emplace(key, item.get<std::string>());
    }
    return result;
  }

  // Entries sorted by offset must not share a byte (empty tensors share none).
  void check_disjoint(std::vector<TensorEntry>& entries) const {
    std::sort(entries.begin(), entries.end(),
              [](const TensorEntry& a, const TensorEntry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    const TensorEntry* reach = nullptr;  // the non-empty tensor ending furthest so far
    for (const TensorEntry& e : entries) {
      if (e.begin == e.end) continue;
      if (reach && e.begin < reach->end)
        throw std::invalid_argument(fmt::format(
            "safetensors file '{}': tensors '{}' (bytes {} to {}) and '{}' (bytes {} to {}) overlap", path_, reach->name,
            reach->begin, reach->end, e.name, e.begin, e.end));
      if (!reach || e.end > reach->end) reach = &e;
    }
  }

 private:
  [[noreturn]] void bad(const std::string& name, const std::string& why) const {
    throw std::invalid_argument(fmt::format("safetensors file '{}': tensor '{}' {}", path_, name, why));
  }

  const json& field(const std::string& name, const json& value, const char* key) const {
    auto it = value.find(key);
    if (it == value.end()) bad(name, fmt::format("has no {}", key));
    return *it;
  }

  DType dtype(const std::string& name, const json& value) const {
    const json& code = field(name, value, "dtype");
    if (!code.is_string()) bad(name, fmt::format("has dtype {}, which is not a string", code.dump()));
    std::optional<DType> dtype = dtype_from_code(code.get<std::string>());
    if (!dtype)
      bad(name, fmt::format("has dtype {}, which rwkvc cannot read (it reads F32, F16, BF16 and I32)",
                            code.get<std::string>()));
    return *dtype;
  }

  Shape shape(const std::string& name, const json& value) const {
    const json& dims = field(name, value, "shape");
    auto is_extent = [](const json& d) {
      return d.is_number_unsigned() && d.get<std::uint64_t>() <= std::numeric_limits<std::int64_t>::max();
    };
    if (!dims.is_array() || !std::all_of(dims.begin(), dims.end(), is_extent))
      bad(name, fmt::format("has shape {}, which is not a list of non-negative integers", dims.dump()));
    std::vector<Dim> result;
    for (const json& d : dims) result.push_back(static_cast<Dim>(d.get<std::uint64_t>()));
    return Shape(std::move(result));
  }

  std::pair<std::uint64_t, std::uint64_t> offsets(const std::string& name, const json& value) const {
    const json& range = field(name, value, "data_offsets");
    if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() || !range[1].is_number_unsigned() ||
        range[0].get<std::uint64_t>() > range[1].get<std::uint64_t>())
      bad(name, fmt::format("has data_offsets {}, expected [begin, end] with 0 <= begin <= end", range.dump()));
    std::uint64_t begin = range[0].get<std::uint64_t>(), end = range[1].get<std::uint64_t>();
    if (end > data_size_)
      bad(name, fmt::format("has data_offsets [{}, {}] beyond the data section's {} bytes", begin, end, data_size_));
    return {begin, end};
  }

  // The product of the dimensions; refused when its bytes would not fit in 64 bits.
  std::uint64_t element_count(const std::string& name, const Shape& shape, std::uint64_t element_size) const {
    std::uint64_t count = 1;
    for (Dim d : shape.dims()) {
      auto extent = static_cast<std::uint64_t>(d);
      if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / element_size / extent)
        bad(name, fmt::format("has shape {}, too large to address", to_string(shape)));
      count *= extent;
    }
    return count;
  }

  const std::string& path_;
  std::uint64_t data_size_;
};

json parse_header(const std::string& path, const std::byte* text, std::size_t length) {
  const char* begin = reinterpret_cast<const char*>(text);
  try {
    json header = json::parse(begin, begin + length);
    if (!header.is_object()) throw NotSafetensorsError(path, "its header is not a JSON object");
    return header;
  } catch (const json::exception& e) {
    throw NotSafetensorsError(path, fmt::format("its header is not JSON ({})", e.what()));
  }
}

HostTensor make_tensor(const TensorEntry& e, const std::byte* data, const std::shared_ptr<const MappedFile>& file) {
  const std::byte* bytes = data + e.begin;
  if (reinterpret_cast<std::uintptr_t>(bytes) % dtype_size(e.dtype) == 0)
    return HostTensor::view(e.dtype, e.shape, bytes, file);
  HostTensor copy(e.dtype, e.shape);
  std::memcpy(copy.mutable_data(), bytes, copy.nbytes());
  return copy;
}

}  // namespace

NotSafetensorsError::NotSafetensorsError(const std::string& path, const std::string& reason)
    : std::invalid_argument(fmt::format("'{}' is not a safetensors file: {}", path, reason)), path_(path), reason_(reason) {}

SafetensorsFile read_safetensors(const std::string& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  std::size_t size = file->size();
  if (size < kLengthBytes)
    throw NotSafetensorsError(path, fmt::format("it is {} bytes long, shorter than the 8-byte header length", size));
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, file->data(), kLengthBytes);
  if (header_length > size - kLengthBytes)
    throw NotSafetensorsError(path, fmt::format("its header length {} runs past the end of the file ({} bytes)",
                                                header_length, size));
  json header = parse_header(path, file->data() + kLengthBytes, header_length);

  const std::byte* data = file->data() + kLengthBytes + header_length;
  HeaderReader reader(path, size - kLengthBytes - header_length);
  SafetensorsFile result;
  std::vector<TensorEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey)
      result.metadata = reader.metadata(value);
    else
      entries.push_back(reader.entry(name, value));
  }
  reader.check_disjoint(entries);
  for (const TensorEntry& e : entries) result.tensors.emplace(e.name, make_tensor(e, data, file));
  return result;
}

void write_safetensors(const std::string& path, const WeightMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey)
      throw std::invalid_argument(fmt::format("cannot write '{}': a tensor may not be named '{}'", path, kMetadataKey));
    std::uint64_t end = offset + tensor.nbytes();
    header[name] = {{"dtype", code_of(tensor.dtype())},
                    {"shape", tensor.shape().dims()},
                    {"data_offsets", json::array({offset, end})}};
    offset = end;
  }
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("cannot write '{}': a name or metadata value is not UTF-8 ({})", path, e.what()));
  }
  text.append((kLengthBytes - text.size() % kLengthBytes) % kLengthBytes, ' ');

  write_file_atomically(path, [&](std::ostream& out) {
    std::uint64_t length = text.size();
    out.write(reinterpret_cast<const char*>(&length), kLengthBytes);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : tensors) {
      // A default-constructed tensor has a shape but no bytes behind it.
      if (tensor.nbytes() > 0 && tensor.data() == nullptr)
        throw std::invalid_argument(fmt::format("cannot write '{}': tensor '{}' has no data", path, name));
      out.write(reinterpret_cast<const char*>(tensor.data()), static_cast<std::streamsize>(tensor.nbytes()));
    }
  });
}

}  // namespace rwkvc
