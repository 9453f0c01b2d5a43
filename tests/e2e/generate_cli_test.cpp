// rwkvc generate: the text it prints (stdout holds nothing else), reproducibility, resuming from
// a saved state, and the sampling flags seen from outside. The 256-token fixture model gets a
// vocabulary of 256 single bytes (token i is byte i), so a token and its text are the same thing.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "e2e_support.h"
#include "tool_runner.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

const std::string kModel = fixture_path("rwkv7-tiny.safetensors");

std::vector<std::string> generate_args(std::vector<std::string> extra) {
  std::vector<std::string> args{"generate", "--model", kModel, "--tokenizer", byte_vocabulary()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

ToolRun generate(std::vector<std::string> extra) {
  ToolRun r = run_rwkvc(generate_args(std::move(extra)));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

// Greedy decoding computed here, token by token, from the executable: the model's own argmax.
std::string greedy_text(const std::string& prompt, int count) {
  CompiledModel m = compile_on_cpu(load_model(kModel));
  State state = m.exe->new_state();
  std::vector<std::int32_t> tokens(prompt.begin(), prompt.end());
  for (auto& t : tokens) t = static_cast<unsigned char>(t);
  HostTensor logits = m.exe->forward(tokens, state);
  std::string text;
  for (int i = 0; i < count; ++i) {
    auto row = logits.f32();
    std::int32_t best = static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    text += static_cast<char>(best);
    logits = m.exe->forward(std::span(&best, 1), state);
  }
  return text;
}

const std::vector<std::string> kGreedy{"--temperature", "0", "--presence-penalty", "0", "--frequency-penalty", "0"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("generate prints only the text on stdout and the speeds on stderr", "[e2e][generate]") {
  ToolRun r = generate({"--prompt", "Hello", "--max-tokens", "12", "--seed", "4"});
  CHECK(r.out.size() == 12);  // 12 single-byte tokens
  CHECK_THAT(r.err, Contains("prompt: 5 tokens"));
  CHECK_THAT(r.err, Contains("generated: 12 tokens"));
  CHECK_THAT(r.err, Contains("tokens/s"));
}

TEST_CASE("greedy generation follows the model's argmax", "[e2e][generate]") {
  CHECK(generate(with({"--prompt", "Hello", "--max-tokens", "24"}, kGreedy)).out == greedy_text("Hello", 24));
  // top-k 1 is greedy too, whichever way the prompt is fed.
  CHECK(generate({"--prompt", "Hello", "--max-tokens", "24", "--top-k", "1", "--presence-penalty", "0",
                  "--frequency-penalty", "0", "--mode", "chunk:2"})
            .out == greedy_text("Hello", 24));
}

TEST_CASE("the same seed gives the same text, another seed another", "[e2e][generate]") {
  std::vector<std::string> args{"--prompt", "Once upon a time", "--max-tokens", "40", "--top-p", "0.95"};
  std::string a = generate(with(args, {"--seed", "7"})).out;
  CHECK(generate(with(args, {"--seed", "7"})).out == a);
  CHECK(generate(with(args, {"--seed", "8"})).out != a);
}

TEST_CASE("a generation split in two with --state-out and --state-in equals the one made in one go", "[e2e][generate]") {
  const std::string state = (scratch_dir() / "half.safetensors").string();
  // The defaults use top-p, penalties and their decay: all of it must carry over.
  std::string whole = generate({"--prompt", "Hello", "--max-tokens", "40", "--seed", "11"}).out;
  ToolRun first = generate({"--prompt", "Hello", "--max-tokens", "25", "--seed", "11", "--state-out", state});
  ToolRun second = generate({"--state-in", state, "--max-tokens", "15"});
  CHECK(first.out + second.out == whole);
  CHECK_THAT(second.err, Contains("prompt: 1 tokens"));  // the last sampled token, fed now

  // Three parts, the middle one fed its prompt in chunks, agree too.
  const std::string state2 = (scratch_dir() / "third.safetensors").string();
  ToolRun a = generate({"--prompt", "Hello", "--max-tokens", "10", "--seed", "11", "--state-out", state});
  ToolRun b = generate({"--state-in", state, "--max-tokens", "10", "--mode", "chunk:3", "--state-out", state2});
  ToolRun c = generate({"--state-in", state2, "--max-tokens", "20"});
  CHECK(a.out + b.out + c.out == whole);
}

TEST_CASE("a state saved by forward continues as if the prompt had been given whole", "[e2e][generate]") {
  const std::string state = (scratch_dir() / "forward.safetensors").string();
  // "Hello " is bytes 72 101 108 108 111 32.
  ToolRun saved = run_rwkvc({"forward", "--model", kModel, "--tokens", "72,101,108,108,111,32", "--save-state", state});
  INFO(saved.err);
  REQUIRE(saved.exit_code == 0);
  std::string whole = generate(with({"--prompt", "Hello world", "--max-tokens", "20"}, kGreedy)).out;
  CHECK(generate(with({"--state-in", state, "--prompt", "world", "--max-tokens", "20"}, kGreedy)).out == whole);
}

TEST_CASE("a stop string ends the text before the stop string", "[e2e][generate]") {
  const std::string greedy = greedy_text("Hello", 40);
  std::size_t at = 12;
  while (greedy[at] == '\0' || greedy[at + 1] == '\0') ++at;
  const std::string stop = greedy.substr(at, 2);
  std::string escaped;  // the CLI reads \\ as one backslash
  for (char c : stop) escaped += c == '\\' ? std::string("\\\\") : std::string(1, c);
  ToolRun r = generate(with({"--prompt", "Hello", "--max-tokens", "40", "--stop", escaped}, kGreedy));
  CHECK(r.out == greedy.substr(0, greedy.find(stop)));
}

TEST_CASE("tokens given with --ban never appear in the text", "[e2e][generate]") {
  std::string banned;
  for (int id = 0; id < 200; ++id) banned += fmt::format("{}{}", id ? "," : "", id);
  ToolRun r = generate({"--prompt", "Hello", "--max-tokens", "60", "--top-p", "1", "--ban", banned, "--seed", "3"});
  REQUIRE(r.out.size() == 60);
  for (char c : r.out) CHECK(static_cast<unsigned char>(c) >= 200);
}

TEST_CASE("generate refuses a tokenizer that does not fit the model, and bad flags", "[e2e][generate]") {
  ToolRun r = run_rwkvc({"generate", "--model", kModel, "--tokenizer", byte_vocabulary(300), "--prompt", "Hi"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("has token ids up to 299"));
  CHECK_THAT(r.err, Contains("vocabulary of 256"));

  r = run_rwkvc(generate_args({"--max-tokens", "5"}));
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("nothing to continue"));

  r = run_rwkvc(generate_args({"--prompt", "Hi", "--top-p", "2"}));
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("top-p 2"));

  r = run_rwkvc(generate_args({"--prompt", "Hi", "--ban", "256"}));
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("--ban 256"));
}

}  // namespace rwkvc::test
