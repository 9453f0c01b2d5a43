#include "backends/cuda/cuda_wkv7_prompt.h"

#include <cstdint>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/cuda_steps.h"
#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {
// Tokens a chunk; rows of a head a block (8 lanes a row: 128 threads).
constexpr int kChunk = 16, kRowsPerBlock = 16, kLanes = 8;
}  // namespace

std::int64_t wkv7_chunked_from() {
  if (const char* value = std::getenv("RWKVC_WKV7_CHUNKED_FROM"); value != nullptr && *value != '\0') {
    std::int64_t from = std::strtoll(value, nullptr, 10);
    return from > 0 ? from : INT64_MAX;
  }
  return INT64_MAX;
}

Step wkv7_any_length_step(Program& program, const std::vector<std::size_t>& operands,
                          const std::vector<std::size_t>& results, const Shape& sequence_shape, const Shape& state_shape) {
  Step sequential = wkv7_step(program, operands, results, sequence_shape, state_shape);
  std::int64_t heads = state_shape[0], size = state_shape[1];
  std::int64_t channels = heads * size, from = wkv7_chunked_from();
  // The block keeps the chunk's six vectors of one head in shared memory: up to 64 columns.
  if ((size != 32 && size != 64) || from == INT64_MAX) return sequential;
  program.module.include(kWkv7ChunkedSource);
  std::string name = fmt::format("wkv7_chunked_n{}_l{}_r{}", size, kChunk, kRowsPerBlock);
  KernelHandle* chunked = program.module.kernel(
      name, fmt::format("extern \"C\" __global__ void __launch_bounds__({3}) {0}(int T, int C, const float* r, "
                        "const float* w, const float* k, const float* v, const float* a, const float* b, "
                        "const float* s_in, float* s_out, float* y) {{\n"
                        "  wkv7_chunked<{1}, {2}, {4}>(T, C, r, w, k, v, a, b, s_in, s_out, y);\n}}\n",
                        name, size, kChunk, kRowsPerBlock * kLanes, kRowsPerBlock));
  return [=](RunContext& ctx) {
    std::int64_t steps = sequence_shape.numel(ctx.T) / channels;
    bool aligned = true;
    for (std::size_t i = 0; i < 7; ++i) aligned = aligned && reinterpret_cast<std::uintptr_t>(ctx.slots[operands[i]]) % 16 == 0;
    aligned = aligned && reinterpret_cast<std::uintptr_t>(ctx.slots[results[1]]) % 16 == 0;
    if (steps < from || !aligned) {
      sequential(ctx);
      return;
    }
    LaunchArgs args;
    args.add<int>(static_cast<int>(steps)).add<int>(static_cast<int>(channels));
    for (std::size_t i = 0; i < 7; ++i) args.add(ctx.slots[operands[i]]);
    args.add(ctx.slots[results[1]]).add(ctx.slots[results[0]]);
    ctx.launch(*chunked, dim3(static_cast<unsigned>(channels / kRowsPerBlock)), dim3(kRowsPerBlock * kLanes), args);
  };
}

}  // namespace rwkvc::cuda
