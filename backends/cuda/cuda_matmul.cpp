#include "backends/cuda/cuda_matmul.h"

#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/gemv_persistent.h"
#include "backends/cuda/gemv_staged.h"
#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

constexpr int kGemvThreads = 256;  // 8 warps: 8 rows of W per block

// One entry point per (weight type, rows, vector loads): the row count is a template argument so
// the accumulators stay in registers.
KernelHandle* gemv_kernel(Program& program, DType dtype, std::int64_t rows, bool vec) {
  program.module.include(kGemvSource);
  std::string type = device_type(dtype);
  std::string name = fmt::format("gemv_{}_m{}_{}", type, rows, vec ? "vec" : "scalar");
  return program.module.kernel(
      name, fmt::format("extern \"C\" __global__ void __launch_bounds__({}) {}(const float* x, const {}* w, float* y, "
                        "int K, int N) {{\n  gemv_rows<{}, {}, {}>(x, w, y, K, N, StoreRow(), blockIdx.x);\n}}\n",
                        kGemvThreads, name, type, type, rows, vec ? "true" : "false"));
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

Step matmul_step(const MatmulSpec& spec, Program& program) {
  if (!spec.b_is_weight) {
    KernelHandle* plain = program.module.kernel("matmul_plain");
    return [spec, plain](RunContext& ctx) {
      std::int64_t rows = spec.a_shape.numel(ctx.T) / spec.K;
      LaunchArgs args;
      args.add(ctx.slots[spec.a]).add(ctx.slots[spec.b]).add(ctx.slots[spec.out]).add<long long>(rows)
          .add<int>(static_cast<int>(spec.N)).add<int>(static_cast<int>(spec.K)).add<int>(spec.transpose_b ? 1 : 0);
      ctx.launch_elements(*plain, rows * spec.N, args);
    };
  }

  std::vector<KernelHandle*> vec, scalar;  // by rows - 1
  for (std::int64_t rows = 1; rows <= kGemvMaxRows; ++rows) {
    vec.push_back(gemv_kernel(program, spec.b_dtype, rows, true));
    scalar.push_back(gemv_kernel(program, spec.b_dtype, rows, false));
  }
  // In long calls A may already be held in the weights' type (prefill_half.h), and so may the
  // product be wanted.
  auto long_call_type = [&](std::size_t slot) {
    return slot < program.long_call_dtype.size() ? program.long_call_dtype[slot] : DType::f32;
  };
  bool a_is_16bit = spec.b_dtype != DType::f32 && long_call_type(spec.a) == spec.b_dtype;
  bool out_is_16bit = spec.b_dtype != DType::f32 && long_call_type(spec.out) == spec.b_dtype;
  KernelHandle* convert = nullptr;
  if (spec.b_dtype != DType::f32 && !a_is_16bit) {
    convert = program.module.kernel(spec.b_dtype == DType::f16 ? "convert_to_f16" : "convert_to_bf16");
    program.staged.push_back(spec.a_shape);
  }
  program.uses_cublas = true;
  std::size_t staging = program.staging_slot;

  Step step = [spec, vec, scalar, convert, staging, out_is_16bit](RunContext& ctx) {
    std::int64_t rows = spec.a_shape.numel(ctx.T) / spec.K;
    auto* a = static_cast<const float*>(ctx.slots[spec.a]);
    auto* out = static_cast<float*>(ctx.slots[spec.out]);
    if (spec.logits && ctx.last_logits_only && rows > 1) {
      // Only the last position's logits are read: the head runs on that row alone.
      a += (rows - 1) * spec.K;
      out += (rows - 1) * spec.N;
      rows = 1;
    }
    const void* b = ctx.slots[spec.b];
    if (rows <= kGemvMaxRows) {
      std::int64_t per_vector = spec.b_dtype == DType::f32 ? 4 : 8;
      bool use_vec = spec.K % per_vector == 0 && aligned16(a) && aligned16(b);
      KernelHandle* kernel = (use_vec ? vec : scalar)[static_cast<std::size_t>(rows - 1)];
      LaunchArgs args;
      args.add(a).add(b).add(out).add<int>(static_cast<int>(spec.K)).add<int>(static_cast<int>(spec.N));
      unsigned blocks = static_cast<unsigned>((spec.N + kGemvThreads / 32 - 1) / (kGemvThreads / 32));
      ctx.launch(*kernel, dim3(blocks), dim3(kGemvThreads), args);
      return;
    }
    // Row-major out[M, N] = a[M, K] B[N, K]^T is, column-major, out^T = B a^T.
    const float one = 1.0f, zero = 0.0f;
    int m = static_cast<int>(spec.N), n = static_cast<int>(rows), k = static_cast<int>(spec.K);
    if (spec.b_dtype == DType::f32) {
      ctx.record(fmt::format("cublasSgemm {}x{}x{}", n, m, k), [&] {
        check(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, static_cast<const float*>(b), k, a, k,
                          &zero, out, m),
              "cublasSgemm");
      });
      return;
    }
    const void* a16 = a;  // already 16-bit when the producer stored it so
    if (convert != nullptr) {
      LaunchArgs args;
      args.add(a).add(ctx.slots[staging]).add<long long>(rows * spec.K);
      ctx.launch_elements(*convert, (rows * spec.K + 3) / 4, args);  // four elements a thread
      a16 = ctx.slots[staging];
    }
    cudaDataType type = spec.b_dtype == DType::f16 ? CUDA_R_16F : CUDA_R_16BF;
    cudaDataType out_type = out_is_16bit ? type : CUDA_R_32F;
    ctx.record(fmt::format("cublasGemmEx {}x{}x{}{}", n, m, k, out_is_16bit ? " (16-bit out)" : ""), [&] {
      check(cublasGemmEx(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, b, type, k, a16, type, k, &zero, out,
                         out_type, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    });
  };
  // Decode's head (the logits): one staged launch when its one row is the call's (gemv_staged.h).
  if (spec.logits && gemv_staged_head_enabled()) {
    std::vector<GemvMember> head(1);
    head[0].spec = spec;
    head[0].single = step;  // more rows, or unaligned operands
    if (gemv_staged_takes(head)) return gemv_staged_step(head, program);
  }
  return step;
}

namespace {
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}
}  // namespace

bool gemv_group_is_one_launch(const std::vector<GemvMember>& members, const RunContext& ctx) {
  for (const GemvMember& member : members) {
    const MatmulSpec& spec = member.spec;
    std::int64_t per_vector = spec.b_dtype == DType::f32 ? 4 : 8;
    if (spec.a_shape.numel(ctx.T) != spec.K || spec.K % per_vector != 0 || !aligned16(ctx.slots[spec.a]) ||
        !aligned16(ctx.slots[spec.b]))
      return false;
  }
  return true;
}

GemvMemberStore gemv_member_store(const GemvMember& member, std::size_t m) {
  if (member.epilogue.empty()) return {"", "StoreRow()"};
  GemvMemberStore out{"", member.epilogue + "_store{T"};
  for (std::size_t o = 0; o < member.outs.size(); ++o) {
    out.params += fmt::format(", float* m{}_out{}", m, o);
    out.store += fmt::format(", m{}_out{}", m, o);
  }
  for (std::size_t i = 0; i < member.ins.size(); ++i) {
    out.params += fmt::format(", const float* __restrict__ m{}_in{}", m, i);
    out.store += fmt::format(", m{}_in{}", m, i);
  }
  out.store += "}";
  return out;
}

std::string gemv_row_walker_entry(const std::vector<GemvMember>& members, const std::string& batch_type,
                                  const std::string& walker) {
  std::string params = batch_type + " batch, i64 T", stores;
  for (std::size_t m = 0; m < members.size(); ++m) {
    auto [store_params, store] = gemv_member_store(members[m], m);
    params += store_params;
    stores += fmt::format("    {}if (m == {}) {}(batch.y[{}], batch.N[{}], 0, n, v);\n", m == 0 ? "" : "else ", m, store,
                          m, m);
  }
  return fmt::format("({}) {{\n  (void)T;\n  auto store = [&](int m, int n, float v) {{\n{}  }};\n"
                     "  {}(batch, store);\n}}\n",
                     params, stores, walker);
}

Step gemv_group_step(const std::vector<GemvMember>& members, Program& program) {
  if (gemv_staged_enabled() && gemv_staged_takes(members)) return gemv_staged_step(members, program);
  if (gemv_persistent_enabled() && gemv_persistent_takes(members)) return gemv_persistent_step(members, program);
  if (members.size() == 1 && members[0].prologue.empty()) return members[0].single;
  program.module.include(kGemvSource);
  std::string type = device_type(members[0].spec.b_dtype);
  // The entry point: the batch, then T and each member's folded epilogue outputs and inputs and
  // its prologue's parameters.
  std::string params = "GemvBatch batch, i64 T", body;
  std::int64_t shared_floats = 0;
  for (std::size_t m = 0; m < members.size(); ++m) {
    const GemvMember& member = members[m];
    auto [store_params, store] = gemv_member_store(member, m);
    params += store_params;
    std::string call = fmt::format("gemv_rows<{}, 1, true>(batch.x[{}], reinterpret_cast<const {}*>(batch.w[{}]), "
                                   "batch.y[{}], batch.K[{}], batch.N[{}], {}",
                                   type, m, type, m, m, m, m, store);
    if (member.prologue.empty()) {
      body += fmt::format("  {}if (m == {}) {}, block);\n", m == 0 ? "" : "else ", m, call);
      continue;
    }
    // The x a prologue computes serves every row block this block works through.
    params += member.prologue_params;
    shared_floats = std::max(shared_floats, member.prologue_floats);
    body += fmt::format(
        "  {0}if (m == {1}) {{\n    bool x_ready = false;\n"
        "    auto prologue = [&](const float* x) -> const float* {{\n      if (x_ready) return gemv_x;\n"
        "      x_ready = true;\n{2}    }};\n"
        "    for (int r = 0; r < {3}; ++r) {4}, block * {3} + r, prologue);\n  }}\n",
        m == 0 ? "" : "else ", m, member.prologue, member.row_blocks, call);
  }
  std::string text = fmt::format("({}) {{\n  (void)T;\n{}  const int m = gemv_batch_member(batch);\n"
                                 "  const int block = (int)blockIdx.x - batch.first_block[m];\n{}}}\n",
                                 params, shared_floats > 0 ? "  extern __shared__ __align__(16) float gemv_x[];\n" : "",
                                 body);
  std::string name = fmt::format("gemv_group_{:016x}", fnv1a(text));
  KernelHandle* kernel = program.module.kernel(
      name, fmt::format("extern \"C\" __global__ void GEMV_LAUNCH_BOUNDS {}{}", name, text));

  auto shared_bytes = static_cast<std::size_t>(shared_floats) * sizeof(float);
  return [members, kernel, shared_bytes](RunContext& ctx) {
    constexpr std::size_t kBatch = kMatmulBatch;  // GEMV_BATCH in kGemvSource
    struct GemvBatch {
      const float* x[kBatch];
      const void* w[kBatch];
      float* y[kBatch];
      int K[kBatch];
      int N[kBatch];
      int first_block[kBatch];
    } batch{};
    unsigned blocks = 0;
    for (std::size_t i = 0; i < kBatch; ++i) {
      batch.first_block[i] = std::numeric_limits<int>::max();
      if (i >= members.size()) continue;
      const MatmulSpec& spec = members[i].spec;
      batch.x[i] = static_cast<const float*>(ctx.slots[spec.a]);
      batch.w[i] = ctx.slots[spec.b];
      batch.y[i] = members[i].epilogue.empty() ? static_cast<float*>(ctx.slots[spec.out]) : nullptr;
      batch.K[i] = static_cast<int>(spec.K);
      batch.N[i] = static_cast<int>(spec.N);
      batch.first_block[i] = static_cast<int>(blocks);
      std::int64_t row_blocks = (spec.N + kGemvThreads / 32 - 1) / (kGemvThreads / 32);
      blocks += static_cast<unsigned>((row_blocks + members[i].row_blocks - 1) / members[i].row_blocks);
    }
    if (!gemv_group_is_one_launch(members, ctx)) {
      for (const GemvMember& member : members) member.single(ctx);
      return;
    }
    LaunchArgs args;
    args.add(batch).add<long long>(ctx.T);
    for (const GemvMember& member : members) {
      for (std::size_t s : member.outs) args.add(ctx.slots[s]);
      for (std::size_t s : member.ins) args.add(ctx.slots[s]);
      for (std::size_t s : member.prologue_slots) args.add(ctx.slots[s]);
    }
    ctx.launch(*kernel, dim3(blocks), dim3(kGemvThreads), args, shared_bytes);
  };
}

}  // namespace rwkvc::cuda
