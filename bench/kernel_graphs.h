// Single-purpose graphs for the kernel micro-benchmarks: each isolates one kernel family behind
// the public interface (tokens in, logits out), with what it reads and computes counted so the
// benchmark can report GB/s and FLOP/s. Each graph also runs an embedding (its inputs come from
// token ids) and returns logits to the host; nothing is subtracted, so small sizes understate
// the kernel's own speed. bench/README.md lists what each graph holds.
#pragma once

#include <cstdint>
#include <string>

#include "ir/graph.h"
#include "ir/tensor.h"

namespace rwkvc::bench {

struct KernelGraph {
  std::string name;
  Graph graph;
  WeightMap weights;
  std::int64_t tokens = 1;   // per forward call
  bool all_logits = false;   // GEMM: every row must come back, or a backend may compute one
  double bytes = 0;          // read and written by the kernel under test, per call
  double flops = 0;          // per call
};

// tokens -> embedding [V, K] -> matmul with W [N, K] (transpose_b) -> logits [N]. T = 1.
KernelGraph gemv_graph(std::int64_t n, std::int64_t k, DType weight_dtype);
// The same with T rows, every row's logits returned ([T, N]).
KernelGraph gemm_graph(std::int64_t t, std::int64_t n, std::int64_t k, DType weight_dtype);
// Six embeddings (r, w, k, v, a, b; w kept in (0, 1) by the table's values) -> wkv7 over
// H heads of N -> y as logits; the state S [H, N, N] in and out.
KernelGraph wkv7_graph(std::int64_t t, std::int64_t heads, std::int64_t head_size);
// Embeddings k, v and weights w, u -> wkv4 with state aa, bb, pp [C] -> y as logits.
KernelGraph wkv4_graph(std::int64_t t, std::int64_t channels);
// Embedding x -> one "token_shift_mix" region (the form fuse-token-shift makes: token shift,
// last row, and six lerps with per-channel mixes) -> the first mix as logits.
KernelGraph token_shift_mix_graph(std::int64_t t, std::int64_t channels);

}  // namespace rwkvc::bench
