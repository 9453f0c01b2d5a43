#include "backends/cuda/prefill_wkv_region.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/cuda_wkv7_prompt.h"
#include "backends/cuda/fused_codegen.h"
#include "backends/cuda/prefill_wkv_prepare.h"
#include "backends/cuda/wkv_region_form.h"

namespace rwkvc::cuda {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

bool enabled() {
  const char* value = std::getenv("RWKVC_CUDA_WKV_HEAD_BLOCKS");
  return value == nullptr || std::string(value) != "0";
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

std::string pointer_type(DType type) { return type == DType::f32 ? "float*" : type == DType::f16 ? "f16*" : "bf16*"; }

// One generated kernel over [T, H * N] with a block of N threads per (token, head): the block's
// head sums first (the prologue), then one channel a thread.
struct HeadKernel {
  KernelHandle* kernel = nullptr;
  std::vector<std::size_t> slots;  // outputs, then inputs
  std::vector<ValueId> inputs;
};

void launch(RunContext& ctx, const HeadKernel& k, Dim H, Dim N) {
  LaunchArgs args;
  args.add<long long>(ctx.T);
  for (std::size_t s : k.slots) args.add(ctx.slots[s]);
  ctx.launch(*k.kernel, dim3(static_cast<unsigned>(ctx.T * H)), dim3(static_cast<unsigned>(N)), args);
}

HeadKernel head_kernel(Program& program, const CodegenScope& scope, const std::vector<ValueId>& outputs,
                       const std::vector<bool>& ready, Dim H, Dim N,
                       const std::vector<std::optional<std::size_t>>& slot) {
  Shape domain{kSeq, H * N};
  ElementCode code = generate_element_code(scope, outputs, ready, domain, "", HeadBlock{H, N, "h", "d0"});
  std::string params = "i64 T";
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    auto id = at(outputs[o]);
    DType type = id < scope.store_as.size() ? scope.store_as[id] : DType::f32;
    params += fmt::format(", {} out{}", pointer_type(type), o);
  }
  for (std::size_t i = 0; i < code.inputs.size(); ++i) params += fmt::format(", const float* __restrict__ in{}", i);
  std::string text = fmt::format(
      "({0}) {{\n  (void)T;\n  kernel_entry();\n  const i64 d0 = blockIdx.x / {1};\n  const int h = (int)(blockIdx.x % {1});\n"
      "{3}  for (int c = threadIdx.x; c < {2}; c += blockDim.x) {{\n    const i64 d1 = (i64)h * {2} + c;\n{4}  }}\n}}\n",
      params, H, N, code.prologue, code.body);
  std::string name = fmt::format("wkv_heads_{:016x}", fnv1a(text));
  HeadKernel out;
  out.kernel = program.module.kernel(name, fmt::format("extern \"C\" __global__ void __launch_bounds__(1024) {}{}", name, text));
  for (ValueId id : outputs) out.slots.push_back(*slot[at(id)]);
  for (ValueId id : code.inputs) out.slots.push_back(*slot[at(id)]);
  out.inputs = code.inputs;
  return out;
}

}  // namespace

std::optional<Step> wkv7_long_call_step(const Op& op, Program& program) {
  if (!enabled()) return std::nullopt;
  std::optional<HeadwiseWkv7> form = match_headwise_wkv7(op);
  if (!form) return std::nullopt;
  const Region& body = *op.region;
  std::span<const TensorType> types = body.values;
  const Op* wkv = form->wkv;
  Dim H = form->heads, N = form->size;
  Shape domain{kSeq, H * N};

  // Slots: arguments in the operands', yields in the results', the recurrence's operands and
  // results in scratch otherwise (this form's scratch; the region's other forms run instead).
  std::vector<std::optional<std::size_t>> slot(types.size());
  for (std::size_t i = 0; i < body.arguments; ++i) slot[i] = at(op.operands[i]);
  std::vector<ValueId> after, yielded;
  CodegenScope scope{types, std::vector<const Op*>(types.size(), nullptr)};
  for (std::size_t p = 0; p < body.yields.size(); ++p) {
    ValueId y = body.yields[p];
    if (slot[at(y)]) return std::nullopt;  // an argument or a value yielded twice: a copy
    slot[at(y)] = at(op.results[p]);
    yielded.push_back(y);
    if (y == wkv->results[0] || y == wkv->results[1]) continue;
    if (types[at(y)].shape != domain) return std::nullopt;
    after.push_back(y);
    std::size_t result = at(op.results[p]);
    if (result < program.long_call_dtype.size() && program.long_call_dtype[result] != DType::f32) {
      scope.store_as.resize(types.size(), DType::f32);
      scope.store_as[at(y)] = program.long_call_dtype[result];
    }
  }
  std::size_t scratch_used = 0;
  auto place = [&](ValueId id) {
    if (!slot[at(id)]) slot[at(id)] = program.region_scratch(scratch_used, types[at(id)].shape);
  };
  std::vector<ValueId> before;
  for (std::size_t i = 0; i < 6; ++i) {
    ValueId id = wkv->operands[i];
    if (at(id) >= body.arguments && std::find(before.begin(), before.end(), id) == before.end()) before.push_back(id);
    place(id);
  }
  for (ValueId id : wkv->results) place(id);

  for (const Op& inner : body.ops)
    for (ValueId id : inner.results) scope.producer[at(id)] = &inner;
  std::vector<bool> ready(types.size(), false);
  for (std::size_t i = 0; i < body.arguments; ++i) ready[i] = true;
  std::optional<HeadKernel> pre, post;
  if (!before.empty()) pre = head_kernel(program, scope, before, ready, H, N, slot);
  for (ValueId id : before) ready[at(id)] = true;
  for (ValueId id : wkv->results) ready[at(id)] = true;
  if (!after.empty()) post = head_kernel(program, scope, after, ready, H, N, slot);

  // Calls that take the split chunked kernels may compute the pre-ops and the chunk records in
  // one kernel (prefill_wkv_prepare.h); of the pre-ops' values it stores only v (the row
  // kernel's input) and what the post-ops read or the region yields.
  Wkv7OperandsStep operands_step;
  if (fused_prepare_enabled()) {
    std::vector<ValueId> stored;
    for (ValueId id : before) {
      auto read_after = [&](const std::vector<ValueId>& ids) { return std::find(ids.begin(), ids.end(), id) != ids.end(); };
      if (id == wkv->operands[3] || (post && read_after(post->inputs)) || read_after(yielded)) stored.push_back(id);
    }
    std::vector<bool> arguments(types.size(), false);
    for (std::size_t i = 0; i < body.arguments; ++i) arguments[i] = true;
    if (std::optional<Wkv7RecordsWriter> writer = fused_prepare(program, scope, *wkv, H, N, stored, arguments, slot))
      operands_step = [pre, writer = *writer, H, N](RunContext& ctx, void* full, void* tail) {
        if (full != nullptr)
          writer(ctx, full, tail);
        else if (pre)
          launch(ctx, *pre, H, N);
      };
  }

  std::vector<std::size_t> operands, results;
  for (ValueId id : wkv->operands) operands.push_back(*slot[at(id)]);
  for (ValueId id : wkv->results) results.push_back(*slot[at(id)]);
  Step recurrence = wkv7_any_length_step(program, operands, results, types[at(wkv->operands[0])].shape,
                                           types[at(wkv->operands[6])].shape, operands_step);

  return [pre, post, recurrence, operands_step, H, N](RunContext& ctx) {
    if (pre && !operands_step) launch(ctx, *pre, H, N);  // else the recurrence's step runs it
    recurrence(ctx);
    if (post) launch(ctx, *post, H, N);
  };
}

}  // namespace rwkvc::cuda
