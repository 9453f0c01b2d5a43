// Matmul steps: a GEMV kernel when the activation has few rows (decode, short chunks), cuBLAS
// otherwise (f16/bf16 weights: activations rounded to the weights' type, f32 accumulation), and
// a plain kernel when the matrix is itself computed at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/cuda_program.h"
#include "ir/shape.h"

namespace rwkvc::cuda {

struct MatmulSpec {
  std::size_t a = 0, b = 0, out = 0;  // slots
  Shape a_shape;                      // [..., K]
  std::int64_t K = 0, N = 0;
  DType b_dtype = DType::f32;
  bool b_is_weight = false;  // then B is held as [N, K] (transposed at upload if the graph reads [K, N])
  bool transpose_b = true;   // the graph's layout of a computed B
  bool logits = false;       // the graph's logits: only the last row when the caller wants no more
};

// Rows up to this many go through the GEMV kernel.
inline constexpr std::int64_t kGemvMaxRows = 8;

Step matmul_step(const MatmulSpec& spec, Program& program);

// One member of a batch of one-row GEMVs: a matmul (plain store) or a matmul_epilogue region
// whose tail is folded into the store (the generated `epilogue` entry's store, reading `ins`
// and writing `outs`). `single` runs it on its own (more rows, unaligned operands).
struct GemvMember {
  MatmulSpec spec;
  std::string epilogue;  // empty: a plain matmul
  std::vector<std::size_t> outs, ins;  // the epilogue's slots
  Step single;
  // Decode only: the block computes its x itself (decode_ln_fold.h): `prologue` is the body of a
  // lambda (const float* x) -> const float* that every thread calls after the wait and that
  // returns where x is then (shared memory, `prologue_floats` of it), reading the parameters
  // `prologue_params` (", const float* m0_q0, ...") bound to `prologue_slots`.
  std::string prologue, prologue_params;
  std::vector<std::size_t> prologue_slots;
  std::int64_t prologue_floats = 0;
  int row_blocks = 1;  // blocks of 8 rows each launched block works through, its x computed once
};

// How a batched entry point stores member m's rows: the entry point's parameters for the folded
// epilogue's outputs and inputs (", float* m0_out0, ...") and the store functor built from them
// ("StoreRow()" for a plain matmul).
struct GemvMemberStore {
  std::string params, store;
};
GemvMemberStore gemv_member_store(const GemvMember& member, std::size_t m);

// The text after the name of an entry point that hands a batch's rows to `walker` (a device
// function taking the batch and a store(m, n, value) functor, e.g. "gemv_walk_rows<f16>"): the
// batch of type `batch_type`, T, each member's folded epilogue outputs and inputs, and a store
// that sends row n of member m to that member's store.
std::string gemv_row_walker_entry(const std::vector<GemvMember>& members, const std::string& batch_type,
                                  const std::string& walker);

// Whether a batch runs as one launch in this call (every member one row, aligned, K a multiple
// of its vector), or else each member on its own.
bool gemv_group_is_one_launch(const std::vector<GemvMember>& members, const RunContext& ctx);

// Independent one-row GEMVs (none reads another's result) with one weight type, at most 8
// (r, k, v and the four LoRA downs): one launch when each has one row (decode), else each on
// its own. RWKVC_CUDA_GEMV_PERSISTENT=1: the launch walks rows with resident warps (gemv_persistent.h);
// RWKVC_CUDA_GEMV_STAGED=1: its blocks stage weight tiles in shared memory before the wait (gemv_staged.h).
inline constexpr std::size_t kMatmulBatch = 8;
Step gemv_group_step(const std::vector<GemvMember>& members, Program& program);

}  // namespace rwkvc::cuda
