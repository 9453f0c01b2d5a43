// PyTorch .pth checkpoints through the command line: forward gives the logits of the same weights
// in safetensors, convert keeps every byte and dtype, info describes the model, and damaged
// checkpoints are refused with the file named.
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "../frontend/pth_test_support.h"
#include "e2e_support.h"
#include "tool_runner.h"
#include "frontend/npy.h"
#include "frontend/pth_reader.h"
#include "frontend/safetensors.h"

namespace rwkvc::test {

namespace {

void succeed(const std::string& arguments) {
  ToolRun r = run_rwkvc_shell(arguments);
  INFO("rwkvc " << arguments << "\n" << r.out);
  REQUIRE(r.exit_code == 0);
}

void expect_failure(const std::string& arguments, const std::vector<std::string>& parts) {
  ToolRun r = run_rwkvc_shell(arguments);
  INFO("rwkvc " << arguments << "\n" << r.out);
  CHECK(r.exit_code == 1);
  for (const std::string& part : parts) CHECK(r.out.find(part) != std::string::npos);
}

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::path(RWKVC_BINARY_DIR) / "pth-cli-test";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / name);
  return dir / name;
}

// Every position's logits of `tokens` through `model`, as forward saves them.
std::vector<double> logits(const std::string& model, const std::string& tokens) {
  auto out = scratch("logits.npy");
  succeed(fmt::format("forward --model {} --tokens {} --all-logits --save-logits {}", model, tokens, out.string()));
  return read_npy(out.string()).values;
}

bool same_tensors(const WeightMap& a, const WeightMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second.dtype() != t.dtype() || it->second.shape() != t.shape() ||
        std::memcmp(it->second.data(), t.data(), t.nbytes()) != 0)
      return false;
  }
  return true;
}

const std::string kPth7 = fixture_path("rwkv7-tiny-f32.pth");
const std::string kSafetensors7 = fixture_path("rwkv7-tiny.safetensors");

}  // namespace

TEST_CASE("forward gives identical logits on a .pth and on safetensors of the same weights", "[e2e][pth]") {
  const std::string tokens = "5,200,17,3,99,42";
  CHECK(logits(kPth7, tokens) == logits(kSafetensors7, tokens));
  for (const char* file : {"rwkv4-tiny-f16.pth", "rwkv4-tiny-bf16.pth"}) {
    INFO(file);
    auto converted = scratch("converted.safetensors");
    succeed(fmt::format("convert {} {}", fixture_path(file), converted.string()));
    std::vector<double> from_pth = logits(fixture_path(file), tokens);
    CHECK(from_pth == logits(converted.string(), tokens));
    // Rounded weights give logits near, not equal to, those of the f32 original.
    std::vector<double> f32 = logits(fixture_path("rwkv4-tiny.safetensors"), tokens);
    double relative = compare(std::span<const double>(from_pth), std::span<const double>(f32)).relative;
    CHECK(relative > 0);
    CHECK(relative < 0.05);
  }
}

TEST_CASE("convert writes every tensor's bytes and dtype, atomically", "[e2e][pth]") {
  auto out = scratch("rwkv7.safetensors");
  ToolRun r = run_rwkvc_shell(fmt::format("convert {} {}", kPth7, out.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("69 tensors") != std::string::npos);
  CHECK(same_tensors(read_safetensors(out.string()).tensors, read_safetensors(kSafetensors7).tensors));

  auto bf16 = scratch("rwkv4-bf16.safetensors");
  succeed(fmt::format("convert {} {}", fixture_path("rwkv4-tiny-bf16.pth"), bf16.string()));
  SafetensorsFile converted = read_safetensors(bf16.string());
  CHECK(converted.tensors.at("head.weight").dtype() == DType::bf16);
  CHECK(same_tensors(converted.tensors, read_pth(fixture_path("rwkv4-tiny-bf16.pth"))));

  // safetensors in, the same file out.
  auto again = scratch("again.safetensors");
  succeed(fmt::format("convert {} {}", bf16.string(), again.string()));
  CHECK(read_file(again) == read_file(bf16));

  std::vector<std::string> leftovers;
  for (const auto& entry : std::filesystem::directory_iterator(out.parent_path()))
    if (entry.path().filename().string().find(".tmp") != std::string::npos) leftovers.push_back(entry.path().string());
  CHECK(leftovers.empty());
}

TEST_CASE("info describes a checkpoint of either format", "[e2e][pth]") {
  std::int64_t parameters = 0;
  for (const auto& [name, t] : read_safetensors(kSafetensors7).tensors) parameters += t.numel();
  for (auto [file, format] : {std::pair{kPth7, "PyTorch .pth"}, std::pair{kSafetensors7, "safetensors"}}) {
    ToolRun r = run_rwkvc_shell(fmt::format("info --model {}", file));
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    for (const std::string& line :
         {fmt::format("format: {}\n", format), std::string("version: RWKV-7 (rwkv7)\n"), std::string("layers: 2\n"),
          std::string("embd: 64\n"), std::string("vocab: 256\n"), std::string("head size: 32 (2 heads)\n"),
          std::string("ffn: 256\n"), std::string("lora ranks: decay 16, a 16, v 16, gate 16\n"),
          fmt::format("parameters: {} (", parameters), std::string("dtype: f32\n")})
      CHECK(r.out.find(line) != std::string::npos);
  }

  ToolRun r4 = run_rwkvc_shell(fmt::format("info --model {}", fixture_path("rwkv4-tiny-f16.pth")));
  INFO(r4.out);
  CHECK(r4.out.find("version: RWKV-4 (rwkv4)\n") != std::string::npos);
  CHECK(r4.out.find("dtype: f16\n") != std::string::npos);
  CHECK(r4.out.find("head size") == std::string::npos);

  WeightMap mixed = read_safetensors(fixture_path("rwkv4-tiny.safetensors")).tensors;
  mixed.at("head.weight") = read_pth(fixture_path("rwkv4-tiny-f16.pth")).at("head.weight");
  auto path = scratch("mixed.safetensors");
  write_safetensors(path.string(), mixed);
  ToolRun rm = run_rwkvc_shell(fmt::format("info --model {}", path.string()));
  CHECK(rm.out.find("dtype: f16 (1 tensor), f32 (41 tensors)\n") != std::string::npos);
}

TEST_CASE("damaged .pth checkpoints are refused through the command line", "[e2e][pth]") {
  ZipEditor zip(read_file(kPth7));
  auto bad = scratch("bad.pth");
  SECTION("a tensor of the wrong shape: [32, 64] where the model needs [64, 64]") {
    std::string pickle = zip.contents("archive/data.pkl");
    std::size_t tensor = pickle.find("blocks.0.att.key.weight");
    std::size_t sizes = pickle.find("K\x40K\x40\x86", tensor);  // the size tuple (64, 64)
    REQUIRE(sizes != std::string::npos);
    pickle[sizes + 1] = '\x20';
    zip.replace("archive/data.pkl", pickle);
    write_file(bad, zip.bytes());
    expect_failure(fmt::format("forward --model {} --tokens 1", bad.string()),
                   {"tensor 'blocks.0.att.key.weight' has shape [32, 64], expected [64, 64]"});
  }
  SECTION("truncated") {
    write_file(bad, zip.bytes().substr(0, 100000));
    expect_failure(fmt::format("forward --model {} --tokens 1", bad.string()), {bad.string(), "truncated"});
    expect_failure(fmt::format("convert {} {}", bad.string(), scratch("never.safetensors").string()),
                   {bad.string(), "truncated"});
    CHECK_FALSE(std::filesystem::exists(scratch("never.safetensors")));
  }
  SECTION("a bad CRC") {
    zip.flip_byte("archive/data/12", 0);
    write_file(bad, zip.bytes());
    expect_failure(fmt::format("info --model {}", bad.string()),
                   {bad.string(), "'archive/data/12' fails its CRC-32 check"});
  }
  SECTION("a global that would run code") {
    zip.patch("archive/data.pkl", "collections\nOrderedDict\n", std::string("os\nsystem\n") + std::string(14, 'N'));
    write_file(bad, zip.bytes());
    expect_failure(fmt::format("forward --model {} --tokens 1", bad.string()),
                   {bad.string(), "'os.system' at byte 2 is not allowed"});
  }
  SECTION("no RWKV tensors") {
    expect_failure(fmt::format("forward --model {} --tokens 1", fixture_path("strided.pth")),
                   {fixture_path("strided.pth"), "unknown RWKV version"});
  }
}

}  // namespace rwkvc::test
