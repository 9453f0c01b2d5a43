// libFuzzer target: arbitrary bytes as the data.pkl of an otherwise valid archive, so that the
// pickle reader and the tensor records are reached past the CRC check. Storages "0" to "3" hold
// 1, 6, 24 and 100 f32 elements.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../frontend/pth_test_support.h"
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
  using namespace rwkvc::test;
  ZipSpec spec;
  spec.entries.emplace_back("archive/data.pkl", std::string(reinterpret_cast<const char*>(data), size));
  const int numels[] = {1, 6, 24, 100};
  for (int key = 0; key < 4; ++key)
    spec.entries.emplace_back("archive/data/" + std::to_string(key),
                              std::string(4 * static_cast<std::size_t>(numels[key]), '\x3f'));
  std::string archive = make_zip(spec);
  try {
    touch(rwkvc::read_pth(std::as_bytes(std::span(archive.data(), archive.size())), nullptr, "fuzz.pth"));
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
