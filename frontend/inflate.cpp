#include "frontend/inflate.h"

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace rwkvc {

namespace {

constexpr int kMaxCodeBits = 15;
constexpr int kLiteralLengthSymbols = 288;  // 286 usable; the fixed code assigns all 288
constexpr int kDistanceSymbols = 32;        // 30 usable
constexpr int kEndOfBlock = 256;

// RFC 1951, 3.2.5: length symbols 257..285 and distance symbols 0..29.
constexpr std::array<std::uint16_t, 29> kLengthBase{3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                                    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr std::array<std::uint8_t, 29> kLengthExtra{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::array<std::uint16_t, 30> kDistanceBase{1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                                      33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                                      1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr std::array<std::uint8_t, 30> kDistanceExtra{0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                      6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// The order in which a dynamic block lists the code lengths of the code-length alphabet.
constexpr std::array<std::uint8_t, 19> kCodeLengthOrder{16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                        11, 4,  12, 3, 13, 2, 14, 1, 15};

[[noreturn]] void fail(const std::string& why) { throw std::invalid_argument(why); }

// Bits in the order deflate packs them: from the least significant bit of each byte.
class BitReader {
 public:
  explicit BitReader(std::span<const std::byte> input) : input_(input) {}

  std::uint32_t bits(int count) {  // count <= 16
    while (held_ < count) {
      if (next_ == input_.size()) fail("the deflate stream ends early");
      buffer_ |= static_cast<std::uint32_t>(std::to_integer<std::uint8_t>(input_[next_++])) << held_;
      held_ += 8;
    }
    std::uint32_t value = buffer_ & ((1u << count) - 1);
    buffer_ >>= count;
    held_ -= count;
    return value;
  }

  // Stored blocks start on a byte boundary: the rest of the current byte is padding.
  std::span<const std::byte> bytes_after_alignment(std::size_t count) {
    buffer_ = 0;
    held_ = 0;
    if (count > input_.size() - next_) fail("a stored deflate block runs past the end of the stream");
    std::span<const std::byte> result = input_.subspan(next_, count);
    next_ += count;
    return result;
  }

 private:
  std::span<const std::byte> input_;
  std::size_t next_ = 0;
  std::uint32_t buffer_ = 0;
  int held_ = 0;
};

// A canonical Huffman code given by its code lengths: how many codes each length has, and
// the symbols in code order.
class HuffmanCode {
 public:
  explicit HuffmanCode(std::span<const std::uint8_t> lengths) : symbols_(lengths.size()) {
    for (std::uint8_t length : lengths) ++count_[length];
    int unused = 1;  // codes of the current length not yet assigned
    for (int length = 1; length <= kMaxCodeBits; ++length) {
      unused = 2 * unused - count_[length];
      if (unused < 0) fail("a deflate block has an over-subscribed Huffman code");
    }
    std::array<int, kMaxCodeBits + 2> next{};
    for (int length = 1; length <= kMaxCodeBits; ++length) next[length + 1] = next[length] + count_[length];
    for (std::size_t symbol = 0; symbol < lengths.size(); ++symbol)
      if (lengths[symbol] != 0)
        symbols_[static_cast<std::size_t>(next[lengths[symbol]]++)] = static_cast<std::uint16_t>(symbol);
  }

  // One bit at a time: slow, simple and never indexes past a table.
  int decode(BitReader& in) const {
    int code = 0, first = 0, index = 0;
    for (int length = 1; length <= kMaxCodeBits; ++length) {
      code |= static_cast<int>(in.bits(1));
      int count = count_[length];
      if (code - first < count) return symbols_[static_cast<std::size_t>(index + code - first)];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    fail("a deflate block uses a Huffman code it never defined");
  }

 private:
  std::array<int, kMaxCodeBits + 1> count_{};
  std::vector<std::uint16_t> symbols_;
};

class Inflater {
 public:
  Inflater(std::span<const std::byte> input, std::span<std::byte> output) : in_(input), out_(output) {}

  void run() {
    bool last = false;
    while (!last) {
      last = in_.bits(1) == 1;
      switch (in_.bits(2)) {
        case 0: stored_block(); break;
        case 1: fixed_block(); break;
        case 2: dynamic_block(); break;
        default: fail("a deflate block has the reserved block type 3");
      }
    }
    if (written_ != out_.size())
      fail(fmt::format("the deflate stream inflates to {} bytes, not the {} declared", written_, out_.size()));
  }

 private:
  void room_for(std::size_t count) const {
    if (count > out_.size() - written_)
      fail(fmt::format("the deflate stream inflates to more than the {} bytes declared", out_.size()));
  }

  void stored_block() {
    std::span<const std::byte> header = in_.bytes_after_alignment(4);
    auto u16 = [&](std::size_t at) {
      return static_cast<std::uint16_t>(std::to_integer<unsigned>(header[at]) |
                                        std::to_integer<unsigned>(header[at + 1]) << 8);
    };
    std::uint16_t length = u16(0);
    if (static_cast<std::uint16_t>(~u16(2)) != length) fail("a stored deflate block's length check does not match");
    std::span<const std::byte> bytes = in_.bytes_after_alignment(length);
    room_for(length);
    std::copy(bytes.begin(), bytes.end(), out_.begin() + static_cast<std::ptrdiff_t>(written_));
    written_ += length;
  }

  void fixed_block() {
    static const HuffmanCode literals = [] {
      std::array<std::uint8_t, kLiteralLengthSymbols> lengths{};
      for (int s = 0; s < kLiteralLengthSymbols; ++s) lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
      return HuffmanCode(lengths);
    }();
    static const HuffmanCode distances = [] {
      std::array<std::uint8_t, kDistanceSymbols> lengths{};
      lengths.fill(5);
      return HuffmanCode(lengths);
    }();
    codes(literals, distances);
  }

  void dynamic_block() {
    auto literal_count = static_cast<int>(in_.bits(5)) + 257;
    auto distance_count = static_cast<int>(in_.bits(5)) + 1;
    auto code_length_count = static_cast<int>(in_.bits(4)) + 4;
    if (literal_count > 286 || distance_count > 30) fail("a dynamic deflate block declares too many codes");

    std::array<std::uint8_t, 19> code_lengths{};
    for (int i = 0; i < code_length_count; ++i)
      code_lengths[kCodeLengthOrder[i]] = static_cast<std::uint8_t>(in_.bits(3));
    HuffmanCode code_length_code(code_lengths);

    std::vector<std::uint8_t> lengths;
    auto total = static_cast<std::size_t>(literal_count + distance_count);
    while (lengths.size() < total) {
      int symbol = code_length_code.decode(in_);
      std::uint8_t value = 0;
      std::size_t repeat = 1;
      if (symbol < 16) {
        value = static_cast<std::uint8_t>(symbol);
      } else if (symbol == 16) {
        if (lengths.empty()) fail("a dynamic deflate block repeats a code length before giving one");
        value = lengths.back();
        repeat = 3 + in_.bits(2);
      } else {
        repeat = symbol == 17 ? 3 + in_.bits(3) : 11 + in_.bits(7);
      }
      if (repeat > total - lengths.size()) fail("a dynamic deflate block repeats code lengths past its last code");
      lengths.insert(lengths.end(), repeat, value);
    }
    if (lengths[kEndOfBlock] == 0) fail("a dynamic deflate block has no end-of-block code");
    std::span<const std::uint8_t> all(lengths);
    codes(HuffmanCode(all.first(static_cast<std::size_t>(literal_count))),
          HuffmanCode(all.subspan(static_cast<std::size_t>(literal_count))));
  }

  // Literals and back-references until the end-of-block symbol.
  void codes(const HuffmanCode& literals, const HuffmanCode& distances) {
    while (true) {
      int symbol = literals.decode(in_);
      if (symbol < 256) {
        room_for(1);
        out_[written_++] = static_cast<std::byte>(symbol);
        continue;
      }
      if (symbol == kEndOfBlock) return;
      auto length_index = static_cast<std::size_t>(symbol - 257);
      if (length_index >= kLengthBase.size())
        fail(fmt::format("a deflate block uses the invalid length symbol {}", symbol));
      std::size_t length = kLengthBase[length_index] + in_.bits(kLengthExtra[length_index]);
      auto distance_index = static_cast<std::size_t>(distances.decode(in_));
      if (distance_index >= kDistanceBase.size())
        fail(fmt::format("a deflate block uses the invalid distance symbol {}", distance_index));
      std::size_t distance = kDistanceBase[distance_index] + in_.bits(kDistanceExtra[distance_index]);
      if (distance > written_) fail("a deflate block refers back before the start of the output");
      room_for(length);
      for (std::size_t i = 0; i < length; ++i, ++written_) out_[written_] = out_[written_ - distance];  // may overlap
    }
  }

  BitReader in_;
  std::span<std::byte> out_;
  std::size_t written_ = 0;
};

}  // namespace

void inflate_raw(std::span<const std::byte> compressed, std::span<std::byte> output) {
  Inflater(compressed, output).run();
}

}  // namespace rwkvc
