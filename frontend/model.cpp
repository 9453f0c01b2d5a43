#include "frontend/model.h"

#include <fstream>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "frontend/pth_reader.h"
#include "frontend/safetensors.h"
#include "frontend/zip_archive.h"

namespace rwkvc {

namespace {

struct Checkpoint {
  WeightMap weights;
  std::map<std::string, std::string> metadata;
};

// A checkpoint format recognised by its leading bytes. safetensors has no magic number (it
// begins with a header length), so it is the fallback when no signature matches.
struct CheckpointFormat {
  std::string_view name;
  std::string_view signature;
  Checkpoint (*read)(const std::string& path);
};

Checkpoint read_safetensors_checkpoint(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  return {std::move(file.tensors), std::move(file.metadata)};
}

Checkpoint read_pytorch_checkpoint(const std::string& path) { return {read_pth(path), {}}; }

// A .pth is a zip archive.
constexpr CheckpointFormat kPytorch{"PyTorch .pth", kZipSignature, read_pytorch_checkpoint};
constexpr CheckpointFormat kSafetensors{"safetensors", {}, read_safetensors_checkpoint};
constexpr CheckpointFormat kSignedFormats[] = {kPytorch};

const CheckpointFormat& recognise(const std::string& path) {
  char head[8] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(head, sizeof head);  // a file that cannot be read falls through to a reader that says why
  std::string_view start(head, static_cast<std::size_t>(in.gcount()));
  for (const CheckpointFormat& format : kSignedFormats)
    if (start.starts_with(format.signature)) return format;
  return kSafetensors;
}

}  // namespace

Model load_model(const std::string& path) {
  const CheckpointFormat& format = recognise(path);
  Checkpoint checkpoint;
  try {
    checkpoint = format.read(path);
  } catch (const NotSafetensorsError& e) {
    throw std::invalid_argument(
        fmt::format("'{}' is not a model file (safetensors or PyTorch .pth): {}", path, e.reason()));
  }
  Model model;
  model.path = path;
  model.config = infer_config(checkpoint.weights, path);
  model.weights = std::move(checkpoint.weights);
  model.metadata = std::move(checkpoint.metadata);
  return model;
}

}  // namespace rwkvc
