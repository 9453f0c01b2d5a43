// Text <-> token ids. Two implementations: the RWKV World tokenizer (greedy longest match over
// bytes, frontend/world_tokenizer.*) and byte-level BPE in the Hugging Face tokenizers JSON
// format (GPT-NeoX 20B for RWKV-4 Pile models, frontend/bpe_tokenizer.*).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkvc {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Any UTF-8 text (and, for the World tokenizer, any bytes).
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  // The bytes a token stands for; throws std::invalid_argument naming an unknown id.
  virtual std::string token_bytes(std::int32_t id) const = 0;
  virtual std::size_t vocab_size() const = 0;

  // The concatenated bytes of the tokens (not necessarily valid UTF-8 when cut mid-character).
  std::string decode(std::span<const std::int32_t> tokens) const;
};

// "world" (the RWKV World vocabulary found in the data directory), a World vocabulary file
// (*.txt), or a tokenizers JSON file (*.json). Throws std::invalid_argument naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

// Where "world" looks: $RWKVC_DATA if set, else the shared data folder beside the source tree.
std::string default_data_dir();

// Turns a token stream into printable text without ever splitting a multi-byte UTF-8 character
// across two chunks: bytes of an unfinished character wait for the next token.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // The text that became complete with this token (possibly empty).
  std::string push(std::int32_t token);
  // Whatever is still pending (an incomplete character at the very end), as is.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
};

}  // namespace rwkvc
