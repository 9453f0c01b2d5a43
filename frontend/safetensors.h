// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then the raw data.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include "ir/tensor.h"

namespace rwkvc {

struct SafetensorsFile {
  WeightMap tensors;
  std::map<std::string, std::string> metadata;  // the header's "__metadata__"
};

// Thrown when the bytes do not even begin like a safetensors file (too short, a header length
// beyond the file, a header that is not a JSON object): the file is likely of another kind.
// Corrupt tensor entries in a real header are plain std::invalid_argument.
class NotSafetensorsError : public std::invalid_argument {
 public:
  NotSafetensorsError(const std::string& path, const std::string& reason);
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

// Maps the file read-only; tensors of dtype F32, F16, BF16 and I32 are views into the mapping,
// which is unmapped when the last of them dies. A tensor whose data is not aligned to its element
// size (legal in the format, never written by rwkvc or PyTorch) is copied instead.
// Throws std::invalid_argument naming the file and tensor for anything malformed.
SafetensorsFile read_safetensors(const std::string& path);

// Writes atomically (a temporary file renamed into place): tensors in name order, the header
// padded with spaces to a multiple of 8 bytes, so equal inputs give byte-identical files.
void write_safetensors(const std::string& path, const WeightMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace rwkvc
