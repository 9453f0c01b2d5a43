// The RWKV World tokenizer: the vocabulary file's literal syntax, greedy longest match with ids
// read off rwkv_vocab_v20230424.txt (line N of that file holds id N), round trips, bad files.
#include <chrono>
#include <random>

#include <catch2/catch.hpp>

#include "frontend/world_tokenizer.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Ids = std::vector<std::int32_t>;

std::string world_vocab_path() { return default_data_dir() + "/rwkv_vocab_v20230424.txt"; }

const WorldTokenizer& world() {
  static const WorldTokenizer tokenizer = WorldTokenizer::load(world_vocab_path());
  return tokenizer;
}

// The message of the std::invalid_argument that parsing `contents` throws ("" if none).
std::string parse_error(const std::string& contents, const std::string& name = "vocab.txt") {
  try {
    WorldTokenizer::parse(contents, name);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("World vocabulary literals: str and bytes, both quotes, every escape repr() writes", "[tokenizer][world]") {
  // A str stands for its UTF-8 bytes, so '\x80' is U+0080 (2 bytes) while b'\x80' is one byte.
  WorldTokenizer tok = WorldTokenizer::parse(
      "1 '\\x00' 1\n"
      "2 '\\x80' 2\n"
      "3 b'\\x80' 1\n"
      "4 \"it's\" 4\n"
      "5 'say \\'hi\\'' 8\n"
      "6 '\\\\' 1\n"
      "7 '\\t\\n\\r' 3\n"
      "8 '\\u200d' 3\n"
      "9 '\\U0001F680' 4\n"
      "10 '你' 3\n"
      "11 b'a\\'\"\\xFF' 4\n"
      "12 \"\\\"\" 1\n"
      "13 'x y z' 5\n",
      "literals.txt");
  CHECK(tok.token_bytes(1) == std::string(1, '\0'));
  CHECK(tok.token_bytes(2) == "\xC2\x80");
  CHECK(tok.token_bytes(3) == "\x80");
  CHECK(tok.token_bytes(4) == "it's");
  CHECK(tok.token_bytes(5) == "say 'hi'");
  CHECK(tok.token_bytes(6) == "\\");
  CHECK(tok.token_bytes(7) == "\t\n\r");
  CHECK(tok.token_bytes(8) == "\xE2\x80\x8D");
  CHECK(tok.token_bytes(9) == "\xF0\x9F\x9A\x80");
  CHECK(tok.token_bytes(10) == "\xE4\xBD\xA0");
  CHECK(tok.token_bytes(11) == "a'\"\xFF");
  CHECK(tok.token_bytes(12) == "\"");
  CHECK(tok.token_bytes(13) == "x y z");
  CHECK(tok.vocab_size() == 14);
  CHECK_THROWS_WITH(tok.token_bytes(0), Catch::Contains("token id 0") && Catch::Contains("literals.txt"));
}

TEST_CASE("World vocabulary: a later line with the same bytes wins, as in the reference's dict", "[tokenizer][world]") {
  WorldTokenizer tok = WorldTokenizer::parse("1 'a' 1\n2 'ab' 2\n3 b'a' 1\r\n", "dup.txt");
  CHECK(tok.encode("aab") == Ids{3, 2});
  CHECK(tok.token_bytes(1) == "a");  // still decodes
}

TEST_CASE("World vocabulary files with mistakes are refused, naming the file and line", "[tokenizer][world]") {
  const std::string good = "1 'a' 1\n";
  CHECK_THAT(parse_error(good + "2 '\\q' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("unknown escape \\q"));
  CHECK_THAT(parse_error(good + "2 'abc' 4\n"),
             Catch::Contains("vocab.txt:2:") && Catch::Contains("3 bytes but the line says 4"));
  CHECK_THAT(parse_error(good + "2 'abc 3\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("not closed"));
  CHECK_THAT(parse_error(good + "2 abc 3\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("str or bytes literal"));
  CHECK_THAT(parse_error(good + "1 'b' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("already defined on line 1"));
  CHECK_THAT(parse_error(good + "x 'b' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("token id"));
  CHECK_THAT(parse_error(good + "2 '\\ud800' 3\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("U+D800"));
  CHECK_THAT(parse_error(good + "2 b'\\u0041' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("bytes literal"));
  CHECK_THAT(parse_error(good + "2 b'\xC3\xA9' 2\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("only ASCII"));
  CHECK_THAT(parse_error(good + "2 '\xC3' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("not valid UTF-8"));
  CHECK_THAT(parse_error(good + "2 '\\x4' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("hex digits"));
  CHECK_THAT(parse_error(good + "2 'b' 1 extra\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("after the byte length"));
  CHECK_THAT(parse_error(good + "2 '' 0\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("empty"));
  CHECK_THAT(parse_error(good + "\n2 'b' 1\n"), Catch::Contains("vocab.txt:2: empty line"));
  CHECK_THAT(parse_error(good + "99999999 'b' 1\n"), Catch::Contains("vocab.txt:2:") && Catch::Contains("above"));
  CHECK_THAT(parse_error(""), Catch::Contains("vocab.txt") && Catch::Contains("no tokens"));
}

TEST_CASE("World vocabulary: a missing file is refused by name", "[tokenizer][world]") {
  TempDir dir;
  CHECK_THROWS_WITH(WorldTokenizer::load(dir.file("absent.txt")), Catch::Contains("absent.txt"));
  write_bytes(dir.file("bad.txt"), "1 'a' 1\n2 'b' 7\n");
  CHECK_THROWS_WITH(WorldTokenizer::load(dir.file("bad.txt")), Catch::Contains("bad.txt:2:"));
}

TEST_CASE("World encode takes the longest vocabulary entry at each position", "[tokenizer][world]") {
  // "understandable": from position 0 the file has 'u' (118), 'un' (2239), 'und' (8935),
  // 'unde' (27317), 'under' (35881), 'unders' (42430) and nothing longer ('underst' is absent);
  // then 'tan' (8778; no 'tand'), 'da' (1814; no 'dab'), 'ble' (7162). Greedy does not find
  // 'under' + 'stand' (35688) + 'able' (24381) although all three are entries.
  CHECK(world().encode("understandable") == Ids{42430, 8778, 1814, 7162});
  // 'Hello' (line 33155) and ' world' (line 40213).
  CHECK(world().encode("Hello world") == Ids{33155, 40213});
  // '  \n' (3339), '\n  ' (3331), 'x' (121).
  CHECK(world().encode("  \n\n  x") == Ids{3339, 3331, 121});
  // The longest entry of all is 128 spaces (65529); two are left for '  ' (267).
  CHECK(world().encode(std::string(130, ' ')) == Ids{65529, 267});
}

TEST_CASE("World encode: CJK, emoji with ZWJ, and bytes that are not UTF-8", "[tokenizer][world]") {
  // '你' 10464, '好' 11685, '，' 19137 (no '你好' nor '好，' in the file).
  CHECK(world().encode("你好，") == Ids{10464, 11685, 19137});
  // 🧑 (F0 9F A7 91) and 🚀 (F0 9F 9A 80) are not entries: b'\xf0\x9f' 3319 is the longest prefix,
  // then single bytes b'\xa7' 168, b'\x91' 146, b'\x9a' 155, b'\x80' 129; the ZWJ is '\u200d' 9810.
  CHECK(world().encode("🧑\u200d🚀") == Ids{3319, 168, 146, 9810, 3319, 155, 129});
  // Each single byte b is an entry with id b + 1: '\x00' is line 1, b'\xff' line 256.
  CHECK(world().encode(std::string("\x00\xff\xfe", 3)) == Ids{1, 256, 255});
  CHECK(world().encode("").empty());
}

TEST_CASE("World decode(encode(s)) == s", "[tokenizer][world]") {
  const char* texts[] = {
      "The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()",
      "  leading and trailing  \t\t\n\n\r\n   ",
      "中文，日本語のテキスト，한국어 텍스트",
      "emoji 😀👍🏽 🇫🇷 👨\u200d👩\u200d👧\u200d👦 🧑\u200d🚀",
      "combining: e\u0301 a\u0308\u0323 q\u0307 \u0915\u094D\u0937",
      "龘 𠀀 \U0010FFFD",
  };
  for (const char* text : texts) {
    INFO(text);
    CHECK(world().decode(world().encode(text)) == text);
  }
  std::mt19937 rng(11);
  for (int round = 0; round < 50; ++round) {
    std::string bytes(1 + rng() % 200, '\0');
    for (char& c : bytes) c = static_cast<char>(1 + rng() % 255);
    CHECK(world().decode(world().encode(bytes)) == bytes);
  }
}

TEST_CASE("World decode refuses an unknown id by name", "[tokenizer][world]") {
  CHECK(world().vocab_size() == 65530);  // ids 1..65529
  CHECK_THROWS_WITH(world().decode(Ids{33155, 0}), Catch::Contains("token id 0"));
  CHECK_THROWS_WITH(world().decode(Ids{65530}), Catch::Contains("token id 65530"));
  CHECK_THROWS_WITH(world().token_bytes(-3), Catch::Contains("token id -3"));
}

TEST_CASE("World vocabulary loads well under 100 ms", "[tokenizer][world][timing]") {
  double best_ms = 1e9;
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    WorldTokenizer tok = WorldTokenizer::load(world_vocab_path());
    best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    REQUIRE(tok.vocab_size() == 65530);
  }
  WARN("World vocabulary load: best of 5 = " << best_ms << " ms");
  CHECK(best_ms < 500);  // generous, for slow CI machines and debug builds
}

}  // namespace rwkvc::test
