#include "frontend/model_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

namespace {

// The reference's LoRA rank rule: max(32, round(factor * C^power / 32) * 32).
std::int64_t lora_rank(std::int64_t embd, double factor, double power) {
  auto rounded = static_cast<std::int64_t>(std::lround(factor * std::pow(static_cast<double>(embd), power) / 32.0)) * 32;
  return std::max<std::int64_t>(32, rounded);
}

}  // namespace

ModelConfig standard_config(Arch arch, std::int64_t layers, std::int64_t embd, std::int64_t vocab,
                            std::int64_t head_size) {
  ModelConfig config;
  config.arch = arch;
  config.layers = layers;
  config.embd = embd;
  config.vocab = vocab;
  config.ffn = 4 * embd;
  config.head_size = head_size;
  if (arch == Arch::rwkv7) {
    config.decay_lora = lora_rank(embd, 1.8, 0.5);
    config.aaa_lora = lora_rank(embd, 1.8, 0.5);
    config.mv_lora = layers > 1 ? lora_rank(embd, 1.3, 0.5) : 0;
    config.gate_lora = lora_rank(embd, 0.6, 0.8);
  }
  return config;
}

std::string_view arch_name(Arch arch) { return arch == Arch::rwkv4 ? "rwkv4" : "rwkv7"; }

namespace {

// Reads sizes off the tensors inference uses; the backends check every other tensor's shape
// when they bind it.
class ConfigReader {
 public:
  ConfigReader(const WeightMap& weights, std::string_view origin) : weights_(weights), origin_(origin) {}

  bool has(const std::string& name) const { return weights_.contains(name); }

  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(fmt::format("'{}': {}", origin_, why));
  }

  // The two extents of a matrix, both positive; `layout` names them for the message.
  std::pair<std::int64_t, std::int64_t> matrix(const std::string& name, std::string_view layout) const {
    auto it = weights_.find(name);
    if (it == weights_.end()) fail(fmt::format("the model has no tensor '{}'", name));
    const Shape& shape = it->second.shape();
    if (shape.rank() != 2 || shape[0] <= 0 || shape[1] <= 0)
      fail(fmt::format("tensor '{}' has shape {}, expected {}", name, to_string(shape), layout));
    return {shape[0], shape[1]};
  }

  // A matrix whose rows (or columns, when `rows_are_embd` is false) must be C wide.
  std::int64_t other_extent(const std::string& name, std::int64_t embd, bool rows_are_embd, std::string_view layout) const {
    auto [rows, cols] = matrix(name, layout);
    if ((rows_are_embd ? rows : cols) != embd)
      fail(fmt::format("tensor '{}' has shape [{}, {}], expected {} with embd {} (from emb.weight)", name, rows, cols,
                       layout, embd));
    return rows_are_embd ? cols : rows;
  }

  Arch arch() const {
    if (has("blocks.0.att.x_r") || has("blocks.0.att.w0")) return Arch::rwkv7;
    if (has("blocks.0.att.time_first") || has("blocks.0.att.time_mix_k")) return Arch::rwkv4;
    fail("unknown RWKV version: it has none of blocks.0.att.x_r, blocks.0.att.w0 (RWKV-7), "
         "blocks.0.att.time_first, blocks.0.att.time_mix_k (RWKV-4)");
  }

  // The N of every "blocks.N.ln1.weight"; they must be exactly 0..L-1.
  std::int64_t layers() const {
    constexpr std::string_view prefix = "blocks.", suffix = ".ln1.weight";
    std::set<std::int64_t> found;
    for (const auto& [name, tensor] : weights_) {
      std::string_view n = name;
      if (!n.starts_with(prefix) || !n.ends_with(suffix) || n.size() <= prefix.size() + suffix.size()) continue;
      std::string_view digits = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
      std::int64_t index = 0;
      auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
      bool canonical = error == std::errc() && end == digits.data() + digits.size() && index >= 0 &&
                       (digits.size() == 1 || digits[0] != '0');
      if (canonical) found.insert(index);
    }
    if (found.empty()) fail("the model has no blocks.N.ln1.weight: no layers found");
    std::int64_t expected = 0;
    for (std::int64_t index : found) {
      if (index != expected)
        fail(fmt::format("the model has blocks.{}.ln1.weight but no blocks.{}.ln1.weight: layers must be numbered "
                         "0 to L-1",
                         index, expected));
      ++expected;
    }
    return expected;
  }

 private:
  const WeightMap& weights_;
  std::string_view origin_;
};

void read_rwkv7_sizes(const ConfigReader& reader, ModelConfig& config) {
  auto [heads, head_size] = reader.matrix("blocks.0.att.r_k", "[heads, head_size]");
  if (heads * head_size != config.embd)
    reader.fail(fmt::format("tensor 'blocks.0.att.r_k' has shape [{}, {}], but heads * head_size must equal embd {} "
                            "(from emb.weight)",
                            heads, head_size, config.embd));
  config.head_size = head_size;
  config.decay_lora = reader.other_extent("blocks.0.att.w1", config.embd, true, "[embd, decay_lora]");
  config.aaa_lora = reader.other_extent("blocks.0.att.a1", config.embd, true, "[embd, aaa_lora]");
  config.gate_lora = reader.other_extent("blocks.0.att.g1", config.embd, true, "[embd, gate_lora]");
  // Layer 0 keeps its own v as v_first, so the value-mix LoRA starts at layer 1.
  config.mv_lora = config.layers > 1 ? reader.other_extent("blocks.1.att.v1", config.embd, true, "[embd, mv_lora]") : 0;
}

}  // namespace

ModelConfig infer_config(const WeightMap& weights, std::string_view origin) {
  ConfigReader reader(weights, origin);
  ModelConfig config;
  config.arch = reader.arch();
  config.layers = reader.layers();
  std::tie(config.vocab, config.embd) = reader.matrix("emb.weight", "[vocab, embd]");
  config.ffn = reader.other_extent("blocks.0.ffn.key.weight", config.embd, false, "[ffn, embd]");
  if (config.arch == Arch::rwkv7) read_rwkv7_sizes(reader, config);
  return config;
}

}  // namespace rwkvc
