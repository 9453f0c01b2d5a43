#include "backends/cuda/gemv_persistent.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps a block, as the other GEMVs
constexpr int kWarps = kThreads / 32;
// Blocks an SM when the occupancy calculator does not answer: what the batched GEMVs' registers allow.
constexpr int kFallbackBlocksPerSm = 2;

// The blocks the device holds at once for `kernel`, each SM full.
unsigned resident_blocks(const KernelHandle& kernel) {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) {
    (void)cudaGetLastError();
    sms = 132;  // an H100 SXM
  }
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, reinterpret_cast<const void*>(kernel.kernel),
                                                           kThreads, 0) != cudaSuccess ||
             per_sm <= 0) {
    (void)cudaGetLastError();
    per_sm = kFallbackBlocksPerSm;
  }
  return static_cast<unsigned>(sms * per_sm);
}

}  // namespace

bool gemv_persistent_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_GEMV_PERSISTENT");
  return value != nullptr && std::string(value) == "1";
}

bool gemv_persistent_takes(const std::vector<GemvMember>& members) {
  if (members.empty() || members.size() > kMatmulBatch) return false;
  return std::all_of(members.begin(), members.end(), [](const GemvMember& member) { return member.prologue.empty(); });
}

Step gemv_persistent_step(const std::vector<GemvMember>& members, Program& program) {
  program.module.include(kGemvSource);
  program.module.include(kGemvPersistentSource);
  std::string text =
      gemv_row_walker_entry(members, "GemvRowBatch", "gemv_walk_rows<" + device_type(members[0].spec.b_dtype) + ">");
  // Named by its text, so identical batches (every layer's) share one kernel.
  std::string name = fmt::format("gemv_walk_{:016x}", std::hash<std::string>{}(text));
  KernelHandle* kernel =
      program.module.kernel(name, fmt::format("extern \"C\" __global__ void GEMV_LAUNCH_BOUNDS {}{}", name, text));

  auto resident = std::make_shared<unsigned>(0);  // asked once, at the first launch
  const char* cap_text = std::getenv("RWKVC_CUDA_GEMV_PERSISTENT_GRID");
  unsigned cap = cap_text != nullptr && std::atoi(cap_text) > 0 ? static_cast<unsigned>(std::atoi(cap_text))
                                                                 : std::numeric_limits<unsigned>::max();
  return [members, kernel, resident, cap](RunContext& ctx) {
    if (!gemv_group_is_one_launch(members, ctx)) {
      for (const GemvMember& member : members) member.single(ctx);
      return;
    }
    constexpr std::size_t kBatch = kMatmulBatch;  // GEMV_BATCH in kGemvSource
    struct GemvRowBatch {
      const float* x[kBatch];
      const void* w[kBatch];
      float* y[kBatch];
      int K[kBatch];
      int N[kBatch];
      int first_row[kBatch];
      int rows;
    } batch{};
    int rows = 0;
    for (std::size_t i = 0; i < kBatch; ++i) {
      batch.first_row[i] = std::numeric_limits<int>::max();
      if (i >= members.size()) continue;
      const MatmulSpec& spec = members[i].spec;
      batch.x[i] = static_cast<const float*>(ctx.slots[spec.a]);
      batch.w[i] = ctx.slots[spec.b];
      batch.y[i] = members[i].epilogue.empty() ? static_cast<float*>(ctx.slots[spec.out]) : nullptr;
      batch.K[i] = static_cast<int>(spec.K);
      batch.N[i] = static_cast<int>(spec.N);
      batch.first_row[i] = rows;
      rows += static_cast<int>(spec.N);
    }
    batch.rows = rows;
    if (*resident == 0) *resident = resident_blocks(*kernel);
    unsigned needed = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
    LaunchArgs args;
    args.add(batch).add<long long>(ctx.T);
    for (const GemvMember& member : members) {
      for (std::size_t s : member.outs) args.add(ctx.slots[s]);
      for (std::size_t s : member.ins) args.add(ctx.slots[s]);
    }
    ctx.launch(*kernel, dim3(std::min({needed, *resident, cap})), dim3(kThreads), args);
  };
}

}  // namespace rwkvc::cuda
