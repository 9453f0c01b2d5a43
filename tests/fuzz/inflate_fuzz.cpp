// libFuzzer target: the deflate decoder alone. The first two bytes give the declared output size
// (little-endian), the rest is the raw deflate stream.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "frontend/inflate.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::vector<std::byte> output(static_cast<std::size_t>(data[0] | data[1] << 8));
  try {
    rwkvc::inflate_raw(std::as_bytes(std::span(data + 2, size - 2)), output);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
