#include "backends/cuda/cuda_steps.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include "backends/cuda/kernel_sources.h"
#include "ir/error.h"

namespace rwkvc::cuda {

namespace {
// Tokens from which a wkv7 call takes the block-per-head kernel.
constexpr int kWkv7BlocksFrom = 16;
}  // namespace

Step embedding_step(Program& program, DType table_dtype, std::size_t table, std::size_t tokens, std::size_t out,
                    const Shape& out_shape) {
  KernelHandle* kernel = program.module.kernel("embedding_" + device_type(table_dtype));
  int columns = static_cast<int>(out_shape.back());
  return [=](RunContext& ctx) {
    std::int64_t count = out_shape.numel(ctx.T);
    LaunchArgs args;
    args.add(ctx.slots[table]).add(ctx.slots[tokens]).add(ctx.slots[out]).add<long long>(count).add<int>(columns);
    ctx.launch_elements(*kernel, count, args);
  };
}

Step layer_norm_step(Program& program, std::size_t x, std::size_t weight, std::size_t bias, std::size_t out,
                     const Shape& shape, float eps) {
  KernelHandle* kernel = program.module.kernel("layer_norm_rows");
  int columns = static_cast<int>(shape.back());
  // About four elements a thread: one token's row is spread over many threads (decode).
  unsigned threads = static_cast<unsigned>(std::clamp((columns / 4 + 31) / 32 * 32, 32, 1024));
  return [=](RunContext& ctx) {
    auto rows = static_cast<unsigned>(shape.numel(ctx.T) / columns);
    LaunchArgs args;
    args.add(ctx.slots[x]).add(ctx.slots[weight]).add(ctx.slots[bias]).add(ctx.slots[out]).add<int>(columns).add<float>(eps);
    ctx.launch(*kernel, dim3(rows), dim3(threads), args);
  };
}

Step group_reduction_step(Program& program, const Op& op, const std::vector<std::size_t>& operands, std::size_t out,
                          const Shape& shape) {
  std::int64_t columns = shape.back();
  std::int64_t width = op.kind == OpKind::reduce_sum ? columns : columns / op.int_attr("groups");
  float eps = op.kind == OpKind::reduce_sum ? 0.0f : static_cast<float>(op.float_attr("eps"));
  const char* name = op.kind == OpKind::l2_norm ? "l2_norm_groups" : op.kind == OpKind::group_norm ? "group_norm_groups" : "reduce_sum_groups";
  KernelHandle* kernel = program.module.kernel(name);
  OpKind kind = op.kind;
  return [=](RunContext& ctx) {
    std::int64_t groups = shape.numel(ctx.T) / width;
    LaunchArgs args;
    args.add(ctx.slots[operands[0]]);
    if (kind == OpKind::group_norm) args.add(ctx.slots[operands[1]]).add(ctx.slots[operands[2]]);
    args.add(ctx.slots[out]).add<long long>(groups).add<int>(static_cast<int>(width));
    if (kind == OpKind::group_norm) args.add<int>(static_cast<int>(columns));
    if (kind != OpKind::reduce_sum) args.add<float>(eps);
    ctx.launch(*kernel, dim3(static_cast<unsigned>((groups + 7) / 8)), dim3(256), args);
  };
}

Step wkv7_step(Program& program, const std::vector<std::size_t>& operands, const std::vector<std::size_t>& results,
               const Shape& sequence_shape, const Shape& state_shape) {
  std::int64_t heads = state_shape[0], size = state_shape[1];
  // The block kernel keeps two chunks of 6 x 8 token vectors (up to 48 KiB); 8 lanes a row.
  if (size % 32 != 0 || size > 128)
    throw IrError(fmt::format("the CUDA wkv7 kernels take a head size that is a multiple of 32 up to 128, not {}", size));
  program.module.include(kWkvSource);
  auto entry = [&](const std::string& name, const std::string& call) {
    return program.module.kernel(
        name, fmt::format("extern \"C\" __global__ void {}(int T, int C, const float* r, const float* w, const float* k, "
                          "const float* v, const float* a, const float* b, const float* s_in, float* s_out, float* y) "
                          "{{\n  {}(T, C, r, w, k, v, a, b, s_in, s_out, y);\n}}\n",
                          name, call));
  };
  // Blocks of 16 rows, 8 lanes a row (4 warps, one per scheduler): H * N / 16 blocks.
  constexpr int kLanes = 8, kRowsPerBlock = 16;
  constexpr unsigned kRowWarpsPerBlock = 4;       // H * N rows, a multiple of 32: whole blocks
  KernelHandle* rows = entry(fmt::format("wkv7_warp_rows_n{}", size), fmt::format("wkv7_warp_rows<{}>", size));
  KernelHandle* blocks = entry(fmt::format("wkv7_heads_n{}_l{}_r{}", size, kLanes, kRowsPerBlock),
                               fmt::format("wkv7_heads<{}, {}, {}>", size, kLanes, kRowsPerBlock));
  std::int64_t channels = heads * size;
  return [=](RunContext& ctx) {
    auto steps = static_cast<int>(sequence_shape.numel(ctx.T) / channels);
    LaunchArgs args;
    args.add<int>(steps).add<int>(static_cast<int>(channels));
    bool aligned = true;
    for (std::size_t i = 0; i < 7; ++i) {
      args.add(ctx.slots[operands[i]]);
      aligned = aligned && reinterpret_cast<std::uintptr_t>(ctx.slots[operands[i]]) % 16 == 0;
    }
    args.add(ctx.slots[results[1]]).add(ctx.slots[results[0]]);
    aligned = aligned && reinterpret_cast<std::uintptr_t>(ctx.slots[results[1]]) % 16 == 0;
    // A few tokens: a warp per row fills the GPU. Many: the per-token chain decides, and the
    // blocks fed from shared memory have the shorter one (16-byte copies: aligned vectors).
    if (steps < kWkv7BlocksFrom || !aligned)
      ctx.launch(*rows, dim3(static_cast<unsigned>(channels / kRowWarpsPerBlock)), dim3(32 * kRowWarpsPerBlock), args);
    else
      ctx.launch(*blocks, dim3(static_cast<unsigned>(channels / kRowsPerBlock)),
                 dim3(static_cast<unsigned>(kRowsPerBlock * kLanes)), args);
  };
}

Step wkv4_step(Program& program, const std::vector<std::size_t>& operands, const std::vector<std::size_t>& results,
               const Shape& sequence_shape, std::int64_t channels) {
  program.module.include(kWkvSource);
  KernelHandle* kernel = program.module.kernel("wkv4_channels");
  return [=](RunContext& ctx) {
    auto steps = static_cast<int>(sequence_shape.numel(ctx.T) / channels);
    LaunchArgs args;
    args.add<int>(steps).add<int>(static_cast<int>(channels));
    for (std::size_t i = 0; i < 7; ++i) args.add(ctx.slots[operands[i]]);
    for (std::size_t i = 0; i < 4; ++i) args.add(ctx.slots[results[i]]);
    ctx.launch(*kernel, dim3(static_cast<unsigned>((channels + 127) / 128)), dim3(128), args);
  };
}

Step fused_step(KernelHandle* kernel, std::vector<std::size_t> outs, std::vector<std::size_t> ins, Shape domain,
                bool block_per_row) {
  // A block per row: about two elements a thread, so that one token's row spreads wide.
  unsigned row_threads = 0;
  if (block_per_row) row_threads = static_cast<unsigned>(std::clamp<std::int64_t>((domain.back() / 2 + 31) / 32 * 32, 32, 1024));
  return [kernel, outs = std::move(outs), ins = std::move(ins), domain = std::move(domain), row_threads](RunContext& ctx) {
    LaunchArgs args;
    args.add<long long>(ctx.T);
    for (std::size_t s : outs) args.add(ctx.slots[s]);
    for (std::size_t s : ins) args.add(ctx.slots[s]);
    if (row_threads > 0)
      ctx.launch(*kernel, dim3(static_cast<unsigned>(domain.numel(ctx.T) / domain.back())), dim3(row_threads), args);
    else
      ctx.launch_elements(*kernel, domain.numel(ctx.T), args);
  };
}

Step copy_step(Program& program, std::vector<std::pair<std::size_t, std::size_t>> slots, std::vector<std::int64_t> counts) {
  KernelHandle* kernel = program.module.kernel("copy_slots");
  return [kernel, slots = std::move(slots), counts = std::move(counts)](RunContext& ctx) {
    constexpr std::size_t kPerLaunch = 32;  // COPY_SLOTS in kMiscSource
    struct SlotCopies {
      const float* src[kPerLaunch];
      float* dst[kPerLaunch];
      int count[kPerLaunch];
    };
    for (std::size_t first = 0; first < slots.size(); first += kPerLaunch) {
      SlotCopies copies{};
      std::size_t n = std::min(kPerLaunch, slots.size() - first);
      std::int64_t largest = 0;
      for (std::size_t i = 0; i < n; ++i) {
        copies.src[i] = ctx.f32(slots[first + i].first);
        copies.dst[i] = ctx.f32(slots[first + i].second);
        copies.count[i] = static_cast<int>(counts[first + i]);
        largest = std::max(largest, counts[first + i]);
      }
      LaunchArgs args;
      args.add(copies);
      unsigned blocks = static_cast<unsigned>(std::clamp<std::int64_t>((largest + 255) / 256, 1, 1024));
      ctx.launch(*kernel, dim3(blocks, static_cast<unsigned>(n)), dim3(256), args);
    }
  };
}

}  // namespace rwkvc::cuda
