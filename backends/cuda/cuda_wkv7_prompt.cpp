#include "backends/cuda/cuda_wkv7_prompt.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_steps.h"
#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

// Tokens a chunk; threads of a block of the prepare kernel.
constexpr int kChunk = 16, kPrepareThreads = 128;

// Rows of a head a block of the row kernel, and rows a thread (N / 4 lanes a row): 16 x 2 unless
// RWKVC_WKV7_CHUNKED_SHAPE=<rows>x<rows a thread> (for measurements: 8 or 16 rows, 1, 2 or 4 a
// thread; two blocks' records no longer fit the static shared memory at 32 rows).
struct RowShape {
  std::int64_t rows = 16, per_thread = 2;
};

RowShape row_shape(std::int64_t size) {
  RowShape shape;
  const char* value = std::getenv("RWKVC_WKV7_CHUNKED_SHAPE");
  if (value != nullptr && *value != '\0') {
    long rows = 0, per_thread = 0;
    if (std::sscanf(value, "%ldx%ld", &rows, &per_thread) != 2 || (rows != 8 && rows != 16) ||
        (per_thread != 1 && per_thread != 2 && per_thread != 4))
      throw std::invalid_argument(fmt::format(
          "RWKVC_WKV7_CHUNKED_SHAPE='{}': expected <rows>x<rows a thread>, rows 8 or 16, 1, 2 or 4 a thread", value));
    shape = {rows, per_thread};
  }
  if ((shape.rows / shape.per_thread * (size / 4)) % 32 != 0)
    throw std::invalid_argument(fmt::format("RWKVC_WKV7_CHUNKED_SHAPE: {} rows, {} a thread leave a block of whole "
                                            "warps only for larger heads than {}",
                                            shape.rows, shape.per_thread, size));
  return shape;
}

// Producer blocks of the fused kernel: with the row blocks (128 at 32 heads of 64, 16 rows a
// block), within the four blocks of 48 KiB of shared memory an H100 SM holds (all resident).
constexpr std::size_t kFusedProducers = 3 * 132;

// RWKVC_WKV7_CHUNKED_FUSED=1: the records and the rows in one launch (wkv7c_fused).
bool fused_enabled() {
  const char* value = std::getenv("RWKVC_WKV7_CHUNKED_FUSED");
  return value != nullptr && std::string(value) == "1";
}

// How the row work runs: RWKVC_WKV7_CHUNKED_MMA=0: wkv7c_rows (f32 FMAs); 1: on tensor cores
// (wkv7c_rows_mma: tf32 mma in three terms, a block of N / 16 warps per 16 rows of a head), the
// operands split by cvt.rna; 2 (the default): the same, split by integer rounding. On the H100 at
// 32 heads of 64 and 4096 tokens: 0.441, 0.370 and 0.340 ms a layer (measured 2026-11-23,
// `[.wkv7_chunked_bench]`). The fused kernel (RWKVC_WKV7_CHUNKED_FUSED) keeps the FMA rows.
enum class RowsKind { fma, mma_cvt, mma_int };

RowsKind rows_kind() {
  const char* value = std::getenv("RWKVC_WKV7_CHUNKED_MMA");
  std::string text = value != nullptr ? value : "";
  if (text.empty()) return RowsKind::mma_int;
  if (text == "0") return RowsKind::fma;
  if (text == "1") return RowsKind::mma_cvt;
  if (text == "2") return RowsKind::mma_int;
  throw std::invalid_argument(fmt::format("RWKVC_WKV7_CHUNKED_MMA='{}': expected 0, 1 or 2", text));
}

// Floats of one (chunk, head) record (Wkv7cLayout in kernels_wkv7_chunked.cpp).
std::int64_t record_floats(std::int64_t size) { return 4 * kChunk * size + 4 * kChunk * kChunk + size; }

}  // namespace

std::int64_t wkv7_chunked_from() {
  if (const char* value = std::getenv("RWKVC_WKV7_CHUNKED_FROM"); value != nullptr && *value != '\0') {
    std::int64_t from = std::strtoll(value, nullptr, 10);
    return from > 0 ? from : INT64_MAX;
  }
  return kWkv7ChunkedDefaultFrom;
}

Step wkv7_any_length_step(Program& program, const std::vector<std::size_t>& operands,
                          const std::vector<std::size_t>& results, const Shape& sequence_shape, const Shape& state_shape,
                          Wkv7OperandsStep operands_step) {
  Step sequential = wkv7_step(program, operands, results, sequence_shape, state_shape);
  if (operands_step)
    sequential = [operands_step, sequential](RunContext& ctx) {
      operands_step(ctx, nullptr, nullptr);
      sequential(ctx);
    };
  std::int64_t heads = state_shape[0], size = state_shape[1];
  std::int64_t channels = heads * size, from = wkv7_chunked_from();
  // A row group's lanes share a warp and hold a chunk's tokens between them: 32 or 64 columns.
  if ((size != 32 && size != 64) || from == INT64_MAX) return sequential;
  // The chunk records: the full chunks', the last shorter chunk's, and the fused kernel's ready
  // flags, shared by every layer's step.
  std::int64_t record = record_floats(size);
  std::size_t full = program.reserved_scratch("wkv7 chunk records", Shape{kSeq, heads * record / kChunk});
  std::size_t tail = program.reserved_scratch("wkv7 last chunk record", Shape{heads * record});
  std::size_t ready = program.reserved_scratch("wkv7 chunk ready flags", Shape{kSeq, heads});  // 4 bytes a record

  program.module.include(kWkv7ChunkedSource);
  std::string prepare_name = fmt::format("wkv7_chunked_prepare_n{}_l{}", size, kChunk);
  KernelHandle* prepare = program.module.kernel(
      prepare_name,
      fmt::format("extern \"C\" __global__ void __launch_bounds__({3}) {0}(int T, int C, const float* r, "
                  "const float* w, const float* k, const float* a, const float* b, float* full, float* tail) {{\n"
                  "  wkv7c_prepare<{1}, {2}, {3}>(T, C, r, w, k, a, b, full, tail);\n}}\n",
                  prepare_name, size, kChunk, kPrepareThreads));
  RowShape shape = row_shape(size);
  std::int64_t block_rows = shape.rows, row_threads = shape.rows / shape.per_thread * (size / 4);
  bool fused = fused_enabled();
  RowsKind kind = fused ? RowsKind::fma : rows_kind();
  KernelHandle* rows = nullptr;
  if (kind != RowsKind::fma) {
    block_rows = 16;
    row_threads = 32 * (size / 16);
    bool cvt = kind == RowsKind::mma_cvt;
    std::string name = fmt::format("wkv7_chunked_rows_mma_n{}_l{}_{}", size, kChunk, cvt ? "cvt" : "int");
    rows = program.module.kernel(
        name, fmt::format("extern \"C\" __global__ void __launch_bounds__({3}) {0}(int T, int C, const float* v, "
                          "const float* full, const float* tail, const float* s_in, float* s_out, float* y) {{\n"
                          "  wkv7c_rows_mma<{1}, {2}, {4}>(T, C, v, full, tail, s_in, s_out, y);\n}}\n",
                          name, size, kChunk, row_threads, cvt ? "true" : "false"));
  } else {
    std::string name = fmt::format("wkv7_chunked_rows_n{}_l{}_r{}_t{}", size, kChunk, shape.rows, shape.per_thread);
    rows = program.module.kernel(
        name, fmt::format("extern \"C\" __global__ void __launch_bounds__({5}) {0}(int T, int C, const float* v, "
                          "const float* full, const float* tail, const float* s_in, float* s_out, float* y) {{\n"
                          "  wkv7c_rows<{1}, {2}, {3}, {4}>(T, C, v, full, tail, s_in, s_out, y);\n}}\n",
                          name, size, kChunk, shape.rows, shape.per_thread, row_threads));
  }
  KernelHandle* both = nullptr;
  if (fused) {
    std::string name = fmt::format("wkv7_chunked_fused_n{}_l{}_r{}_t{}", size, kChunk, shape.rows, shape.per_thread);
    both = program.module.kernel(
        name, fmt::format("extern \"C\" __global__ void __launch_bounds__({5}) {0}(int T, int C, const float* r, "
                          "const float* w, const float* k, const float* v, const float* a, const float* b, "
                          "float* full, float* tail, int* ready, const float* s_in, float* s_out, float* y) {{\n"
                          "  wkv7c_fused<{1}, {2}, {3}, {4}>(T, C, r, w, k, v, a, b, full, tail, ready, s_in, s_out, y);\n}}\n",
                          name, size, kChunk, shape.rows, shape.per_thread, row_threads));
  }
  return [=](RunContext& ctx) {
    std::int64_t steps = sequence_shape.numel(ctx.T) / channels;
    bool aligned = true;
    for (std::size_t i = 0; i < 7; ++i) aligned = aligned && reinterpret_cast<std::uintptr_t>(ctx.slots[operands[i]]) % 16 == 0;
    aligned = aligned && reinterpret_cast<std::uintptr_t>(ctx.slots[results[1]]) % 16 == 0;
    if (steps < from || !aligned) {
      sequential(ctx);
      return;
    }
    if (operands_step) operands_step(ctx, fused ? nullptr : ctx.slots[full], fused ? nullptr : ctx.slots[tail]);
    auto T = static_cast<int>(steps), C = static_cast<int>(channels);
    auto chunks = static_cast<unsigned>((steps + kChunk - 1) / kChunk);
    // operands: r, w, k, v, a, b, state; results: y, state.
    if (fused) {
      auto records = static_cast<std::size_t>(chunks) * static_cast<std::size_t>(heads);
      ctx.record("wkv7_chunked_ready_clear", [&] {
        check(cudaMemsetAsync(ctx.slots[ready], 0, records * sizeof(int), ctx.stream), "cudaMemsetAsync");
      });
      LaunchArgs args;
      args.add<int>(T).add<int>(C);
      for (std::size_t i = 0; i < 6; ++i) args.add(ctx.slots[operands[i]]);
      args.add(ctx.slots[full]).add(ctx.slots[tail]).add(ctx.slots[ready]);
      args.add(ctx.slots[operands[6]]).add(ctx.slots[results[1]]).add(ctx.slots[results[0]]);
      auto row_blocks = static_cast<unsigned>(channels / block_rows);
      auto producers = static_cast<unsigned>(std::min<std::size_t>(records, kFusedProducers));
      ctx.launch(*both, dim3(row_blocks + producers), dim3(static_cast<unsigned>(row_threads)), args);
      return;
    }
    if (!operands_step) {
      LaunchArgs prepare_args;
      prepare_args.add<int>(T).add<int>(C);
      for (std::size_t i : {0, 1, 2, 4, 5}) prepare_args.add(ctx.slots[operands[i]]);
      prepare_args.add(ctx.slots[full]).add(ctx.slots[tail]);
      ctx.launch(*prepare, dim3(chunks, static_cast<unsigned>(heads)), dim3(kPrepareThreads), prepare_args);
    }
    LaunchArgs rows_args;
    rows_args.add<int>(T).add<int>(C).add(ctx.slots[operands[3]]).add(ctx.slots[full]).add(ctx.slots[tail]);
    rows_args.add(ctx.slots[operands[6]]).add(ctx.slots[results[1]]).add(ctx.slots[results[0]]);
    ctx.launch(*rows, dim3(static_cast<unsigned>(channels / block_rows)), dim3(static_cast<unsigned>(row_threads)),
               rows_args);
  };
}

}  // namespace rwkvc::cuda
