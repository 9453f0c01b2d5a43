#include "backends/vulkan/decode_group_norm_fold.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "backends/vulkan/shaders/gemv_group_norm.h"
#include "backends/vulkan/wkv_region.h"

namespace rwkvc::vulkan {

namespace {

bool runs_one_token(const Step& step) { return !step.runs || step.runs({1, true}) || step.runs({1, false}); }

std::function<bool(const CallShape&)> only(std::function<bool(const CallShape&)> runs, bool one) {
  return [runs, one](const CallShape& call) { return (call.tokens == 1) == one && (!runs || runs(call)); };
}

// The only step of one-token calls that reads `buffer`, when it is a row GEMV taking it as its
// whole input row ([K = width]); else nothing.
std::optional<std::size_t> only_gemv_reader(const Program& program, std::size_t writer, const BufferRef& buffer,
                                            std::int64_t width) {
  std::optional<std::size_t> found;
  for (std::size_t s = 0; s < program.steps.size(); ++s) {
    const Step& step = program.steps[s];
    if (s == writer || !runs_one_token(step)) continue;
    auto reads_end = step.bindings.end() - static_cast<std::ptrdiff_t>(step.writes);
    auto count = std::count(step.bindings.begin(), reads_end, buffer);
    if (count == 0) continue;
    if (found || count != 1 || !step.row_gemv || !step.row_gemv->shape.transpose_b || step.row_gemv->k != width ||
        step.bindings[0] != buffer || step.writes != 1)
      return std::nullopt;
    found = s;
  }
  return found;
}

}  // namespace

void fold_group_norm_into_outputs(Program& program, PipelineStore& pipelines,
                                  const std::vector<std::pair<std::size_t, std::map<std::size_t, LoraUp>>>& wkv_steps) {
  std::vector<Step>& steps = program.steps;
  std::vector<std::vector<Step>> before(steps.size());
  bool folded = false;
  for (const auto& [index, ups] : wkv_steps) {
    Step& wkv = steps[index];
    if (!wkv.wkv) continue;
    std::optional<WkvGroupNormSplit> split = group_norm_split(*wkv.wkv, ups);
    if (!split) continue;
    const DeviceFeatures& features = *split->features;
    std::int64_t width = split->heads * split->n;
    std::size_t first_result = wkv.bindings.size() - wkv.writes;
    BufferRef gated = wkv.bindings[first_result + split->gated];
    std::optional<std::size_t> reader = only_gemv_reader(program, index, gated, width);
    if (!reader || !gemv_norm_mix_fits(features, width)) continue;
    const Step& gemv = steps[*reader];
    const RowGemvForm form = *gemv.row_gemv;

    // The three [C] vectors between the two kernels.
    std::vector<BufferRef> parts;
    for (int k = 0; k < 3; ++k) {
      parts.push_back({BufferRef::Kind::activation, static_cast<std::uint32_t>(program.activations.size())});
      program.activations.push_back({{TensorType{DType::f32, Shape{width}}}});
    }
    std::vector<BufferRef> wkv_bindings(wkv.bindings.begin(),
                                        wkv.bindings.begin() + static_cast<std::ptrdiff_t>(first_result + split->gated));
    wkv_bindings.insert(wkv_bindings.end(), parts.begin(), parts.end());
    wkv_bindings.insert(wkv_bindings.end(), wkv.bindings.begin() + static_cast<std::ptrdiff_t>(first_result + split->gated + 1),
                        wkv.bindings.end());
    const Pipeline* wkv_pipeline = &pipelines.get(split->source);
    std::uint32_t workgroups = split->workgroups;
    Step one_token_wkv{wkv_bindings, wkv.writes + 2,
                       [wkv_pipeline, workgroups](const CallShape& call) {
                         return Launch{wkv_pipeline, {workgroups, 1, 1}, {static_cast<std::uint32_t>(call.tokens)}};
                       },
                       only(wkv.runs, true)};

    std::vector<BufferRef> gemv_bindings = parts;
    gemv_bindings.push_back(wkv.bindings[split->weight_input]);
    gemv_bindings.push_back(wkv.bindings[split->bias_input]);
    gemv_bindings.insert(gemv_bindings.end(), gemv.bindings.begin() + 1, gemv.bindings.end());  // B, epilogue inputs, out
    const Pipeline* pipeline = &pipelines.get(gemv_group_norm_kernel(
        features, form.shape, form.epilogue, {split->heads, split->n, split->eps, split->weight_dtype}));
    auto n = static_cast<std::uint32_t>(form.n), k = static_cast<std::uint32_t>(form.k);
    std::uint32_t rows = gemv_norm_mix_rows(features, form.n);
    std::uint32_t groups = std::min<std::uint32_t>((n + rows - 1) / rows, features.max_workgroup_count_x);
    Step one_token_gemv{gemv_bindings, 1,
                        [pipeline, n, k, rows, groups](const CallShape&) {
                          return Launch{pipeline, {groups, 1, 1}, {1u, n, k, 0u, 1u, rows}};
                        },
                        only(gemv.runs, true)};

    wkv.runs = only(wkv.runs, false);
    steps[*reader].runs = only(steps[*reader].runs, false);
    before[index].push_back(std::move(one_token_wkv));
    before[*reader].push_back(std::move(one_token_gemv));
    folded = true;
  }
  if (!folded) return;
  std::vector<Step> rewritten;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    for (Step& step : before[s]) rewritten.push_back(std::move(step));
    rewritten.push_back(std::move(steps[s]));
  }
  steps = std::move(rewritten);
}

}  // namespace rwkvc::vulkan
