// rwkvc tokenize / detokenize: ids printed for a text, the text printed for ids, and bad input
// refused with a message and a non-zero exit.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "frontend/tokenizer.h"

namespace rwkvc::test {

namespace {

struct ToolRun {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Arguments are passed through the shell, so tests quote them with single quotes.
ToolRun run_rwkvc(const std::string& arguments) {
  std::string command = fmt::format("{} {} 2>&1", RWKVC_TOOL, arguments);
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

const std::string kNeox = default_data_dir() + "/20B_tokenizer.json";

}  // namespace

TEST_CASE("tokenize prints World ids by default, separated by spaces", "[e2e][cli][tokenizer]") {
  // 'Hello' is line 33155 of the World vocabulary, ' world' line 40213.
  ToolRun r = run_rwkvc("tokenize --text 'Hello world'");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output == "33155 40213\n");
}

TEST_CASE("tokenize --tokenizer uses a tokenizers JSON file", "[e2e][cli][tokenizer]") {
  // NeoX 20B: "Hello" 12092, " world" 1533, added token <|endoftext|> 0.
  ToolRun r = run_rwkvc(fmt::format("tokenize --tokenizer '{}' --text 'Hello world<|endoftext|>'", kNeox));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output == "12092 1533 0\n");
}

TEST_CASE("detokenize prints the text of the ids, commas or spaces between them", "[e2e][cli][tokenizer]") {
  CHECK(run_rwkvc("detokenize --tokens 33155,40213").output == "Hello world\n");
  CHECK(run_rwkvc("detokenize --tokens '10464 11685'").output == "你好\n");
  CHECK(run_rwkvc(fmt::format("detokenize --tokenizer '{}' --tokens 12092,1533", kNeox)).output == "Hello world\n");
}

TEST_CASE("tokenize then detokenize gives the text back", "[e2e][cli][tokenizer]") {
  const std::string text = "héllo  世界 🧑\u200d🚀\ttabs";
  for (const std::string& flag : {std::string(), fmt::format("--tokenizer '{}'", kNeox),
                                  fmt::format("--vocab '{}'", default_data_dir() + "/rwkv_vocab_v20230424.txt")}) {
    ToolRun ids = run_rwkvc(fmt::format("tokenize {} --text '{}'", flag, text));
    REQUIRE(ids.exit_code == 0);
    ids.output.pop_back();  // the newline
    ToolRun back = run_rwkvc(fmt::format("detokenize {} --tokens '{}'", flag, ids.output));
    INFO(flag << "\n" << ids.output << "\n" << back.output);
    CHECK(back.exit_code == 0);
    CHECK(back.output == text + "\n");
  }
}

TEST_CASE("tokenize and detokenize refuse bad input with a message", "[e2e][cli][tokenizer]") {
  auto expect_failure = [](const std::string& arguments, const std::string& message_part) {
    ToolRun r = run_rwkvc(arguments);
    INFO("rwkvc " << arguments << "\n" << r.output);
    CHECK(r.exit_code != 0);
    CHECK(r.output.find(message_part) != std::string::npos);
  };
  expect_failure("detokenize --tokens 0", "token id 0");
  expect_failure("detokenize --tokens 1,x", "'x'");
  expect_failure("tokenize --vocab /nonexistent/vocab.txt --text hi", "/nonexistent/vocab.txt");
  expect_failure(fmt::format("tokenize --vocab a.txt --tokenizer '{}' --text hi", kNeox), "excludes");
  expect_failure("tokenize", "--text");
}

}  // namespace rwkvc::test
