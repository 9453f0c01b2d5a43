// Folded regions' results kept on disk, named by a hash of the region and of its inputs'
// values: a fold over large weights (a normalised table, a product of matrices) runs once per
// machine, not once per compile. A file that does not match what it should hold is ignored.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rwkvc::cpu {

struct FoldKey {
  std::string file;  // hex digits: the name under cache_directory("folded")
};

// The key of running `op` (of `graph`) on `inputs`, its operands' f32 values in order.
FoldKey fold_key(const Graph& graph, const Op& op, std::span<const std::span<const float>> inputs);

// The op's results as stored under `key`, when a whole, well-formed file holds exactly
// `sizes[i]` floats for result i; nothing otherwise.
std::optional<std::vector<std::vector<float>>> load_folded(const FoldKey& key, std::span<const std::int64_t> sizes);

// Stores the results under `key` (atomically; a cache that cannot be written is skipped).
void store_folded(const FoldKey& key, std::span<const std::span<const float>> results);

}  // namespace rwkvc::cpu
