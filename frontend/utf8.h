// UTF-8 as the tokenizers need it: well-formedness per Unicode (no overlongs, no surrogates,
// nothing above U+10FFFF), recognising a character cut short at the end of a buffer, and encoding.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rwkvc::utf8 {

enum class CharStatus { complete, incomplete, invalid };

struct CharScan {
  CharStatus status;
  std::size_t length;  // bytes of the character (complete) or of the valid beginning seen so far
  char32_t code_point;  // only for complete characters
};

// Reads the character that starts `bytes`. `incomplete` means the bytes end before the
// character does, and every byte so far can still begin a well-formed character.
CharScan scan_char(std::string_view bytes);

// The offset of the first byte that does not belong to a well-formed character
// (bytes.size() when all of it is well-formed UTF-8).
std::size_t first_invalid_byte(std::string_view bytes);

// How many bytes at the end form the unfinished beginning of a well-formed character (0 to 3).
std::size_t incomplete_tail_length(std::string_view bytes);

// Appends the encoding of `code_point`, which must be a Unicode scalar value.
void append(std::string& out, char32_t code_point);

inline bool is_scalar_value(char32_t c) { return c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF); }

}  // namespace rwkvc::utf8
