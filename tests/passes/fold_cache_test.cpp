// fold-constants' folded weights are cached on disk: the second compile reads what the first
// computed (a doctored file shows through), and a damaged file is recomputed, never trusted.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "backends/cpu/cpu_backend.h"
#include "backends/feed_mode.h"
#include "passes/pass_manager.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

namespace {

namespace fs = std::filesystem;

// Points RWKVC_CACHE_DIR at `dir` for the test's lifetime.
class CacheRoot {
 public:
  explicit CacheRoot(const fs::path& dir) {
    if (const char* old = std::getenv("RWKVC_CACHE_DIR")) previous_ = old;
    ::setenv("RWKVC_CACHE_DIR", dir.c_str(), 1);
  }
  ~CacheRoot() {
    if (previous_)
      ::setenv("RWKVC_CACHE_DIR", previous_->c_str(), 1);
    else
      ::unsetenv("RWKVC_CACHE_DIR");
  }

 private:
  std::optional<std::string> previous_;
};

std::vector<float> logits_of(const Graph& graph, const Model& model) {
  auto exe = make_cpu_backend()->compile(graph, model.weights);
  State state = exe->new_state();
  HostTensor logits = feed(*exe, random_tokens(5, model.config.vocab, 3), state, FeedMode::gpt(), true);
  return logits.to_f32();
}

std::vector<fs::path> cached_files(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
  return files;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  return compare(std::span<const float>(a), std::span<const float>(b)).max_abs;
}

}  // namespace

TEST_CASE("folded weights are computed once and read back from the disk cache", "[passes][fold-cache]") {
  fs::path root = fs::temp_directory_path() / fmt::format("rwkvc-fold-cache-{}", ::getpid());
  fs::remove_all(root);
  CacheRoot cache(root);
  Model model = load_model(fixture_path("rwkv4-tiny.safetensors"));  // folds -exp(time_decay) per layer
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline("fold-constants"));
  std::size_t folded = 0;
  for (const Op& op : graph.ops) folded += op.kind == OpKind::region && op.region->kind == "folded";
  REQUIRE(folded == static_cast<std::size_t>(model.config.layers));

  std::vector<float> first = logits_of(graph, model);
  std::vector<fs::path> files = cached_files(root / "folded");
  REQUIRE(files.size() == folded);

  SECTION("a damaged file is recomputed and rewritten") {
    auto size = fs::file_size(files[0]);
    fs::resize_file(files[0], size - 3);
    CHECK(max_abs_difference(logits_of(graph, model), first) == 0.0);
    CHECK(fs::file_size(files[0]) == size);
  }
  SECTION("a second compile reads the cache: a doctored file shows in the logits") {
    for (const fs::path& file : files) {
      std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(io)), std::istreambuf_iterator<char>());
      std::size_t header = bytes.find('\n') + 1;
      for (std::size_t at = header; at + sizeof(float) <= bytes.size(); at += sizeof(float)) {
        float value;
        std::memcpy(&value, bytes.data() + at, sizeof value);
        value *= 0.5f;
        std::memcpy(bytes.data() + at, &value, sizeof value);
      }
      io.seekp(0);
      io.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    CHECK(max_abs_difference(logits_of(graph, model), first) > 1e-4);
  }
  fs::remove_all(root);
}

TEST_CASE("a cache folder that cannot be written costs nothing but the cache", "[passes][fold-cache]") {
  CacheRoot cache("/dev/null/not-a-folder");
  Model model = load_model(fixture_path("rwkv4-tiny.safetensors"));
  Graph plain = build_graph(model.config);
  Graph folded = passes::run_pipeline(plain, passes::parse_pipeline("fold-constants"));
  CHECK(compare(std::span<const float>(logits_of(folded, model)), std::span<const float>(logits_of(plain, model)))
            .relative <= 1e-6);
}

}  // namespace rwkvc::test
