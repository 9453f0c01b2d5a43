// PyTorch checkpoints as torch.save writes them (the format of BlinkDL's released .pth files):
// a zip archive whose <prefix>/data.pkl pickles a dict of tensors, each rebuilt by
// torch._utils._rebuild_tensor_v2 from a storage named by a persistent id
// ('storage', torch.FloatStorage, key, location, numel), whose raw little-endian bytes are the
// archive entry <prefix>/data/<key>. The prefix is whatever folder the archive uses.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "ir/tensor.h"

namespace rwkvc {

// Maps the file read-only. Contiguous tensors are views into the mapping, which lives as long
// as any of them; others (transposed, stepped) are copied into contiguous tensors. Storages of
// f32, f16 and bf16 are read. Throws std::invalid_argument naming the file and the entry,
// tensor, pickle opcode or global at fault; no pickled code is ever run.
WeightMap read_pth(const std::string& path);

// The same for a checkpoint in memory: `owner` keeps `bytes` alive for as long as tensors view
// them, and `path` names the checkpoint in messages.
WeightMap read_pth(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, const std::string& path);

// True when the file begins like a zip archive, as every .pth since PyTorch 1.6 does.
bool is_pth_file(const std::string& path);

}  // namespace rwkvc
