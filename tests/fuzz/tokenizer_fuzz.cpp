// libFuzzer target for the tokenizers. The first input byte picks what the rest is:
//   0: bytes for the World tokenizer: decode(encode(b)) == b, and streaming adds up to the same;
//   1: a World vocabulary file: parsed, and if accepted, its tokens round-trip through it;
//   2: text for the NeoX 20B BPE tokenizer: refused unless UTF-8, else encode is a fixed point
//      of decode-then-encode (decode gives the NFC text back).
// Anything may be refused with std::invalid_argument; any other outcome is a finding.
//
// Build and run (from the source root; not part of the CMake build, which uses g++):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     -DRWKVC_SHARED_DATA="\"$PWD/../shared/data\"" tests/fuzz/tokenizer_fuzz.cpp \
//     frontend/tokenizer.cpp frontend/world_tokenizer.cpp frontend/bpe_tokenizer.cpp \
//     frontend/byte_trie.cpp frontend/utf8.cpp -lfmt -lpcre2-8 -licuuc -o tokenizer_fuzz
//   mkdir -p corpus && ./tokenizer_fuzz -dict=tests/fuzz/tokenizer_fuzz.dict corpus \
//     tests/fuzz/tokenizer_corpus -max_total_time=180
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/bpe_tokenizer.h"
#include "frontend/utf8.h"
#include "frontend/world_tokenizer.h"

namespace {

using rwkvc::Tokenizer;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "tokenizer_fuzz: %s\n", what);
  std::abort();
}

void check_round_trip(const Tokenizer& tokenizer, std::string_view bytes) {
  std::vector<std::int32_t> ids = tokenizer.encode(bytes);
  if (tokenizer.decode(ids) != bytes) finding("decode(encode(bytes)) != bytes");
  rwkvc::StreamingDecoder stream(tokenizer);
  std::string streamed;
  for (std::int32_t id : ids) streamed += stream.push(id);
  streamed += stream.finish();
  if (streamed != bytes) finding("streamed chunks do not add up to the bytes");
}

void fuzz_world(std::string_view bytes) {
  static const rwkvc::WorldTokenizer world =
      rwkvc::WorldTokenizer::load(rwkvc::default_data_dir() + "/rwkv_vocab_v20230424.txt");
  check_round_trip(world, bytes);
}

void fuzz_vocabulary(std::string_view contents) {
  std::optional<rwkvc::WorldTokenizer> parsed;
  try {
    parsed.emplace(rwkvc::WorldTokenizer::parse(contents, "fuzz.txt"));
  } catch (const std::invalid_argument&) {
    return;
  }
  // Ids go up to WorldTokenizer::kMaxId; scanning millions of absent ones (each an exception)
  // would only slow the fuzzer down.
  std::string all;
  for (std::size_t id = 0; id < std::min<std::size_t>(parsed->vocab_size(), 1 << 12); ++id) {
    try {
      all += parsed->token_bytes(static_cast<std::int32_t>(id));
    } catch (const std::invalid_argument&) {
      continue;  // ids need not be contiguous
    }
  }
  // Every byte of `all` begins some token, but a greedy match may run into a byte no token
  // starts with (a vocabulary without single bytes), which is refused.
  try {
    check_round_trip(*parsed, all);
  } catch (const std::invalid_argument&) {
  }
}

void fuzz_bpe(std::string_view text) {
  static const rwkvc::BpeTokenizer neox = rwkvc::BpeTokenizer::load(rwkvc::default_data_dir() + "/20B_tokenizer.json");
  const bool is_utf8 = rwkvc::utf8::first_invalid_byte(text) == text.size();
  std::vector<std::int32_t> ids;
  try {
    ids = neox.encode(text);
  } catch (const std::invalid_argument&) {
    if (is_utf8) finding("valid UTF-8 refused by BPE encode");
    return;
  }
  if (!is_utf8) finding("BPE encode accepted text that is not UTF-8");
  std::string decoded = neox.decode(ids);
  if (neox.encode(decoded) != ids) finding("BPE encode(decode(encode(s))) != encode(s)");
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii && decoded != text) finding("BPE decode(encode(ascii)) != ascii");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: fuzz_world(rest); break;
    case 1: fuzz_vocabulary(rest); break;
    default: fuzz_bpe(rest); break;
  }
  return 0;
}
