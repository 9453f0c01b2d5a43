// rwkvc tokenize / detokenize: ids printed for a text, the text printed for ids, and bad input
// refused with a message and a non-zero exit.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "frontend/tokenizer.h"
#include "tool_runner.h"

namespace rwkvc::test {

namespace {

const std::string kNeox = default_data_dir() + "/20B_tokenizer.json";

}  // namespace

TEST_CASE("tokenize prints World ids by default, separated by spaces", "[e2e][cli][tokenizer]") {
  // 'Hello' is line 33155 of the World vocabulary, ' world' line 40213.
  ToolRun r = run_rwkvc_shell("tokenize --text 'Hello world'");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "33155 40213\n");
}

TEST_CASE("tokenize --tokenizer uses a tokenizers JSON file", "[e2e][cli][tokenizer]") {
  // NeoX 20B: "Hello" 12092, " world" 1533, added token <|endoftext|> 0.
  ToolRun r = run_rwkvc_shell(fmt::format("tokenize --tokenizer '{}' --text 'Hello world<|endoftext|>'", kNeox));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "12092 1533 0\n");
}

TEST_CASE("detokenize prints the text of the ids, commas or spaces between them", "[e2e][cli][tokenizer]") {
  CHECK(run_rwkvc_shell("detokenize --tokens 33155,40213").out == "Hello world\n");
  CHECK(run_rwkvc_shell("detokenize --tokens '10464 11685'").out == "你好\n");
  CHECK(run_rwkvc_shell(fmt::format("detokenize --tokenizer '{}' --tokens 12092,1533", kNeox)).out == "Hello world\n");
}

TEST_CASE("tokenize then detokenize gives the text back", "[e2e][cli][tokenizer]") {
  const std::string text = "héllo  世界 🧑\u200d🚀\ttabs";
  for (const std::string& flag : {std::string(), fmt::format("--tokenizer '{}'", kNeox),
                                  fmt::format("--vocab '{}'", default_data_dir() + "/rwkv_vocab_v20230424.txt")}) {
    ToolRun ids = run_rwkvc_shell(fmt::format("tokenize {} --text '{}'", flag, text));
    REQUIRE(ids.exit_code == 0);
    ids.out.pop_back();  // the newline
    ToolRun back = run_rwkvc_shell(fmt::format("detokenize {} --tokens '{}'", flag, ids.out));
    INFO(flag << "\n" << ids.out << "\n" << back.out);
    CHECK(back.exit_code == 0);
    CHECK(back.out == text + "\n");
  }
}

TEST_CASE("tokenize and detokenize refuse bad input with a message", "[e2e][cli][tokenizer]") {
  auto expect_failure = [](const std::string& arguments, const std::string& message_part) {
    ToolRun r = run_rwkvc_shell(arguments);
    INFO("rwkvc " << arguments << "\n" << r.out);
    CHECK(r.exit_code != 0);
    CHECK(r.out.find(message_part) != std::string::npos);
  };
  expect_failure("detokenize --tokens 0", "token id 0");
  expect_failure("detokenize --tokens 1,x", "'x'");
  expect_failure("tokenize --vocab /nonexistent/vocab.txt --text hi", "/nonexistent/vocab.txt");
  expect_failure(fmt::format("tokenize --vocab a.txt --tokenizer '{}' --text hi", kNeox), "excludes");
  expect_failure("tokenize", "--text");
}

}  // namespace rwkvc::test
