// rwkvc forward --text: a document streamed through the model a piece at a time gives exactly
// the tokens (and so the state) of the whole text, and memory does not grow with its length.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <regex>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "e2e_support.h"
#include "tool_runner.h"
#include "frontend/random_model.h"
#include "frontend/safetensors.h"
#include "frontend/state_file.h"
#include "frontend/tokenizer.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

std::string scratch(const std::string& name) { return (scratch_dir() / name).string(); }

ToolRun run_ok(const std::vector<std::string>& args) {
  ToolRun r = run_rwkvc(args);
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  return r;
}

// "streamed N tokens ... peak RSS K KiB" from forward --text's report.
struct StreamReport {
  std::size_t tokens;
  double rss_kib;
};

StreamReport parse_report(const std::string& output) {
  std::smatch m;
  INFO(output);
  REQUIRE(std::regex_search(output, m, std::regex(R"(streamed (\d+) tokens .* peak RSS (\d+) KiB)")));
  return {std::stoul(m[1]), std::stod(m[2])};
}

const std::string kModel = fixture_path("rwkv7-tiny.safetensors");

// ASCII bytes 0..127 as ids 0..127, and 128 longer tokens that overlap each other ("ab",
// "aba", runs of 'a' up to 129 bytes): greedy matches that a careless cut between pieces breaks.
std::string overlapping_vocabulary() {
  std::string path = scratch("overlap.txt"), text;
  for (int i = 0; i < 128; ++i) text += fmt::format("{} b'\\x{:02x}' 1\n", i, i);
  std::vector<std::string> long_tokens{"ab", "aba", "abab", "ba", "bab", "the ", "then", "there "};
  for (int n = 2; long_tokens.size() < 128; n += 1) long_tokens.push_back(std::string(static_cast<std::size_t>(n), 'a'));
  for (std::size_t i = 0; i < long_tokens.size(); ++i)
    text += fmt::format("{} '{}' {}\n", 128 + i, long_tokens[i], long_tokens[i].size());
  write_file(path, text);
  return path;
}

std::string random_bytes(std::size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::string bytes(count, '\0');
  for (char& b : bytes) b = static_cast<char>(rng() & 0xff);
  return bytes;
}

// Whether the state saved at `path` is the one feeding `tokens` to the model N at a time gives.
// A tolerance, not equality, so the CLI's optimisation passes may round differently; one token
// more, less or other changes the state far more than that.
bool state_matches(const std::string& path, const Model& model, const std::vector<std::int32_t>& tokens,
                   std::int64_t chunk) {
  CompiledModel m = compile_on_cpu(model);
  State state = m.exe->new_state();
  feed(*m.exe, tokens, state, FeedMode::chunked(chunk));
  HostState expected = state.to_host(), saved = load_state(path);
  if (saved.layout != expected.layout) return false;
  for (std::size_t i = 0; i < expected.slots.size(); ++i) {
    Error e = compare(std::span<const float>(saved.slots[i]), std::span<const float>(expected.slots[i]));
    if (e.relative > 1e-5) {
      UNSCOPED_INFO("slot " << expected.layout.slots[i].name << ": max error " << e.max_abs << ", relative " << e.relative);
      return false;
    }
  }
  return true;
}

// Each piece tokenized on its own: what streaming without a carried tail would give.
std::vector<std::int32_t> encode_pieces(const Tokenizer& tokenizer, const std::string& text, std::size_t piece) {
  std::vector<std::int32_t> tokens;
  for (std::size_t at = 0; at < text.size(); at += piece) {
    auto part = tokenizer.encode(std::string_view(text).substr(at, piece));
    tokens.insert(tokens.end(), part.begin(), part.end());
  }
  return tokens;
}

}  // namespace

TEST_CASE("streaming a text in small pieces gives the whole text's tokens (greedy matching)", "[e2e][stream]") {
  const std::string vocab = overlapping_vocabulary(), path = scratch("overlap-text.txt"), state = scratch("s1.safetensors");
  std::mt19937 rng(5);
  std::string text;
  const char* words[] = {"the ", "then", "there ", "abab", "ba", "x", "\n"};
  while (text.size() < 6000) {
    if (rng() % 4 == 0) text += std::string(rng() % 200 + 1, 'a');  // runs longer than any token
    else text += words[rng() % 7];
  }
  write_file(path, text);
  auto tokenizer = load_tokenizer(vocab);
  std::vector<std::int32_t> whole = tokenizer->encode(text);
  REQUIRE(encode_pieces(*tokenizer, text, 97) != whole);  // the cuts do matter for this text

  StreamReport r = parse_report(run_ok({"forward", "--model", kModel, "--tokenizer", vocab, "--text", path, "--chunk", "7",
                                        "--read-bytes", "97", "--save-state", state})
                                    .output());
  CHECK(r.tokens == whole.size());
  CHECK(state_matches(state, load_model(kModel), whole, 7));
}

TEST_CASE("streaming a text in small pieces gives the whole text's tokens (byte-level BPE)", "[e2e][stream]") {
  const std::string json = default_data_dir() + "/20B_tokenizer.json";
  if (!std::filesystem::exists(json)) FAIL("missing " << json);
  auto tokenizer = load_tokenizer(json);
  // A model just large enough for the vocabulary; one layer, narrow.
  Model model;
  model.config.arch = Arch::rwkv4;
  model.config.layers = 1;
  model.config.embd = 8;
  model.config.ffn = 16;
  model.config.vocab = static_cast<std::int64_t>(tokenizer->vocab_size());
  model.weights = make_random_model(model.config, 3);
  const std::string model_path = scratch("bpe-model.safetensors"), path = scratch("bpe-text.txt"),
                    state = scratch("s2.safetensors");
  write_safetensors(model_path, model.weights);

  std::string text;
  for (int i = 0; i < 40; ++i)
    text += fmt::format("Line {}: the   quick brown fox's {}jumped;  über naïve café 東京\n{}", i, i % 3 ? "" : "  ",
                        i % 5 ? "" : "\n   indented\n");
  write_file(path, text);
  std::vector<std::int32_t> whole = tokenizer->encode(text);
  StreamReport r = parse_report(run_ok({"forward", "--model", model_path, "--tokenizer", json, "--text", path, "--chunk", "16",
                                        "--read-bytes", "61", "--save-state", state})
                                    .output());
  CHECK(r.tokens == whole.size());
  CHECK(state_matches(state, model, whole, 16));
}

TEST_CASE("peak memory does not grow with the length of the text", "[e2e][stream]") {
  const std::string vocab = byte_vocabulary();
  std::vector<StreamReport> reports;
  for (std::size_t tokens : {20000, 200000}) {
    const std::string path = scratch(fmt::format("random-{}.bin", tokens));
    write_file(path, random_bytes(tokens, static_cast<unsigned>(tokens)));
    reports.push_back(parse_report(
        run_ok({"forward", "--model", kModel, "--tokenizer", vocab, "--text", path, "--chunk", "1024", "--read-bytes", "8192"}).output()));
    CHECK(reports.back().tokens == tokens);
  }
  INFO("peak RSS at 20k tokens: " << reports[0].rss_kib << " KiB, at 200k: " << reports[1].rss_kib << " KiB");
  // Holding every token's logits would cost 200k * 256 * 4 bytes = 200 MB; the tokens alone 0.8 MB.
  CHECK(reports[1].rss_kib - reports[0].rss_kib < 2048);
}

TEST_CASE("forward --text refuses a tokenizer that does not fit the model, and an empty text", "[e2e][stream]") {
  const std::string vocab = scratch("big.txt"), empty = scratch("empty.txt");
  std::string lines;
  for (int i = 0; i < 300; ++i) lines += fmt::format("{} b'\\x{:02x}\\x{:02x}' 2\n", i, i % 256, i / 256);
  write_file(vocab, lines);
  write_file(empty, "");
  ToolRun r = run_rwkvc({"forward", "--model", kModel, "--tokenizer", vocab, "--text", empty});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output(), Contains("has token ids up to 299"));
  r = run_rwkvc({"forward", "--model", kModel, "--tokenizer", byte_vocabulary(), "--text", empty});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output(), Contains("is empty"));
  r = run_rwkvc({"forward", "--model", kModel, "--tokenizer", byte_vocabulary(), "--text", empty, "--all-logits"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output(), Contains("--all-logits"));
}

}  // namespace rwkvc::test
