// `rwkvc bench` and `rwkvc devices`: the reports a user pastes into an issue hold every figure
// they promise, bad flags are refused naming the problem, and report files appear whole or not
// at all.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "e2e_support.h"
#include "tool_runner.h"

namespace rwkvc::test {

namespace {

namespace fs = std::filesystem;

const std::string kTiny7 = fixture_path("rwkv7-tiny.safetensors");
// Small and quick, but every figure measured.
const std::vector<std::string> kQuick{"--prompt", "8", "--gen", "4", "--repeat", "2", "--warmup", "1"};

fs::path fresh(const std::string& name) {
  fs::path path = scratch_dir() / name;
  fs::remove_all(path);
  return path;
}

ToolRun bench(std::vector<std::string> args) {
  args.insert(args.begin(), "bench");
  args.insert(args.end(), kQuick.begin(), kQuick.end());
  return run_rwkvc(args);
}

void expect_refused(std::vector<std::string> args, const std::vector<std::string>& message_parts) {
  ToolRun r = bench(std::move(args));
  INFO(r.output());
  CHECK(r.exit_code != 0);
  for (const std::string& part : message_parts) CHECK(r.err.find(part) != std::string::npos);
}

// Files left in `dir` whose name is not in `expected` (a temporary left behind by a write).
std::vector<std::string> strays(const fs::path& dir, const std::set<std::string>& expected) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (!expected.contains(entry.path().filename().string())) names.push_back(entry.path().filename().string());
  return names;
}

}  // namespace

TEST_CASE("bench --json records every figure for each backend and level", "[e2e][bench]") {
  fs::path json_path = fresh("bench.json");
  ToolRun r = bench({"--model", kTiny7, "--backends", "cpu", "-O0,-O2", "--json", json_path.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  nlohmann::json j = nlohmann::json::parse(read_file(json_path));

  CHECK(j["command"].get<std::string>().find("-O0,-O2") != std::string::npos);
  CHECK(!j["machine"]["cpu"].get<std::string>().empty());
  CHECK(j["model"]["layers"] == 2);
  CHECK(j["settings"]["prompt"] == 8);
  CHECK(j["settings"]["gen"] == 4);
  REQUIRE(j["results"].size() == 2);
  CHECK(j["results"][0]["level"] == 0);
  CHECK(j["results"][1]["level"] == 2);
  for (const nlohmann::json& result : j["results"]) {
    INFO(result.dump(2));
    CHECK(result["backend"] == "cpu");
    CHECK(result["clock"] == "host");  // the CPU backend has no device timer
    CHECK(result["compile_seconds"].get<double>() >= 0);
    CHECK(result["prefill"]["tokens_per_s"].get<double>() > 0);
    CHECK(result["prefill"]["seconds"].size() == 2);  // --repeat 2, the warm-up left out
    CHECK(result["decode"]["tokens_per_s"].get<double>() > 0);
    CHECK(result["decode"]["samples"] == 8);  // 4 tokens x 2 rounds
    CHECK(result["decode"]["latency_p99_ms"].get<double>() >= result["decode"]["latency_p50_ms"].get<double>());
    CHECK(result["kernels"]["per_token"].get<int>() > 0);
    CHECK(result["memory"]["peak_rss_bytes"].get<std::int64_t>() > 0);
    CHECK(result["roofline"]["bandwidth_gbs"].get<double>() > 0);  // measured for the CPU
    CHECK(result["roofline"]["decode_fraction"].get<double>() > 0);
    CHECK(result["roofline"]["prefill_fraction"].get<double>() > 0);
  }
  // Fusion runs fewer kernels than the unfused graph.
  CHECK(j["results"][1]["kernels"]["per_token"].get<int>() < j["results"][0]["kernels"]["per_token"].get<int>());
  REQUIRE(j["ratios"]["fusion"].size() == 1);
  CHECK(j["ratios"]["fusion"][0]["numerator"] == "-O2");
  CHECK(j["ratios"]["fusion"][0]["denominator"] == "-O0");
}

TEST_CASE("bench's state bytes and decode bytes per token follow from the model's tensors", "[e2e][bench]") {
  Model model = load_model(kTiny7);
  const ModelConfig& c = model.config;
  // Per layer: two token-shift vectors [C] and the WKV state [H, N, N], f32.
  const std::int64_t state_bytes = 4 * c.layers * (2 * c.embd + c.heads() * c.head_size * c.head_size);
  // The unfused graph reads every tensor once per token, but the embedding table only a row.
  std::int64_t decode_bytes = 4 * c.embd;
  for (const auto& [name, tensor] : model.weights)
    if (name != "emb.weight") decode_bytes += tensor.numel() * 4;

  fs::path json_path = fresh("bytes.json");
  ToolRun r = bench({"--model", kTiny7, "--backends", "cpu", "-O0", "--json", json_path.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  nlohmann::json result = nlohmann::json::parse(read_file(json_path))["results"][0];
  CHECK(result["memory"]["state_bytes"] == state_bytes);
  CHECK(result["roofline"]["decode_bytes_per_token"] == decode_bytes);
}

TEST_CASE("bench --dtype f16 halves the matrix bytes a decoded token reads", "[e2e][bench]") {
  fs::path f32 = fresh("f32.json"), f16 = fresh("f16.json");
  REQUIRE(bench({"--model", kTiny7, "--backends", "cpu", "--json", f32.string()}).exit_code == 0);
  ToolRun r = bench({"--model", kTiny7, "--backends", "cpu", "--dtype", "f16", "--json", f16.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  auto bytes = [](const fs::path& p) {
    return nlohmann::json::parse(read_file(p))["results"][0]["roofline"]["decode_bytes_per_token"].get<double>();
  };
  // Matrices dominate: the f16 run reads a little over half of the f32 run's bytes.
  CHECK(bytes(f16) < 0.6 * bytes(f32));
  CHECK(bytes(f16) > 0.5 * bytes(f32));
  CHECK(nlohmann::json::parse(read_file(f16))["settings"]["dtype"] == "f16");
}

TEST_CASE("bench --shape benchmarks random weights of that shape", "[e2e][bench]") {
  fs::path json_path = fresh("shape.json");
  ToolRun r = bench({"--shape", "rwkv7:L1:D64:V128:N32", "--backends", "cpu", "--json", json_path.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  nlohmann::json j = nlohmann::json::parse(read_file(json_path));
  CHECK(j["model"]["shape"] == "rwkv7:L1:D64:V128:N32");
  CHECK(j["model"]["vocab"] == 128);
  CHECK(j["model"]["embd"] == 64);
  CHECK(j["results"][0]["decode"]["tokens_per_s"].get<double>() > 0);
}

TEST_CASE("bench warns when a measured rate exceeds the ceiling it is divided by", "[e2e][bench]") {
  // A peak of 1e-9 TFLOP/s (1 kFLOP/s) is below any machine's prefill rate; 1e6 GB/s is above any bandwidth.
  fs::path md_path = fresh("low-peak.md");
  ToolRun low = bench({"--model", kTiny7, "--backends", "cpu", "--peak-tflops", "cpu=1e-9", "--bandwidth-gbs", "cpu=1e6",
                       "--markdown", md_path.string()});
  INFO(low.output());
  REQUIRE(low.exit_code == 0);
  CHECK(low.out.find("the peak is not a ceiling on this machine") != std::string::npos);
  CHECK(low.out.find("the bandwidth is not a ceiling") == std::string::npos);
  CHECK(read_file(md_path).find("the peak is not a ceiling on this machine") != std::string::npos);

  ToolRun sane = bench({"--model", kTiny7, "--backends", "cpu", "--peak-tflops", "cpu=1e6", "--bandwidth-gbs", "cpu=1e6"});
  INFO(sane.output());
  REQUIRE(sane.exit_code == 0);
  CHECK(sane.out.find("WARNING") == std::string::npos);
}

TEST_CASE("bench refuses a bad --shape naming the item at fault", "[e2e][bench]") {
  expect_refused({"--shape", "rwkv9:L2:D64:V256"}, {"--shape", "unknown architecture 'rwkv9'"});
  expect_refused({"--shape", "rwkv7:L2:V256"}, {"--shape", "missing D"});
  expect_refused({"--shape", "rwkv7:L2:Dx:V256"}, {"'Dx'", "positive whole number"});
  expect_refused({"--shape", "rwkv7:L2:D64:V256:Q3"}, {"'Q3'"});
  expect_refused({"--shape", "rwkv7:L2:D96:V256"}, {"D96", "head size 64"});
  expect_refused({"--shape", "rwkv7:L2:L3:D64:V256"}, {"'L' is given twice"});
}

TEST_CASE("bench refuses unknown backends, levels and dtypes naming them", "[e2e][bench]") {
  expect_refused({"--model", kTiny7, "--backends", "cpu,metal"}, {"unknown backend 'metal'", "this build has: cpu"});
  expect_refused({"--model", kTiny7, "--backends", "cpu,,cpu"}, {"--backends", "empty"});
  expect_refused({"--model", kTiny7, "--backends", "cpu,cpu"}, {"'cpu' is listed twice"});
  expect_refused({"--model", kTiny7, "--dtype", "fp8"}, {"--dtype", "fp8"});
  expect_refused({"--model", kTiny7, "-O0,-O7"}, {"'-O7'", "0, 1, 2"});
  expect_refused({"--model", kTiny7, "--bandwidth-gbs", "fast"}, {"--bandwidth-gbs", "'fast'"});
  expect_refused({"--model", kTiny7, "--device", "3", "--backends", "cpu"}, {"nothing was measured", "not 3"});
  expect_refused({"--model", kTiny7, "--device", "x"}, {"--device", "'x' is not a device index"});
  expect_refused({"--backends", "cpu"}, {"--model FILE or --shape"});
}

TEST_CASE("bench takes levels or one --passes pipeline, not both", "[e2e][bench]") {
  expect_refused({"--model", kTiny7, "-O0", "--passes", "cse"}, {"either -O levels or --passes"});
  expect_refused({"--model", kTiny7, "--passes", "cse,fuse-all"}, {"unknown pass 'fuse-all'"});
  fs::path json_path = fresh("passes.json");
  ToolRun r = bench({"--model", kTiny7, "--backends", "cpu", "--passes", "fuse-token-shift", "--json", json_path.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  nlohmann::json result = nlohmann::json::parse(read_file(json_path))["results"][0];
  CHECK(result["pipeline"] == "--passes=fuse-token-shift");
  CHECK(result["level"].is_null());
}

TEST_CASE("bench writes its reports whole, and leaves old ones untouched when it fails", "[e2e][bench]") {
  fs::path dir = fresh("reports");
  fs::create_directories(dir);
  const fs::path json_path = dir / "r.json", md = dir / "r.md", svg = dir / "chart.svg";
  write_file(json_path, "previous");
  // Refused before anything runs: the previous report stays.
  REQUIRE(bench({"--shape", "rwkv7:bad", "--json", json_path.string()}).exit_code != 0);
  CHECK(read_file(json_path) == "previous");

  ToolRun r = bench({"--model", kTiny7, "--backends", "cpu", "-O0,-O2", "--json", json_path.string(), "--markdown",
                     md.string(), "--svg", svg.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  CHECK(strays(dir, {"r.json", "r.md", "chart.svg"}).empty());
  CHECK_NOTHROW(nlohmann::json::parse(read_file(json_path)));
  std::string markdown = read_file(md);
  CHECK(markdown.find("rwkvc bench --model") != std::string::npos);  // the exact command
  CHECK(markdown.find("| cpu | -O2 |") != std::string::npos);
  CHECK(markdown.find("](chart.svg)") != std::string::npos);
  std::string chart = read_file(svg);
  CHECK(chart.rfind("<svg", 0) == 0);
  CHECK(chart.find("</svg>") != std::string::npos);
  CHECK(chart.find("Decode tokens/s") != std::string::npos);

  // A report that cannot be written is an error naming it, and leaves no temporary behind.
  const fs::path missing = dir / "no-such-folder" / "r.json";
  ToolRun failed = bench({"--model", kTiny7, "--backends", "cpu", "-O2", "--json", missing.string()});
  CHECK(failed.exit_code != 0);
  CHECK(failed.err.find(missing.string()) != std::string::npos);
  CHECK(strays(dir, {"r.json", "r.md", "chart.svg"}).empty());
}

TEST_CASE("bench --long-run samples latency and memory every K tokens", "[e2e][bench]") {
  fs::path csv = fresh("long.csv"), json_path = fresh("long.json"), svg = fresh("long.svg");
  ToolRun r = run_rwkvc({"bench", "--long-run", "2000", "--sample-every", "500", "--model", kTiny7, "--backends", "cpu",
                         "-O2", "--csv", csv.string(), "--json", json_path.string(), "--svg", svg.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);

  std::istringstream lines(read_file(csv));
  std::string header, line;
  std::getline(lines, header);
  CHECK(header.find("tokens,latency_p50_us") != std::string::npos);
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  REQUIRE(rows.size() == 4);  // at 500, 1000, 1500 and 2000 tokens
  CHECK(rows[0].rfind("cpu,-O2,500,", 0) == 0);
  CHECK(rows[3].rfind("cpu,-O2,2000,", 0) == 0);

  nlohmann::json j = nlohmann::json::parse(read_file(json_path));
  const nlohmann::json& samples = j["series"][0]["samples"];
  REQUIRE(samples.size() == 4);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CHECK(samples[i]["tokens"] == 500 * static_cast<int>(i + 1));
    CHECK(samples[i]["latency_p50_us"].get<double>() > 0);
    CHECK(samples[i]["latency_max_us"].get<double>() >= samples[i]["latency_p50_us"].get<double>());
    CHECK(samples[i]["rss_bytes"].get<std::int64_t>() > 0);
  }
  CHECK(read_file(svg).find("<polyline") != std::string::npos);
}

TEST_CASE("bench --long-run with a chunk feeds several tokens per call and still samples on time", "[e2e][bench]") {
  fs::path json_path = fresh("chunked.json");
  ToolRun r = run_rwkvc({"bench", "--long-run", "1000", "--sample-every", "300", "--chunk", "7", "--model", kTiny7,
                         "--backends", "cpu", "--json", json_path.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  nlohmann::json samples = nlohmann::json::parse(read_file(json_path))["series"][0]["samples"];
  // A sample when a call crosses 300, 600, 900, and one at the end.
  REQUIRE(samples.size() == 4);
  CHECK(samples[0]["tokens"] == 301);  // 43 calls of 7
  CHECK(samples[3]["tokens"] == 1000);
}

TEST_CASE("bench --long-run refuses a sample interval below one", "[e2e][bench]") {
  ToolRun r = run_rwkvc({"bench", "--long-run", "100", "--sample-every", "0", "--model", kTiny7});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("--sample-every 0") != std::string::npos);
}

TEST_CASE("devices lists each backend's devices by index", "[e2e][bench]") {
  ToolRun r = run_rwkvc({"devices"});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("cpu:\n  [0] cpu") != std::string::npos);
  for (const std::string& backend : backend_names()) CHECK(r.out.find(backend + ":") != std::string::npos);
}

}  // namespace rwkvc::test

namespace rwkvc::test {

TEST_CASE("bench --summarize puts several runs side by side with their ratios and one chart", "[e2e][bench]") {
  fs::path dir = fresh("summary");
  fs::create_directories(dir);
  std::vector<std::string> records;
  for (const char* fixture : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"}) {
    fs::path json_path = dir / (std::string(fixture) + ".json");
    ToolRun r = bench({"--model", fixture_path(fixture), "--backends", "cpu", "-O0,-O2", "--json", json_path.string()});
    INFO(r.output());
    REQUIRE(r.exit_code == 0);
    records.push_back(json_path.string());
  }
  fs::path md = dir / "summary.md";
  ToolRun r = run_rwkvc({"bench", "--summarize", records[0] + "," + records[1], "--markdown", md.string()});
  INFO(r.output());
  REQUIRE(r.exit_code == 0);
  std::string text = read_file(md);
  INFO(text);
  // Both models, each with both levels and its fusion ratio; the chart next to the report.
  CHECK(text.find("rwkv7-tiny") != std::string::npos);
  CHECK(text.find("rwkv4-tiny") != std::string::npos);
  CHECK(text.find("| cpu | -O0 |") != std::string::npos);
  CHECK(text.find("| cpu | -O2 | -O0 |") != std::string::npos);
  CHECK(text.find("](summary.svg)") != std::string::npos);
  std::string svg = read_file(dir / "summary.svg");
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("Fusion gain") != std::string::npos);
  CHECK(strays(dir, {"summary.md", "summary.svg", "rwkv7-tiny.safetensors.json", "rwkv4-tiny.safetensors.json"}).empty());
}

TEST_CASE("bench --summarize refuses a file that is not a bench record, naming it", "[e2e][bench]") {
  fs::path dir = fresh("summary-bad");
  fs::create_directories(dir);
  fs::path not_json = dir / "notes.txt", long_run = dir / "long.json";
  std::ofstream(not_json) << "hello";
  std::ofstream(long_run) << R"({"format": "rwkvc-long-run/1"})";
  for (const fs::path& bad : {not_json, long_run, dir / "missing.json"}) {
    ToolRun r = run_rwkvc({"bench", "--summarize", bad.string(), "--markdown", (dir / "out.md").string()});
    INFO(r.output());
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(bad.string()) != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "out.md"));
  }
}

}  // namespace rwkvc::test
