// rwkvc info: what a checkpoint holds: file format, RWKV version, sizes, parameter count, dtypes.
#include <map>

#include <fmt/format.h>

#include "frontend/model.h"
#include "frontend/pth_reader.h"
#include "tools/commands.h"

namespace rwkvc::cli {

namespace {

// "f32" when every tensor has one dtype, else "f16 (41 tensors), f32 (1 tensor)".
std::string dtype_summary(const WeightMap& weights) {
  std::map<std::string_view, std::size_t> counts;
  for (const auto& [name, tensor] : weights) ++counts[dtype_name(tensor.dtype())];
  if (counts.size() == 1) return std::string(counts.begin()->first);
  std::string text;
  for (const auto& [dtype, count] : counts)
    text += fmt::format("{}{} ({} tensor{})", text.empty() ? "" : ", ", dtype, count, count == 1 ? "" : "s");
  return text;
}

void run_info(const std::string& path) {
  Model model = load_model(path);
  const ModelConfig& c = model.config;
  std::int64_t parameters = 0;
  for (const auto& [name, tensor] : model.weights) parameters += tensor.numel();

  fmt::print("file: {}\n", path);
  fmt::print("format: {}\n", is_pth_file(path) ? "PyTorch .pth" : "safetensors");
  fmt::print("version: {} ({})\n", c.arch == Arch::rwkv7 ? "RWKV-7" : "RWKV-4", arch_name(c.arch));
  fmt::print("layers: {}\n", c.layers);
  fmt::print("embd: {}\n", c.embd);
  fmt::print("vocab: {}\n", c.vocab);
  if (c.arch == Arch::rwkv7) fmt::print("head size: {} ({} heads)\n", c.head_size, c.heads());
  fmt::print("ffn: {}\n", c.ffn);
  if (c.arch == Arch::rwkv7)
    fmt::print("lora ranks: decay {}, a {}, v {}, gate {}\n", c.decay_lora, c.aaa_lora, c.mv_lora, c.gate_lora);
  fmt::print("parameters: {} ({:.3f} M) in {} tensors\n", parameters, static_cast<double>(parameters) / 1e6,
             model.weights.size());
  fmt::print("dtype: {}\n", dtype_summary(model.weights));
  for (const auto& [key, value] : model.metadata) fmt::print("metadata: {} = {}\n", key, value);
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a checkpoint: version, sizes, parameters, dtypes, format");
  cmd->add_option("--model", *path, "Checkpoint file (.pth or .safetensors)")->required();
  cmd->callback([path] { run_info(*path); });
}

}  // namespace rwkvc::cli
