// rwkvc convert: rewrites a checkpoint (PyTorch .pth or safetensors) as safetensors, keeping
// every tensor's name, shape, dtype and bytes.
#include <fmt/format.h>

#include "frontend/pth_reader.h"
#include "frontend/safetensors.h"
#include "tools/commands.h"

namespace rwkvc::cli {

namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
};

void run_convert(const ConvertOptions& o) {
  SafetensorsFile checkpoint;
  std::string_view format = "PyTorch .pth";
  if (is_pth_file(o.input)) {
    checkpoint.tensors = read_pth(o.input);
    checkpoint.metadata = {{"format", "pt"}};  // what Hugging Face tools expect of PyTorch weights
  } else {
    checkpoint = read_safetensors(o.input);
    format = "safetensors";
  }
  write_safetensors(o.output, checkpoint.tensors, checkpoint.metadata);
  std::size_t bytes = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) bytes += tensor.nbytes();
  fmt::print("wrote {} ({} tensors, {} bytes of weights) from {} ({})\n", o.output, checkpoint.tensors.size(), bytes,
             o.input, format);
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto options = std::make_shared<ConvertOptions>();
  CLI::App* cmd =
      app.add_subcommand("convert", "Rewrite a checkpoint (.pth or .safetensors) as safetensors, dtypes kept");
  cmd->add_option("input", options->input, "Checkpoint to read: PyTorch .pth or safetensors")->required();
  cmd->add_option("output", options->output, "safetensors file to write (atomically)")->required();
  cmd->callback([options] { run_convert(*options); });
}

}  // namespace rwkvc::cli
