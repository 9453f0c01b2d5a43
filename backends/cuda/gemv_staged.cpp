#include "backends/cuda/gemv_staged.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

constexpr int kThreads = 256;    // GEMV_STAGED_THREADS
constexpr int kMaxStages = 8;    // GEMV_STAGES_MAX
constexpr int kRowsAThread = 8;  // the kernel's accumulators for split rows
// The dynamic shared memory a block may opt into on sm_90 (227 KB), less the kernel's own.
constexpr std::int64_t kMaxRingBytes = 227 * 1024 - 1024;

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

std::int64_t element_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

// gemv_tile_lanes(chunks, max_lanes) in the kernel.
int row_lanes(std::int64_t K, DType dtype, int max_lanes) {
  std::int64_t chunks = K * element_bytes(dtype) / 16;
  int lanes = 32;
  while (lanes < chunks && lanes < max_lanes) lanes <<= 1;
  return lanes;
}

// A ring slot holds the largest tile of the batch, in 128-byte steps.
std::int64_t stage_bytes(const std::vector<GemvMember>& members, const StagedShape& shape) {
  std::int64_t bytes = 0;
  for (const GemvMember& member : members) {
    const MatmulSpec& spec = member.spec;
    std::int64_t rows = std::min<std::int64_t>(staged_tile_rows(spec.K, spec.b_dtype, shape), spec.N);
    bytes = std::max(bytes, rows * spec.K * element_bytes(spec.b_dtype));
  }
  return (bytes + 127) / 128 * 128;
}

int stages_that_fit(std::int64_t slot_bytes, const StagedShape& shape) {
  return static_cast<int>(std::min<std::int64_t>(shape.stages, kMaxRingBytes / std::max<std::int64_t>(slot_bytes, 1)));
}

int multiprocessors() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) {
    (void)cudaGetLastError();
    return 132;  // an H100 SXM
  }
  return sms;
}

}  // namespace

bool gemv_staged_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_GEMV_STAGED");
  return value != nullptr && std::string(value) == "1";
}

bool gemv_staged_head_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_GEMV_STAGED_HEAD");
  return gemv_staged_enabled() && (value == nullptr || std::string(value) != "0");
}

StagedShape staged_shape_from_env() {
  StagedShape shape;
  shape.stages = std::clamp(env_int("RWKVC_CUDA_GEMV_STAGED_STAGES", shape.stages), 1, kMaxStages);
  shape.tile_bytes = std::max(1, env_int("RWKVC_CUDA_GEMV_STAGED_TILE_KB", 16)) * std::int64_t{1024};
  shape.per_sm = std::max(0, env_int("RWKVC_CUDA_GEMV_STAGED_PER_SM", 0));
  shape.grid = std::max(0, env_int("RWKVC_CUDA_GEMV_STAGED_GRID", 0));
  shape.max_lanes = std::clamp(env_int("RWKVC_CUDA_GEMV_STAGED_LANES", shape.max_lanes), 32, kThreads);
  const char* copy = std::getenv("RWKVC_CUDA_GEMV_STAGED_COPY");
  shape.thread_copies = copy != nullptr && std::string(copy) == "threads";
  return shape;
}

int staged_tile_rows(std::int64_t K, DType dtype, const StagedShape& shape) {
  std::int64_t row = K * element_bytes(dtype);
  int lanes = row_lanes(K, dtype, shape.max_lanes);
  // A warp a row: any number; split rows: eight accumulators a thread of each row group.
  std::int64_t most = lanes == 32 ? std::numeric_limits<int>::max() : std::int64_t{kRowsAThread} * (kThreads / lanes);
  return static_cast<int>(std::clamp<std::int64_t>(shape.tile_bytes / std::max<std::int64_t>(row, 1), 1, most));
}

bool gemv_staged_takes(const std::vector<GemvMember>& members) {
  if (members.empty() || members.size() > kMatmulBatch) return false;
  if (!std::all_of(members.begin(), members.end(), [](const GemvMember& member) { return member.prologue.empty(); }))
    return false;
  return stages_that_fit(stage_bytes(members, staged_shape_from_env()), staged_shape_from_env()) >= 1;
}

Step gemv_staged_step(const std::vector<GemvMember>& members, Program& program) {
  program.module.include(kGemvSource);
  program.module.include(kGemvStagedSource);
  std::string text =
      gemv_row_walker_entry(members, "GemvTileBatch", "gemv_staged_tiles<" + device_type(members[0].spec.b_dtype) + ">");
  // Named by its text, so identical batches (every layer's) share one kernel; the shape is a
  // launch parameter, so every shape shares it too.
  std::string name = fmt::format("gemv_staged_{:016x}", std::hash<std::string>{}(text));
  KernelHandle* kernel = program.module.kernel(
      name, fmt::format("extern \"C\" __global__ void __launch_bounds__({}) {}{}", kThreads, name, text));

  StagedShape shape = staged_shape_from_env();
  std::int64_t slot_bytes = stage_bytes(members, shape);
  int stages = stages_that_fit(slot_bytes, shape);
  auto ring_bytes = static_cast<std::size_t>(slot_bytes * stages);
  std::vector<int> tile_rows;
  for (const GemvMember& member : members) tile_rows.push_back(staged_tile_rows(member.spec.K, member.spec.b_dtype, shape));

  // Asked once for the loaded kernel, at its first launch: its shared memory limit raised to the
  // ring, and the blocks an SM may hold with it.
  struct Configured {
    cudaKernel_t kernel = nullptr;
    unsigned resident = 0;
    bool fits = true;  // the ring fits the device's shared memory (227 KB on sm_90, less before)
  };
  auto configured = std::make_shared<Configured>();
  return [members, kernel, shape, slot_bytes, stages, ring_bytes, tile_rows, configured](RunContext& ctx) {
    if (!gemv_group_is_one_launch(members, ctx)) {
      for (const GemvMember& member : members) member.single(ctx);
      return;
    }
    if (configured->kernel != kernel->kernel) {
      auto* function = reinterpret_cast<const void*>(kernel->kernel);
      int device = 0, optin = 0;
      check(cudaGetDevice(&device), "cudaGetDevice");
      check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
            "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
      // The most a block may have: batches of other shapes share the kernel (identical stores).
      auto most = static_cast<int>(std::min<std::int64_t>(kMaxRingBytes, optin - 1024));
      configured->fits = static_cast<std::int64_t>(ring_bytes) <= most;
      check(cudaFuncSetAttribute(function, cudaFuncAttributeMaxDynamicSharedMemorySize, most),
            fmt::format("raising the shared memory of {} to {} bytes", kernel->name, most));
      check(cudaFuncSetAttribute(function, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 cudaSharedmemCarveoutMaxShared),
            fmt::format("the shared memory carveout of {}", kernel->name));
      int per_sm = 0;
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, function, kThreads, ring_bytes) != cudaSuccess ||
          per_sm <= 0) {
        (void)cudaGetLastError();
        per_sm = 1;
      }
      configured->resident = static_cast<unsigned>(
          multiprocessors() * (shape.per_sm > 0 ? std::min(shape.per_sm, per_sm) : per_sm));
      configured->kernel = kernel->kernel;
    }
    if (!configured->fits) {
      for (const GemvMember& member : members) member.single(ctx);
      return;
    }
    constexpr std::size_t kBatch = kMatmulBatch;  // GEMV_BATCH in kGemvSource
    struct GemvTileBatch {
      const float* x[kBatch];
      const void* w[kBatch];
      float* y[kBatch];
      int K[kBatch];
      int N[kBatch];
      int rows[kBatch];
      int first_tile[kBatch];
      int tiles;
      int stages;
      int stage_bytes;
      int max_lanes;
      int thread_copies;
    } batch{};
    int tiles = 0;
    for (std::size_t i = 0; i < kBatch; ++i) {
      batch.first_tile[i] = std::numeric_limits<int>::max();
      if (i >= members.size()) continue;
      const MatmulSpec& spec = members[i].spec;
      batch.x[i] = static_cast<const float*>(ctx.slots[spec.a]);
      batch.w[i] = ctx.slots[spec.b];
      batch.y[i] = members[i].epilogue.empty() ? static_cast<float*>(ctx.slots[spec.out]) : nullptr;
      batch.K[i] = static_cast<int>(spec.K);
      batch.N[i] = static_cast<int>(spec.N);
      batch.rows[i] = tile_rows[i];
      batch.first_tile[i] = tiles;
      tiles += static_cast<int>((spec.N + tile_rows[i] - 1) / tile_rows[i]);
    }
    batch.tiles = tiles;
    batch.stages = stages;
    batch.stage_bytes = static_cast<int>(slot_bytes);
    batch.max_lanes = shape.max_lanes;
    batch.thread_copies = shape.thread_copies ? 1 : 0;
    // A block per `stages` tiles (each copied in at once), or, with a cap, fewer blocks that
    // walk theirs through the ring.
    auto blocks = static_cast<unsigned>((tiles + stages - 1) / stages);
    if (shape.per_sm > 0) blocks = std::min(blocks, configured->resident);
    if (shape.grid > 0) blocks = std::min(blocks, static_cast<unsigned>(shape.grid));
    LaunchArgs args;
    args.add(batch).add<long long>(ctx.T);
    for (const GemvMember& member : members) {
      for (std::size_t s : member.outs) args.add(ctx.slots[s]);
      for (std::size_t s : member.ins) args.add(ctx.slots[s]);
    }
    ctx.launch(*kernel, dim3(blocks), dim3(kThreads), args, ring_bytes);
  };
}

}  // namespace rwkvc::cuda
