// libFuzzer target: arbitrary bytes as a whole .pth file (zip directory, inflate, CRC, pickle,
// tensor layouts). read_pth may refuse them, never crash. tests/fuzz/README.md says how to run it.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "frontend/pth_reader.h"

namespace {

// The first and last byte of every tensor: AddressSanitizer checks that each view lies in bounds.
void touch(const rwkvc::WeightMap& weights) {
  for (const auto& [name, tensor] : weights) {
    if (tensor.nbytes() == 0) continue;
    [[maybe_unused]] volatile std::byte first = tensor.data()[0];
    [[maybe_unused]] volatile std::byte last = tensor.data()[tensor.nbytes() - 1];
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    touch(rwkvc::read_pth(std::as_bytes(std::span(data, size)), nullptr, "fuzz.pth"));
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
