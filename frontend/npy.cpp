#include "frontend/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "frontend/atomic_file.h"

namespace rwkvc {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

[[noreturn]] void bad_npy(const std::string& path, const std::string& why) {
  throw std::invalid_argument(fmt::format("'{}' is not a float .npy file: {}", path, why));
}

// The text after `key`'s colon in the header dict, up to the first of `terminators`.
std::string header_field(const std::string& header, const std::string& key, const char* terminators,
                         const std::string& path) {
  std::size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) bad_npy(path, "header has no '" + key + "'");
  std::size_t begin = header.find_first_not_of(' ', header.find(':', at) + 1);
  std::size_t end = header.find_first_of(terminators, begin);
  if (begin == std::string::npos || end == std::string::npos) bad_npy(path, "malformed header");
  return header.substr(begin, end - begin);
}

}  // namespace

void write_npy(const std::string& path, const HostTensor& tensor) {
  std::vector<std::int64_t> dims(tensor.shape().dims().begin(), tensor.shape().dims().end());
  std::string shape = dims.size() == 1 ? fmt::format("({},)", dims[0]) : fmt::format("({})", fmt::join(dims, ", "));
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", shape);
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  auto values = tensor.f32();
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(kMagic, 6);
    out.put(1);
    out.put(0);
    auto length = static_cast<std::uint16_t>(header.size());
    out.put(static_cast<char>(length & 0xff));
    out.put(static_cast<char>(length >> 8));
    out << header;
    out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size_bytes()));
  });
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) bad_npy(path, "no NUMPY magic");
  std::size_t header_length = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  if (bytes[6] != 1) bad_npy(path, "only format version 1.0 is read");
  if (10 + header_length > bytes.size()) bad_npy(path, "truncated header");
  std::string header = bytes.substr(10, header_length);

  std::string descr = header_field(header, "descr", ",}", path);
  std::size_t width = descr == "'<f4'" ? 4 : descr == "'<f8'" ? 8 : 0;
  if (width == 0) bad_npy(path, "element type " + descr + " (expected '<f4' or '<f8')");
  if (header_field(header, "fortran_order", ",}", path) != "False") bad_npy(path, "Fortran order");

  NpyArray array;
  std::string shape = header_field(header, "shape", ")", path);  // "(3, 4" 
  std::size_t count = 1;
  for (std::size_t i = 0; i < shape.size();) {
    if (std::isdigit(static_cast<unsigned char>(shape[i]))) {
      std::size_t used = 0;
      array.shape.push_back(std::stoll(shape.substr(i), &used));
      count *= static_cast<std::size_t>(array.shape.back());
      i += used;
    } else {
      ++i;
    }
  }
  std::size_t data = 10 + header_length;
  if (bytes.size() - data != count * width)
    bad_npy(path, fmt::format("{} data bytes for {} elements of {} bytes", bytes.size() - data, count, width));
  array.values.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (width == 4) {
      float f;
      std::memcpy(&f, bytes.data() + data + 4 * i, 4);
      array.values[i] = f;
    } else {
      std::memcpy(&array.values[i], bytes.data() + data + 8 * i, 8);
    }
  }
  return array;
}

}  // namespace rwkvc
