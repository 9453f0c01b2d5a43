#include "backends/cuda/prefill_epilogues.h"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <cublasLt.h>
#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_matmul.h"

namespace rwkvc::cuda {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// One handle a device for the process: cuBLASLt handles carry no stream and are thread-safe.
cublasLtHandle_t lt_handle() {
  static std::mutex mutex;
  static std::map<int, cublasLtHandle_t> handles;
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard lock(mutex);
  cublasLtHandle_t& handle = handles[device];
  if (handle == nullptr) check(cublasLtCreate(&handle), "cublasLtCreate");
  return handle;
}

// The largest power of two up to 256 that divides the address (cuBLASLt's alignment preferences).
std::uint32_t alignment(const void* p) {
  auto address = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t bytes = 256;
  while (bytes > 1 && address % bytes != 0) bytes /= 2;
  return bytes;
}

// The descriptors and the algorithm of one row count and alignment: out^T[N, rows] (column-major)
// = W[N, K] a^T + x^T, i.e. D = op(A) B + C with A the weights (transposed), B the activations.
class LtPlan {
 public:
  LtPlan(cudaDataType ab_type, std::int64_t N, std::int64_t rows, std::int64_t K, std::uint32_t align_a,
         std::uint32_t align_b, std::uint32_t align_c, std::uint32_t align_d) {
    check(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
    check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)),
          "cublasLtMatmulDescSetAttribute(TRANSA)");
    check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)),
          "cublasLtMatmulDescSetAttribute(TRANSB)");
    auto u64 = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
    check(cublasLtMatrixLayoutCreate(&a_, ab_type, u64(K), u64(N), K), "cublasLtMatrixLayoutCreate(A)");
    check(cublasLtMatrixLayoutCreate(&b_, ab_type, u64(K), u64(rows), K), "cublasLtMatrixLayoutCreate(B)");
    check(cublasLtMatrixLayoutCreate(&c_, CUDA_R_32F, u64(N), u64(rows), N), "cublasLtMatrixLayoutCreate(C)");
    cublasLtMatmulPreference_t preference = nullptr;
    check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
    std::uint64_t workspace = kLtWorkspaceBytes;
    auto prefer = [&](cublasLtMatmulPreferenceAttributes_t attribute, const void* value, std::size_t bytes) {
      check(cublasLtMatmulPreferenceSetAttribute(preference, attribute, value, bytes), "cublasLtMatmulPreferenceSetAttribute");
    };
    prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
    prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a));
    prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b));
    prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c));
    prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d, sizeof(align_d));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(lt_handle(), desc_, a_, b_, c_, c_, preference, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(preference);
    if (status == CUBLAS_STATUS_SUCCESS && found > 0) algo_ = result.algo;
  }
  ~LtPlan() {
    cublasLtMatrixLayoutDestroy(c_);
    cublasLtMatrixLayoutDestroy(b_);
    cublasLtMatrixLayoutDestroy(a_);
    cublasLtMatmulDescDestroy(desc_);
  }
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;

  bool usable() const { return algo_.has_value(); }

  void run(cudaStream_t stream, const void* w, const void* a16, const float* x, float* y, void* workspace) const {
    const float one = 1.0f;  // alpha and beta: y = a W^T + x
    check(cublasLtMatmul(lt_handle(), desc_, &one, w, a_, a16, b_, &one, x, c_, y, c_, &*algo_, workspace,
                         kLtWorkspaceBytes, stream),
          "cublasLtMatmul");
  }

 private:
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  std::optional<cublasLtMatmulAlgo_t> algo_;
};

// Plans by (rows, alignments), made on a call's first use (an eager call: a prefill graph is
// captured only for a length seen before) and shared by the step's copies.
struct LtPlans {
  std::mutex mutex;
  std::map<std::uint64_t, std::unique_ptr<LtPlan>> by_key;
};

}  // namespace

bool gemm_epilogues_enabled() {
  // On by default since session 6 (1.5B: prefill 512 +5.3%, 4096 +3.1%); "0" turns it off.
  const char* value = std::getenv("RWKVC_CUDA_GEMM_EPILOGUES");
  return value == nullptr || std::string(value) != "0";
}

std::optional<ResidualEpilogue> match_residual_epilogue(const Op& op, const std::vector<bool>& is_weight) {
  if (op.kind != OpKind::region || op.region->kind != "matmul_epilogue") return std::nullopt;
  const Region& body = *op.region;
  if (body.ops.size() != 2 || body.yields.size() != 1) return std::nullopt;
  const Op& matmul = body.ops[0];
  const Op& add = body.ops[1];
  if (matmul.kind != OpKind::matmul || add.kind != OpKind::add || add.results[0] != body.yields[0]) return std::nullopt;
  ValueId a = matmul.operands[0], w = matmul.operands[1], product = matmul.results[0];
  if (at(a) >= body.arguments || at(w) >= body.arguments || !is_weight[at(op.operands[at(w)])]) return std::nullopt;
  // The product plus an argument, in either order (an f32 add commutes exactly).
  ValueId residual = add.operands[0] == product ? add.operands[1] : add.operands[0];
  if ((add.operands[0] != product && add.operands[1] != product) || residual == product || at(residual) >= body.arguments)
    return std::nullopt;
  const TensorType& a_type = body.values[at(a)];
  const TensorType& sum = body.values[at(add.results[0])];
  const TensorType& x = body.values[at(residual)];
  if (a_type.shape.rank() != 2 || a_type.shape[0] != kSeq || a_type.shape[1] == kSeq) return std::nullopt;
  if (x.dtype != DType::f32 || sum.dtype != DType::f32 || x.shape != sum.shape ||
      sum.shape != body.values[at(product)].shape)
    return std::nullopt;
  return ResidualEpilogue{at(a), at(w), at(residual)};
}

std::optional<Step> residual_gemm_step(const Op& op, const std::vector<bool>& is_weight, Step fallback,
                                       Program& program) {
  if (!gemm_epilogues_enabled()) return std::nullopt;
  std::optional<ResidualEpilogue> form = match_residual_epilogue(op, is_weight);
  if (!form) return std::nullopt;
  const Region& body = *op.region;
  std::size_t a = at(op.operands[form->a]), w = at(op.operands[form->weight]);
  std::size_t x = at(op.operands[form->residual]), y = at(op.results[0]);
  auto long_call_type = [&](std::size_t slot) {
    return slot < program.long_call_dtype.size() ? program.long_call_dtype[slot] : DType::f32;
  };
  if (long_call_type(y) != DType::f32 || long_call_type(x) != DType::f32) return std::nullopt;

  DType w_type = body.values[form->weight].dtype;
  Shape a_shape = body.values[form->a].shape;
  std::int64_t K = a_shape.back(), N = body.values[at(body.yields[0])].shape.back();
  bool a_is_16bit = w_type != DType::f32 && long_call_type(a) == w_type;
  KernelHandle* convert = nullptr;
  if (w_type != DType::f32 && !a_is_16bit) {
    convert = program.module.kernel(w_type == DType::f16 ? "convert_to_f16" : "convert_to_bf16");
    program.staged.push_back(a_shape);
  }
  program.uses_cublas = true;
  std::size_t staging = program.staging_slot;
  std::size_t workspace =
      program.reserved_scratch(kLtWorkspaceName, Shape{static_cast<Dim>(kLtWorkspaceBytes / sizeof(float))});
  cudaDataType ab_type = w_type == DType::f32 ? CUDA_R_32F : w_type == DType::f16 ? CUDA_R_16F : CUDA_R_16BF;
  auto plans = std::make_shared<LtPlans>();

  return [=](RunContext& ctx) {
    std::int64_t rows = a_shape.numel(ctx.T) / K;
    const void* a16 = ctx.slots[a];
    const void* weights = ctx.slots[w];
    const auto* residual = static_cast<const float*>(ctx.slots[x]);
    auto* out = static_cast<float*>(ctx.slots[y]);
    if (convert != nullptr) a16 = ctx.slots[staging];
    std::uint32_t aligns[4] = {alignment(weights), alignment(a16), alignment(residual), alignment(out)};
    const LtPlan* plan = nullptr;
    if (aligns[0] >= 16 && aligns[1] >= 16 && aligns[2] >= 16 && aligns[3] >= 16) {
      std::uint64_t key = static_cast<std::uint64_t>(rows) << 32;
      for (int i = 0; i < 4; ++i) key |= static_cast<std::uint64_t>(aligns[i] / 16) << (8 * i);
      std::lock_guard lock(plans->mutex);
      std::unique_ptr<LtPlan>& slot = plans->by_key[key];
      if (!slot) slot = std::make_unique<LtPlan>(ab_type, N, rows, K, aligns[0], aligns[1], aligns[2], aligns[3]);
      if (slot->usable()) plan = slot.get();
    }
    if (plan == nullptr) return fallback(ctx);
    if (convert != nullptr) {
      LaunchArgs args;
      args.add(ctx.slots[a]).add(ctx.slots[staging]).add<long long>(rows * K);
      ctx.launch_elements(*convert, (rows * K + 3) / 4, args);  // four elements a thread
    }
    ctx.record(fmt::format("cublasLtMatmul {}x{}x{} (+ residual)", rows, N, K),
               [&] { plan->run(ctx.stream, weights, a16, residual, out, ctx.slots[workspace]); });
  };
}

}  // namespace rwkvc::cuda
