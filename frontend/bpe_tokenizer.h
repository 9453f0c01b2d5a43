// Byte-level BPE from a Hugging Face tokenizers JSON file, as GPT-2 and GPT-NeoX use it (RWKV-4
// Pile models ship the NeoX 20B one). Encoding follows the library's pipeline:
//   1. added tokens with "normalized": false are cut out of the raw text (leftmost-longest);
//   2. the rest is normalized (NFC, or nothing) and added tokens with "normalized": true are cut out;
//   3. the ByteLevel pre-tokenizer splits each remaining piece with GPT-2's regex, and maps every
//      byte to a printable character (so each byte is a base symbol of the vocabulary);
//   4. BPE merges adjacent symbols of a piece, lowest merge rank first, leftmost on ties.
// Decoding maps each token's characters back to bytes; added tokens stand for their text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/tokenizer.h"

namespace rwkvc {

class BpeTokenizer final : public Tokenizer {
 public:
  // Reads a tokenizers JSON file. Throws std::invalid_argument naming the file and the field at
  // fault, or what the file asks for that this implementation does not do.
  static BpeTokenizer load(const std::string& path);
  // Parses the text of such a file; `name` stands for the file in error messages.
  static BpeTokenizer parse(std::string_view json_text, const std::string& name);

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer() override;

  // Valid UTF-8 only: throws std::invalid_argument naming the offset of an invalid byte.
  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string token_bytes(std::int32_t id) const override;
  // One past the largest id of the model vocabulary and the added tokens.
  std::size_t vocab_size() const override;

 private:
  struct Impl;
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rwkvc
