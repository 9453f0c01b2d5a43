// Text-in/text-out pass tests, like compiler lit tests: tests/passes/<pass>/<case>.ir is run
// through that one pass and must print exactly as <case>.expected.ir, line by line.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "ir/text.h"
#include "passes/pass_manager.h"

namespace rwkvc {

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("each pass turns its input IR into exactly the expected IR", "[passes][lit]") {
  fs::path root = fs::path(RWKVC_SOURCE_DIR) / "tests" / "passes";
  std::size_t cases = 0;
  for (const passes::Pass& pass : passes::all_passes()) {
    fs::path dir = root / std::string(pass.name);
    INFO("pass " << pass.name);
    REQUIRE(fs::is_directory(dir));
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (!name.ends_with(".ir") || name.ends_with(".expected.ir")) continue;
      fs::path expected_path = entry.path();
      expected_path.replace_extension(".expected.ir");
      INFO("case " << entry.path().string());
      Graph input = parse_graph(read_file(entry.path()));
      std::string actual = print_graph(passes::run_pipeline(input, passes::parse_pipeline(pass.name)));
      INFO("actual output:\n" << actual);
      std::vector<std::string> got = lines(actual), want = lines(read_file(expected_path));
      for (std::size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
        INFO("line " << i + 1);
        CHECK((i < got.size() ? got[i] : "<missing>") == (i < want.size() ? want[i] : "<missing>"));
      }
      ++cases;
    }
  }
  CHECK(cases >= passes::all_passes().size());
}

}  // namespace rwkvc
