// Decode: the LoRA ups (w, a, v, g) that only a one-token RWKV-7 wkv region reads are computed
// by that region's kernel, each block the rows of its own head (kernels_decode_lora.cpp), not
// by a GEMV batch of their own: one launch a layer fewer. Longer calls keep the batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_program.h"
#include "ir/graph.h"

namespace rwkvc::cuda {

// lora_up_quad<W> (needs kGemvSource ahead of it; prefetch_l2_block is in kWkvSource).
extern const char* const kDecodeLoraSource;

// The batch of one-row GEMVs the program builder pushed last, and the op of each member.
struct RecentGemvBatch {
  std::size_t step = 0;  // its index in Program::steps
  std::vector<GemvMember> members;
  std::vector<std::size_t> ops;
};

// A LoRA up computed inside the wkv kernel: the slots of its hidden vector [1, D], its weight
// (held [C, D]) and its product [1, C].
struct FoldedUp {
  std::size_t hidden = 0, weight = 0, out = 0;
  std::int64_t D = 0;
  DType dtype = DType::f32;
};

// RWKVC_CUDA_FOLD_LORA_UP=0: the LoRA ups stay a batch of their own (read by each program
// build, so that one process can time both).
bool lora_fold_enabled();
// RWKVC_CUDA_WKV_PREFETCH=0: the one-token wkv kernel does not pull its head's state (and
// folded LoRA rows) into L2 before its wait (read by each program build).
bool wkv_prefetch_enabled();

// When every member of `recent` (the step just before) is a matmul by a [C, D] weight whose
// product only the wkv region `graph.ops[region]` reads, takes them: their batch then runs
// only for calls of more than one token, and their operands stay live until the region runs.
// Empty (nothing changed) otherwise.
std::vector<FoldedUp> fold_lora_ups(const Graph& graph, std::size_t region, std::optional<RecentGemvBatch>& recent,
                                    Program& program, Dim C);

// The code the one-token kernel adds: its parameters (", const float* u0_x, ..."), the L2
// prefetches to run before kernel_entry() and the ups' phase to run after it (ending in a
// barrier). `h` (the head) and `s_in` (the state) are names the kernel declares.
struct LoraFoldCode {
  std::string params, before_wait, after_wait;
};
LoraFoldCode lora_fold_code(const std::vector<FoldedUp>& ups, Dim N, bool prefetch_state);

}  // namespace rwkvc::cuda
