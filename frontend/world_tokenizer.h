// The RWKV World tokenizer (RWKV-5/6/7 World models): a vocabulary file of lines
// `id repr length`, repr being a Python str or bytes literal (a str stands for its UTF-8 bytes)
// and length its byte count. Encoding takes, at every position, the longest vocabulary entry
// that matches the bytes there, exactly as the reference TRIE_TOKENIZER does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/byte_trie.h"
#include "frontend/tokenizer.h"

namespace rwkvc {

class WorldTokenizer final : public Tokenizer {
 public:
  // Reads a vocabulary file. Throws std::invalid_argument naming the file (and the line) at fault.
  static WorldTokenizer load(const std::string& path);
  // Parses the text of a vocabulary file; `name` stands for the file in error messages.
  static WorldTokenizer parse(std::string_view contents, const std::string& name);

  // Any bytes; throws std::invalid_argument only if the vocabulary lacks some single byte.
  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string token_bytes(std::int32_t id) const override;
  // One past the largest id (the file's ids need not be contiguous: RWKV World has no id 0).
  std::size_t vocab_size() const override { return spans_.size(); }

  // Ids above this are refused: far beyond any real vocabulary, and each id costs table space.
  static constexpr std::int32_t kMaxId = (1 << 22) - 1;

 private:
  WorldTokenizer() = default;  // made only by parse()

  struct Span {
    std::uint32_t begin = 0;
    std::uint32_t length = 0;  // 0: no token has this id
  };

  std::string name_;
  std::string bytes_;  // every token's bytes, back to back
  std::vector<Span> spans_;  // by id
  ByteTrie trie_;
};

}  // namespace rwkvc
