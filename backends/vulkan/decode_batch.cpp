#include "backends/vulkan/decode_batch.h"

#include <algorithm>

#include "backends/vulkan/shaders/gemv_batch.h"

namespace rwkvc::vulkan {

namespace {

// Whether a step at or after `from` writes `ref`.
bool written_from(const std::vector<Step>& steps, std::size_t from, const BufferRef& ref) {
  for (std::size_t s = from; s < steps.size(); ++s)
    if (std::find(steps[s].bindings.end() - static_cast<std::ptrdiff_t>(steps[s].writes), steps[s].bindings.end(), ref) !=
        steps[s].bindings.end())
      return true;
  return false;
}

bool one_token(const CallShape& call) { return call.tokens == 1; }

}  // namespace

std::vector<Step> batched_folded_gemvs(const Program& program, std::size_t mix_index, const std::vector<MixReader>& readers,
                                       PipelineStore& pipelines, const DeviceFeatures& features) {
  const std::vector<Step>& steps = program.steps;
  const Step& mix = steps[mix_index];
  const NormMixShape& shape = mix.norm_mix->folded;
  if (readers.size() < 2 || !gemv_norm_mix_fits(features, shape.width)) return {};
  std::size_t first_reader = steps.size();
  for (const MixReader& reader : readers) first_reader = std::min(first_reader, reader.step);

  std::vector<GemvBatchMember> members;
  for (const MixReader& reader : readers) {
    const Step& gemv = steps[reader.step];
    if (gemv.runs || gemv.row_gemv->shape.wide != steps[readers.front().step].row_gemv->shape.wide) return {};
    // The batch runs where the first reader did: what the others' epilogues read must be there.
    for (auto input = gemv.bindings.begin() + 2; input != gemv.bindings.end() - 1; ++input)
      if (input->kind == BufferRef::Kind::activation && written_from(steps, first_reader, *input)) return {};
    auto n = static_cast<std::uint32_t>(gemv.row_gemv->n);
    std::uint32_t rows = gemv_norm_mix_rows(features, n);
    members.push_back({gemv.row_gemv->shape, gemv.row_gemv->epilogue, reader.output, n, rows,
                       std::min<std::uint32_t>((n + rows - 1) / rows, features.max_workgroup_count_x)});
  }

  // Members in order into batches that the device can bind and launch; the first batch also
  // writes the mix's [C] outputs (the new shift state).
  std::size_t first_output = mix.bindings.size() - mix.writes;
  std::vector<BufferRef> inputs(mix.bindings.begin(), mix.bindings.begin() + static_cast<std::ptrdiff_t>(first_output));
  std::vector<BufferRef> last_rows;
  for (std::size_t k = 0; k < shape.outputs.size(); ++k)
    if (!shape.per_row[k]) last_rows.push_back(mix.bindings[first_output + k]);
  auto fits = [&](const std::vector<GemvBatchMember>& batch, bool stores_last_rows) {
    std::uint64_t groups = 0;
    for (const GemvBatchMember& member : batch) groups += member.groups;
    return gemv_norm_mix_batch_bindings(shape, batch, stores_last_rows) <= features.max_storage_buffers &&
           groups <= features.max_workgroup_count_x;
  };
  std::vector<std::pair<std::size_t, std::size_t>> batches;  // [begin, end) of members
  for (std::size_t m = 0; m < members.size(); ++m) {
    if (!batches.empty()) {
      std::vector<GemvBatchMember> grown(members.begin() + static_cast<std::ptrdiff_t>(batches.back().first),
                                         members.begin() + static_cast<std::ptrdiff_t>(m + 1));
      if (fits(grown, batches.size() == 1 && !last_rows.empty())) {
        batches.back().second = m + 1;
        continue;
      }
    }
    if (!fits({members[m]}, batches.empty() && !last_rows.empty())) return {};
    batches.emplace_back(m, m + 1);
  }

  bool prefetch = gemv_batch_prefetch();
  std::vector<Step> batched;
  for (const auto& [begin, end] : batches) {
    bool stores_last_rows = batched.empty() && !last_rows.empty();
    std::vector<GemvBatchMember> batch(members.begin() + static_cast<std::ptrdiff_t>(begin),
                                       members.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<BufferRef> bindings = inputs;
    std::uint32_t groups = 0;
    for (std::size_t m = begin; m < end; ++m) {
      const std::vector<BufferRef>& reader = steps[readers[m].step].bindings;
      bindings.insert(bindings.end(), reader.begin() + 1, reader.end() - 1);  // B, the epilogue's inputs
      groups += members[m].groups;
    }
    for (std::size_t m = begin; m < end; ++m) bindings.push_back(steps[readers[m].step].bindings.back());  // out
    std::size_t writes = end - begin;
    if (stores_last_rows) {
      bindings.insert(bindings.end(), last_rows.begin(), last_rows.end());
      writes += last_rows.size();
    }
    const Pipeline* pipeline = &pipelines.get(
        gemv_norm_mix_batch_kernel(features, shape, mix.norm_mix->uses_softplus, batch, stores_last_rows, prefetch));
    batched.push_back({bindings, writes, [pipeline, groups](const CallShape&) {
                         return Launch{pipeline, {groups, 1, 1}, {1u}};
                       },
                       one_token});
  }
  return batched;
}

}  // namespace rwkvc::vulkan
