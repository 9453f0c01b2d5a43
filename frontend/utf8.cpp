#include "frontend/utf8.h"

namespace rwkvc::utf8 {

CharScan scan_char(std::string_view bytes) {
  if (bytes.empty()) return {CharStatus::incomplete, 0, 0};
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return {CharStatus::complete, 1, lead};

  // The allowed range of the second byte is what excludes overlongs, surrogates and values
  // above U+10FFFF (Unicode Table 3-7); later bytes are plain continuation bytes.
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;
  char32_t value = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, value = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, value = lead & 0x07;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return {CharStatus::invalid, 0, 0};
  }
  for (std::size_t i = 1; i < length; ++i) {
    if (i >= bytes.size()) return {CharStatus::incomplete, i, 0};
    unsigned char b = byte(i);
    if (b < low || b > high) return {CharStatus::invalid, i, 0};
    low = 0x80, high = 0xBF;
    value = (value << 6) | (b & 0x3F);
  }
  return {CharStatus::complete, length, value};
}

std::size_t first_invalid_byte(std::string_view bytes) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    CharScan c = scan_char(bytes.substr(pos));
    if (c.status != CharStatus::complete) return pos;
    pos += c.length;
  }
  return pos;
}

std::size_t incomplete_tail_length(std::string_view bytes) {
  // A character is at most 4 bytes, so an unfinished one starts within the last 3.
  for (std::size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
    CharScan c = scan_char(bytes.substr(bytes.size() - back));
    if (c.status == CharStatus::incomplete) return back;
    unsigned char b = static_cast<unsigned char>(bytes[bytes.size() - back]);
    if (b < 0x80 || b >= 0xC0) return 0;  // not a continuation byte: it alone decides
  }
  return 0;
}

void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace rwkvc::utf8
