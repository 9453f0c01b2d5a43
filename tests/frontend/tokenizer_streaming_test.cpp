// StreamingDecoder: printed chunks never end inside a multi-byte UTF-8 character, and together
// they are exactly the decoded bytes.
#include <random>

#include <catch2/catch.hpp>

#include "frontend/bpe_tokenizer.h"
#include "frontend/utf8.h"
#include "frontend/world_tokenizer.h"

namespace rwkvc::test {

namespace {

const WorldTokenizer& world() {
  static const WorldTokenizer tokenizer = WorldTokenizer::load(default_data_dir() + "/rwkv_vocab_v20230424.txt");
  return tokenizer;
}

std::vector<std::string> stream(const Tokenizer& tokenizer, const std::vector<std::int32_t>& ids) {
  StreamingDecoder decoder(tokenizer);
  std::vector<std::string> chunks;
  for (std::int32_t id : ids) chunks.push_back(decoder.push(id));
  chunks.push_back(decoder.finish());
  return chunks;
}

bool is_utf8(const std::string& s) { return utf8::first_invalid_byte(s) == s.size(); }

}  // namespace

TEST_CASE("Streaming holds a CJK character split across two World tokens", "[tokenizer][streaming]") {
  // 龘 is E9 BE 98: b'\xe9\xbe' is id 3255 and b'\x98' id 153 (lines 3255 and 153 of the vocabulary).
  CHECK(stream(world(), {3255, 153}) == std::vector<std::string>{"", "龘", ""});
}

TEST_CASE("Streaming holds an emoji ZWJ sequence split across seven World tokens", "[tokenizer][streaming]") {
  // 🧑 = F0 9F A7 91: b'\xf0\x9f' 3319, b'\xa7' 168, b'\x91' 146; ZWJ '\u200d' 9810;
  // 🚀 = F0 9F 9A 80: 3319, b'\x9a' 155, b'\x80' 129.
  CHECK(stream(world(), {3319, 168, 146, 9810, 3319, 155, 129}) ==
        std::vector<std::string>{"", "", "🧑", "\u200d", "", "", "🚀", ""});
}

TEST_CASE("Streaming emits a completed character and holds the one a token begins", "[tokenizer][streaming]") {
  // 你 = E4 BD A0, 好 = E5 A5 BD; the middle token ends one and starts the other.
  WorldTokenizer tok = WorldTokenizer::parse("1 b'\\xe4' 1\n2 b'\\xbd\\xa0\\xe5' 3\n3 b'\\xa5\\xbdok' 4\n", "split.txt");
  CHECK(stream(tok, {1, 2, 3}) == std::vector<std::string>{"", "你", "好ok", ""});
}

TEST_CASE("Streaming passes bytes that can never form a character straight through", "[tokenizer][streaming]") {
  WorldTokenizer tok = WorldTokenizer::parse("1 b'\\xe4' 1\n2 'a' 1\n3 b'\\xff' 1\n4 b'\\x80' 1\n5 b'\\xf0\\x9f' 2\n", "bad.txt");
  CHECK(stream(tok, {3, 4}) == std::vector<std::string>{"\xff", "\x80", ""});
  // E4 then 'a': the E4 can no longer be completed, so it goes out with the 'a'.
  CHECK(stream(tok, {1, 2}) == std::vector<std::string>{"", "\xe4" "a", ""});
  // finish() hands back an unfinished character at the very end as it is.
  CHECK(stream(tok, {2, 5}) == std::vector<std::string>{"a", "", "\xf0\x9f"});
}

TEST_CASE("Streamed chunks are valid UTF-8 and add up to the decoded text", "[tokenizer][streaming]") {
  const BpeTokenizer neox = BpeTokenizer::load(default_data_dir() + "/20B_tokenizer.json");
  const char* alphabet[] = {"a", " ", "\n", "龘", "你", "é", "🧑", "\u200d", "🚀", "🇫🇷", "q\u0307", "𠀀", "ไทย"};
  std::mt19937 rng(5);
  for (int round = 0; round < 100; ++round) {
    std::string text;
    for (int i = 0; i < 20; ++i) text += alphabet[rng() % std::size(alphabet)];
    for (const Tokenizer* tok : {static_cast<const Tokenizer*>(&world()), static_cast<const Tokenizer*>(&neox)}) {
      std::vector<std::int32_t> ids = tok->encode(text);
      std::string joined;
      for (const std::string& chunk : stream(*tok, ids)) {
        INFO(text);
        CHECK(is_utf8(chunk));
        joined += chunk;
      }
      CHECK(joined == tok->decode(ids));
    }
  }
}

}  // namespace rwkvc::test
