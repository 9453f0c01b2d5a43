// Byte-level BPE with the GPT-NeoX 20B tokenizer (20B_tokenizer.json). Expected ids are worked
// out by hand from that file: model.vocab entries (line numbers given), model.merges ranks
// (rank r is the (r+1)-th merge; the list starts on line 50514, so rank r is on line 50514 + r),
// and added_tokens. In the file's byte-level text Ġ (\u0120) stands for a space and Ċ (\u010a)
// for a newline.
#include <catch2/catch.hpp>

#include "frontend/bpe_tokenizer.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Ids = std::vector<std::int32_t>;

std::string neox_path() { return default_data_dir() + "/20B_tokenizer.json"; }

const BpeTokenizer& neox() {
  static const BpeTokenizer tokenizer = BpeTokenizer::load(neox_path());
  return tokenizer;
}

// The message of the std::invalid_argument that loading the 20B file with `from` replaced by
// `to` throws ("" if none).
std::string edited_file_error(const std::string& from, const std::string& to) {
  TempDir dir;
  std::string json = read_bytes(neox_path());
  std::size_t at = json.find(from);
  REQUIRE(at != std::string::npos);
  json.replace(at, from.size(), to);
  const std::string path = dir.file("edited.json");
  write_bytes(path, json);
  try {
    BpeTokenizer::load(path);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("BPE merges by rank: ' the' and 'Hello world'", "[tokenizer][bpe]") {
  // " the" is one pre-token, "Ġthe". Ranks: "Ġ t" 1, "h e" 3, then "Ġt he" 8 gives "Ġthe",
  // id 253 (line 511).
  CHECK(neox().encode(" the") == Ids{253});
  // Pre-tokens "Hello" and " world". "Hello": "e l" 48, "el l" 192, "ell o" 6401, "H ello" 11847
  // -> id 12092 (line 12350). "Ġworld": "Ġ w" 14, "o r" 18, "l d" 147, "Ġw or" 303,
  // "Ġwor ld" 1288 -> id 1533 (line 1791).
  CHECK(neox().encode("Hello world") == Ids{12092, 1533});
}

TEST_CASE("BPE breaks rank ties leftmost first", "[tokenizer][bpe]") {
  // "aaa": "a a" (rank 5536) applies at both positions; taking the left one leaves "aa a", which
  // merges (rank 39394) into "aaa", id 39639 (line 39897). Taking the right one first would
  // leave "a aa", which is no merge.
  CHECK(neox().encode("aaa") == Ids{39639});
}

TEST_CASE("BPE pre-tokenizer: contractions, newlines and the space before a word", "[tokenizer][bpe]") {
  // "it's" splits as "it" + "'s" (the regex takes 's first): "i t" (rank 17) -> "it" 262 (line
  // 520); "' s" (rank 189) -> "'s" 434 (line 692).
  CHECK(neox().encode("it's") == Ids{262, 434});
  // "\n\n" is one whitespace pre-token; "Ċ Ċ" (rank 290) -> "ĊĊ" 535 (line 793).
  CHECK(neox().encode("\n\n") == Ids{535});
}

TEST_CASE("BPE added tokens are cut out before pre-tokenization", "[tokenizer][bpe]") {
  // <|endoftext|> is added token 0 (special, matched in the raw text); "hi" merges by "h i"
  // (rank 5556) into 5801 (line 6059).
  CHECK(neox().encode("<|endoftext|>hi") == Ids{0, 5801});
  // Runs of 2 to 24 spaces are added tokens (normalized ones, 50254 = 24 spaces down to
  // 50276 = 2): five spaces are 50273 (line 196), the longest match at that position.
  // "a" is 66 (line 324), "b" 67 (line 325).
  CHECK(neox().encode("a     b") == Ids{66, 50273, 67});
  // 30 spaces: leftmost-longest takes 24 (50254), then 6 (50272).
  CHECK(neox().encode(std::string(30, ' ')) == Ids{50254, 50272});
  CHECK(neox().token_bytes(0) == "<|endoftext|>");
  CHECK(neox().token_bytes(50273) == "     ");
}

TEST_CASE("BPE normalizes to NFC first", "[tokenizer][bpe]") {
  // e + U+0301 composes to é (C3 A9); its byte-level text "Ã©" merges by "Ã ©" (rank 615) into
  // 860 (line 1118).
  CHECK(neox().encode("e\u0301") == Ids{860});
  CHECK(neox().encode("\u00e9") == Ids{860});
}

TEST_CASE("BPE decode(encode(s)) == s for NFC text", "[tokenizer][bpe]") {
  const char* texts[] = {
      "The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()",
      "  leading and trailing  \t\t\n\n\r\n   x     y" "                                    z",
      "中文，日本語のテキスト，한국어 텍스트",
      "emoji 😀👍🏽 🇫🇷 👨\u200d👩\u200d👧\u200d👦 🧑\u200d🚀",
      // NFC-stable combining sequences: no precomposed q with dot above, nor a with both marks
      // in this order, nor the Devanagari conjunct.
      "combining: q\u0307 \u1EA1\u0308 \u0915\u094D\u0937",
      "<|endoftext|>code:\n    return x;<|padding|>",
      "\U0010FFFD \u2028 \u00a0\u3000 don't I'M",
  };
  for (const char* text : texts) {
    INFO(text);
    CHECK(neox().decode(neox().encode(text)) == text);
  }
}

TEST_CASE("BPE refuses text that is not UTF-8, naming the offset", "[tokenizer][bpe]") {
  CHECK_THROWS_WITH(neox().encode("ok\xff"), Catch::Contains("offset 2") && Catch::Contains("0xff"));
  CHECK_THROWS_WITH(neox().encode("\xed\xa0\x80"), Catch::Contains("offset 0"));  // a UTF-8-encoded surrogate
}

TEST_CASE("BPE token ids: vocabulary size and unknown ids", "[tokenizer][bpe]") {
  CHECK(neox().vocab_size() == 50277);  // model.vocab 0..50253, added tokens up to 50276
  CHECK_THROWS_WITH(neox().token_bytes(50277), Catch::Contains("token id 50277") && Catch::Contains("20B_tokenizer.json"));
  CHECK_THROWS_WITH(neox().token_bytes(-1), Catch::Contains("token id -1"));
}

TEST_CASE("BPE tokenizer files with mistakes are refused, naming the file and the field", "[tokenizer][bpe]") {
  CHECK_THAT(edited_file_error("\"vocab\": {", "\"vocabulary\": {"),
             Catch::Contains("edited.json") && Catch::Contains("model.vocab is missing"));
  CHECK_THAT(edited_file_error("\"merges\": [", "\"merges\": 5, \"x\": ["),
             Catch::Contains("edited.json") && Catch::Contains("model.merges is a JSON number"));
  CHECK_THAT(edited_file_error("\"h e\",", "\"h NOSUCHSYMBOL\","),
             Catch::Contains("edited.json") && Catch::Contains("model.merges[3]") && Catch::Contains("\"NOSUCHSYMBOL\" is not in model.vocab"));
  CHECK_THAT(edited_file_error("\"h e\",", "\"he\","), Catch::Contains("model.merges[3] \"he\" is not two symbols"));
  CHECK_THAT(edited_file_error("\"a\": 66,", ""), Catch::Contains("model.vocab lacks \"a\"") && Catch::Contains("0x61"));
  CHECK_THAT(edited_file_error("\"type\": \"NFC\"", "\"type\": \"NFKC\""),
             Catch::Contains("edited.json") && Catch::Contains("normalizer \"NFKC\""));
  CHECK_THAT(edited_file_error("\"type\": \"BPE\"", "\"type\": \"WordPiece\""), Catch::Contains("model.type is \"WordPiece\""));
  CHECK_THAT(edited_file_error("\"lstrip\": false", "\"lstrip\": true"), Catch::Contains("added_tokens[0].lstrip is true"));
  CHECK_THAT(edited_file_error("\"a\": 66,", "\"a\": \"x\","), Catch::Contains("model.vocab[\"a\"] is not a token id"));
  CHECK_THAT(edited_file_error("\"version\"", "{\"version\""), Catch::Contains("edited.json: not valid JSON"));
  CHECK_THROWS_WITH(BpeTokenizer::load("/nonexistent/tok.json"), Catch::Contains("/nonexistent/tok.json"));
}

TEST_CASE("load_tokenizer picks the tokenizer by name or extension", "[tokenizer]") {
  CHECK(load_tokenizer("world")->vocab_size() == 65530);
  CHECK(load_tokenizer(neox_path())->vocab_size() == 50277);
  CHECK(load_tokenizer(default_data_dir() + "/rwkv_vocab_v20230424.txt")->encode("Hello") == Ids{33155});
  CHECK_THROWS_WITH(load_tokenizer("gpt2"), Catch::Contains("'gpt2'"));
}

}  // namespace rwkvc::test
