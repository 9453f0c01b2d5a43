// The rwkvc command line: results a user relies on, and bad input refused with a clear
// message and a non-zero exit.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "e2e_support.h"
#include "frontend/npy.h"
#include "frontend/state_file.h"
#include "tool_runner.h"

namespace rwkvc::test {

namespace {

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::path(RWKVC_BINARY_DIR) / "cli-test";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / name);
  return dir / name;
}

const std::string kModel7 = fixture_path("rwkv7-tiny.safetensors");
const std::string kModel4 = fixture_path("rwkv4-tiny.safetensors");

void expect_failure(const std::string& arguments, const std::string& message_part) {
  ToolRun r = run_rwkvc_shell(arguments);
  INFO("rwkvc " << arguments << "\n" << r.out);
  CHECK(r.exit_code != 0);
  CHECK(r.out.find(message_part) != std::string::npos);
}

}  // namespace

TEST_CASE("forward --save-logits writes [T, vocab] with --all-logits and [vocab] without", "[e2e][cli]") {
  auto all = scratch("all.npy"), last = scratch("last.npy");
  ToolRun r = run_rwkvc_shell(fmt::format("forward --model {} --tokens 5,6,7 --all-logits --save-logits {}", kModel7, all.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(run_rwkvc_shell(fmt::format("forward --model {} --tokens 5,6,7 --save-logits {}", kModel7, last.string())).exit_code == 0);
  NpyArray a = read_npy(all.string()), b = read_npy(last.string());
  CHECK(a.shape == std::vector<std::int64_t>{3, 256});
  CHECK(b.shape == std::vector<std::int64_t>{256});
  CHECK(std::equal(b.values.begin(), b.values.end(), a.values.begin() + 2 * 256));
}

TEST_CASE("forward in rnn and chunk modes prints the same logits as gpt mode", "[e2e][cli]") {
  auto gpt = scratch("gpt.npy"), rnn = scratch("rnn.npy"), chunk = scratch("chunk.npy");
  std::string base = fmt::format("forward --model {} --tokens 1,2,3,4,5,6,7 --all-logits", kModel4);
  REQUIRE(run_rwkvc_shell(base + " --save-logits " + gpt.string()).exit_code == 0);
  REQUIRE(run_rwkvc_shell(base + " --mode rnn --save-logits " + rnn.string()).exit_code == 0);
  REQUIRE(run_rwkvc_shell(base + " --mode chunk:3 --save-logits " + chunk.string()).exit_code == 0);
  NpyArray g = read_npy(gpt.string());
  CHECK(compare(std::span<const double>(read_npy(rnn.string()).values), std::span<const double>(g.values)).relative <= 1e-5);
  CHECK(compare(std::span<const double>(read_npy(chunk.string()).values), std::span<const double>(g.values)).relative <= 1e-5);
}

TEST_CASE("a state saved by forward and loaded with --state-in continues the sequence", "[e2e][cli]") {
  auto state = scratch("state.safetensors"), split = scratch("split.npy"), whole = scratch("whole.npy");
  REQUIRE(run_rwkvc_shell(fmt::format("forward --model {} --tokens 9,8,7 --save-state {}", kModel7, state.string())).exit_code == 0);
  REQUIRE(run_rwkvc_shell(fmt::format("forward --model {} --tokens 6,5 --state-in {} --save-logits {}", kModel7, state.string(),
                               split.string())).exit_code == 0);
  REQUIRE(run_rwkvc_shell(fmt::format("forward --model {} --tokens 9,8,7,6,5 --save-logits {}", kModel7, whole.string())).exit_code == 0);
  CHECK(compare(std::span<const double>(read_npy(split.string()).values),
                std::span<const double>(read_npy(whole.string()).values)).relative <= 1e-5);
}

TEST_CASE("forward refuses bad input with a clear message", "[e2e][cli]") {
  SECTION("token id beyond the vocabulary") {
    expect_failure(fmt::format("forward --model {} --tokens 1,256", kModel7), "token 256 at position 1");
  }
  SECTION("negative token id") { expect_failure(fmt::format("forward --model {} --tokens -3", kModel7), "token -3"); }
  SECTION("empty token list") { expect_failure(fmt::format("forward --model {} --tokens ''", kModel7), "empty"); }
  SECTION("token list that is not numbers") {
    expect_failure(fmt::format("forward --model {} --tokens 1,x", kModel7), "'x'");
  }
  SECTION("model file that does not exist") {
    expect_failure("forward --model /nonexistent/model.safetensors --tokens 1", "/nonexistent/model.safetensors");
  }
  SECTION("file that is not a model") {
    auto junk = scratch("junk.safetensors");
    std::ofstream(junk) << "this is not a model";
    expect_failure(fmt::format("forward --model {} --tokens 1", junk.string()), junk.string());
  }
  SECTION("state from another model shape") {
    auto state = scratch("state4.safetensors");
    REQUIRE(run_rwkvc_shell(fmt::format("forward --model {} --tokens 1 --save-state {}", kModel4, state.string())).exit_code == 0);
    expect_failure(fmt::format("forward --model {} --tokens 1 --state-in {}", kModel7, state.string()), "does not fit");
  }
  SECTION("unknown mode") { expect_failure(fmt::format("forward --model {} --tokens 1 --mode chunk:0", kModel7), "chunk:0"); }
  SECTION("unknown backend") { expect_failure(fmt::format("forward --model {} --tokens 1 --backend tpu", kModel7), "tpu"); }
  SECTION("no partial file is left when the logits cannot be written") {
    expect_failure(fmt::format("forward --model {} --tokens 1 --save-logits /nonexistent/dir/out.npy", kModel7),
                   "/nonexistent/dir/out.npy");
  }
}

TEST_CASE("the committed fixtures are exactly what rwkvc init makes", "[e2e][cli]") {
  auto remade7 = scratch("rwkv7-tiny.safetensors"), remade4 = scratch("rwkv4-tiny.safetensors");
  REQUIRE(run_rwkvc_shell("init --arch rwkv7 --layers 2 --embd 64 --vocab 256 --head-size 32 --ffn 256 --lora 16 --seed 7 --out " +
                   remade7.string()).exit_code == 0);
  REQUIRE(run_rwkvc_shell("init --arch rwkv4 --layers 2 --embd 64 --vocab 256 --ffn 256 --seed 7 --out " + remade4.string())
              .exit_code == 0);
  auto bytes = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  CHECK(bytes(remade7) == bytes(kModel7));
  CHECK(bytes(remade4) == bytes(kModel4));
}

TEST_CASE("rwkvc ir prints text that parses back to the same graph", "[e2e][cli]") {
  for (const std::string& model : {kModel7, kModel4}) {
    auto text = scratch("graph.ir");
    ToolRun printed = run_rwkvc_shell(fmt::format("ir --model {}", model));
    REQUIRE(printed.exit_code == 0);
    std::ofstream(text) << printed.out;
    ToolRun reparsed = run_rwkvc_shell(fmt::format("ir --parse {}", text.string()));
    INFO(reparsed.out.substr(0, 2000));
    REQUIRE(reparsed.exit_code == 0);
    CHECK(reparsed.out == printed.out);
  }
}

}  // namespace rwkvc::test
