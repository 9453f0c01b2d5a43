#include "frontend/inflate.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include <zlib.h>

#include <fmt/format.h>

namespace rwkvc {

void inflate_raw(std::span<const std::byte> compressed, std::span<std::byte> output) {
  constexpr std::size_t kMaxChunk = std::numeric_limits<uInt>::max();  // zlib counts in uInt
  z_stream stream{};
  // Negative window bits: a raw deflate stream, with no zlib header or trailer (as in zip).
  if (::inflateInit2(&stream, -MAX_WBITS) != Z_OK) throw std::runtime_error("zlib could not start inflating");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(compressed.data()));
  stream.next_out = reinterpret_cast<Bytef*>(output.data());
  std::size_t in_left = compressed.size(), out_left = output.size();  // not yet handed to zlib
  int status = Z_OK;
  while (status == Z_OK) {
    if (stream.avail_in == 0 && in_left > 0) {
      stream.avail_in = static_cast<uInt>(std::min(in_left, kMaxChunk));
      in_left -= stream.avail_in;
    }
    if (stream.avail_out == 0 && out_left > 0) {
      stream.avail_out = static_cast<uInt>(std::min(out_left, kMaxChunk));
      out_left -= stream.avail_out;
    }
    status = ::inflate(&stream, Z_NO_FLUSH);
  }
  std::size_t produced = output.size() - out_left - stream.avail_out;
  std::string message = stream.msg ? stream.msg : "zlib error";
  ::inflateEnd(&stream);
  if (status == Z_STREAM_END) {
    if (produced == output.size()) return;
    throw std::invalid_argument(
        fmt::format("deflate stream inflates to {} bytes, not the {} declared", produced, output.size()));
  }
  if (status == Z_BUF_ERROR && produced == output.size())
    throw std::invalid_argument(fmt::format("deflate stream inflates to more than the {} bytes declared", output.size()));
  if (status == Z_BUF_ERROR) throw std::invalid_argument("deflate stream ends early");
  throw std::invalid_argument(fmt::format("malformed deflate stream: {}", message));
}

}  // namespace rwkvc
