#include "backends/cpu/fold_cache.h"

#include <cstring>

#include <fmt/format.h>

#include "backends/disk_cache.h"
#include "ir/text.h"

namespace rwkvc::cpu {

namespace {

constexpr std::string_view kMagic = "rwkvc folded v1\n";

// `op` alone in a graph whose inputs are its operands: printed, it names the computation
// without the names the surrounding graph gives its values.
std::string op_text(const Graph& graph, const Op& op) {
  Graph alone;
  alone.name = "fold";
  Op copy = op;
  for (std::size_t i = 0; i < op.operands.size(); ++i) {
    auto id = static_cast<ValueId>(alone.values.size());
    alone.values.push_back({fmt::format("in{}", i), graph.type(op.operands[i])});
    alone.weights.push_back({id, fmt::format("in{}", i)});
    copy.operands[i] = id;
  }
  for (std::size_t i = 0; i < op.results.size(); ++i) {
    copy.results[i] = static_cast<ValueId>(alone.values.size());
    alone.values.push_back({fmt::format("out{}", i), graph.type(op.results[i])});
  }
  alone.ops.push_back(std::move(copy));
  return print_graph(alone);
}

std::string_view bytes_of(std::span<const float> values) {
  return {reinterpret_cast<const char*>(values.data()), values.size_bytes()};
}

std::filesystem::path path_of(const FoldKey& key) {
  std::filesystem::path dir = cache_directory("folded");
  return dir.empty() ? dir : dir / (key.file + ".f32");
}

}  // namespace

FoldKey fold_key(const Graph& graph, const Op& op, std::span<const std::span<const float>> inputs) {
  std::string text = op_text(graph, op);
  // Two differently seeded passes: 128 bits, so unrelated folds never share a name.
  std::uint64_t a = stable_hash(text), b = stable_hash(text, 0x84222325cbf29ce4ull);
  for (std::span<const float> input : inputs) {
    a = stable_hash(bytes_of(input), a);
    b = stable_hash(bytes_of(input), b);
  }
  return {fmt::format("{:016x}{:016x}", a, b)};
}

std::optional<std::vector<std::vector<float>>> load_folded(const FoldKey& key, std::span<const std::int64_t> sizes) {
  std::filesystem::path path = path_of(key);
  if (path.empty()) return std::nullopt;
  std::optional<std::vector<std::byte>> file = read_file(path);
  if (!file) return std::nullopt;
  std::size_t expected = kMagic.size();
  for (std::int64_t size : sizes) expected += static_cast<std::size_t>(size) * sizeof(float);
  if (file->size() != expected || std::memcmp(file->data(), kMagic.data(), kMagic.size()) != 0) return std::nullopt;
  std::vector<std::vector<float>> results;
  std::size_t at = kMagic.size();
  for (std::int64_t size : sizes) {
    std::vector<float>& values = results.emplace_back(static_cast<std::size_t>(size));
    std::memcpy(values.data(), file->data() + at, values.size() * sizeof(float));
    at += values.size() * sizeof(float);
  }
  return results;
}

void store_folded(const FoldKey& key, std::span<const std::span<const float>> results) {
  std::filesystem::path path = path_of(key);
  if (path.empty()) return;
  std::string file(kMagic);
  for (std::span<const float> values : results) file += bytes_of(values);
  write_file(path, file.data(), file.size());
}

}  // namespace rwkvc::cpu
