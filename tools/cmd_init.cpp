// rwkvc init: writes a random model with official tensor names and realistic scales.
#include <fmt/format.h>

#include "frontend/random_model.h"
#include "frontend/safetensors.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace rwkvc::cli {

namespace {

struct InitOptions {
  std::string arch;
  std::int64_t layers = 0, embd = 0, vocab = 0, head_size = 64, ffn = 0, lora = 0;
  std::uint64_t seed = 0;
  std::string out;
};

void run_init(const InitOptions& o) {
  Arch arch = o.arch == "rwkv4" ? Arch::rwkv4 : Arch::rwkv7;
  ModelConfig config = standard_config(arch, o.layers, o.embd, o.vocab, o.head_size);
  if (o.ffn > 0) config.ffn = o.ffn;
  if (o.lora > 0 && arch == Arch::rwkv7) {
    config.decay_lora = config.aaa_lora = config.gate_lora = o.lora;
    config.mv_lora = o.layers > 1 ? o.lora : 0;
  }
  WeightMap weights = make_random_model(config, o.seed);
  write_safetensors(o.out, weights,
                    {{"format", "pt"}, {"rwkvc.generator", fmt::format("rwkvc init, seed {}", o.seed)}});
  std::size_t bytes = 0;
  for (const auto& [name, tensor] : weights) bytes += tensor.nbytes();
  fmt::print("wrote {} ({}, {} tensors, {} bytes of weights)\n", o.out, arch_name(arch), weights.size(), bytes);
}

}  // namespace

void add_init_command(CLI::App& app) {
  auto options = std::make_shared<InitOptions>();
  CLI::App* cmd = app.add_subcommand("init", "Write a random model (official tensor names, realistic scales)");
  cmd->add_option("--arch", options->arch, "rwkv7 or rwkv4")->required()->check(CLI::IsMember({"rwkv7", "rwkv4"}));
  cmd->add_option("--layers", options->layers, "Number of blocks")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--embd", options->embd, "Embedding width C")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--vocab", options->vocab, "Vocabulary size")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--head-size", options->head_size, "RWKV-7 head size N")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--ffn", options->ffn, "Channel-mix width (default 4C)")->check(CLI::PositiveNumber);
  cmd->add_option("--lora", options->lora, "RWKV-7 LoRA rank for w, a, v, g (default: the reference's rule)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", options->seed, "Random seed")->required();
  cmd->add_option("--out", options->out, "Output .safetensors file")->required();
  cmd->callback([options] { run_init(*options); });
}

}  // namespace rwkvc::cli
