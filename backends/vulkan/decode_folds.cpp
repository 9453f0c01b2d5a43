#include "backends/vulkan/decode_folds.h"

#include "backends/vulkan/decode_batch.h"
#include "backends/vulkan/decode_group_norm_fold.h"
#include "backends/vulkan/wkv_region.h"

#include <algorithm>
#include <map>
#include <optional>
#include <cstdlib>
#include <string_view>

namespace rwkvc::vulkan {

namespace {

// The folds run by default. Measured on the H100 (bench/results/h100-vulkan, run 3): the mix
// fold takes 1.5B decode from 2.515 to 2.485 ms a token, and with the ups fold 0.1B from 0.847
// to 0.773 ms and 0.4B from 1.724 to 1.577; but added to the mix fold, the ups fold costs
// 1.5B 0.126 ms (the wkv kernel, one workgroup per head and on the critical path, then reads
// 512 up columns per channel). Since the wkv kernel splits each state row over 4 invocations
// (session 5), the ups fold gains at 1.5B too: 2.036 -> 1.897 ms a token (session 6), so both
// are on. The batch (a mix's folded GEMVs in one dispatch): 1.895 -> 1.841 ms, 268 -> 125
// kernels a token (session 6, H100; with each subgroup's weights loaded before the norm,
// batch_prefetch=1, 1.938 ms: slower).
constexpr std::string_view kDefaultFolds = "norm_mix,lora_up,batch";

// Products that widen a vector of at most this many elements are folded into the wkv kernel:
// each invocation reads its channel's row of the up matrix (a LoRA rank, not a projection).
constexpr std::int64_t kMaxFoldedRank = 256;

// RWKVC_VULKAN_FOLDS: the folds to run, comma-separated ("norm_mix", "lora_up", "chain" (with
// norm_mix: a folded GEMV runs its only reader GEMV's share too), "batch" (with norm_mix: a
// mix's folded GEMVs in one dispatch), "group_norm" (decode_group_norm_fold.h; not timed yet);
// "none"), by default kDefaultFolds.
bool fold_enabled(std::string_view fold) {
  const char* chosen = std::getenv("RWKVC_VULKAN_FOLDS");
  std::string_view list = chosen != nullptr ? std::string_view(chosen) : kDefaultFolds;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    if (list.substr(0, comma) == fold) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

std::vector<BufferRef> reads_of(const Step& step) {
  return {step.bindings.begin(), step.bindings.end() - static_cast<std::ptrdiff_t>(step.writes)};
}

bool contains(const std::vector<BufferRef>& refs, const BufferRef& ref) {
  return std::find(refs.begin(), refs.end(), ref) != refs.end();
}

// `runs` restricted to calls that `also` accepts.
std::function<bool(const CallShape&)> narrowed(std::function<bool(const CallShape&)> runs,
                                               std::function<bool(const CallShape&)> also) {
  if (!runs) return also;
  return [runs, also](const CallShape& call) { return also(call) && runs(call); };
}

bool one_token(const CallShape& call) { return call.tokens == 1; }
bool several_tokens(const CallShape& call) { return call.tokens != 1; }

// The row GEMV that is the only reader of `product` (N = n values), taking it as its whole
// input row and reading it nowhere else, with a graph weight (one the executable can upload
// transposed): the second product a folded GEMV can chain into; else nothing.
std::optional<std::size_t> chain_target(const Program& program, std::size_t writer, const BufferRef& product,
                                        std::int64_t n) {
  const std::vector<Step>& steps = program.steps;
  std::optional<std::size_t> found;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    if (s == writer) continue;
    std::vector<BufferRef> reads = reads_of(steps[s]);
    if (!contains(reads, product)) continue;
    const Step& second = steps[s];
    if (found || !second.row_gemv || second.row_gemv->k != n || second.bindings[0] != product ||
        std::count(reads.begin(), reads.end(), product) != 1 || second.writes != 1 ||
        second.bindings[1].kind != BufferRef::Kind::weight || second.bindings[1].index >= program.graph_weights)
      return std::nullopt;
    found = s;
  }
  return found;
}

// A step that runs instead of another for one-token calls, placed before `before`.
struct Replacement {
  std::size_t before;
  Step step;
};

// The readers of the mix at `mix_index`'s outputs, or none when one of its per-row outputs has
// a reader that is not a row GEMV taking it as its whole input row (or the device cannot fold).
std::vector<MixReader> mix_readers(const Program& program, std::size_t mix_index, const DeviceFeatures& features) {
  const std::vector<Step>& steps = program.steps;
  const Step& mix = steps[mix_index];
  const NormMixShape& shape = mix.norm_mix->folded;
  if (!gemv_norm_mix_fits(features, shape.width) || mix.writes != shape.outputs.size()) return {};
  std::size_t first_output = mix.bindings.size() - mix.writes;
  std::vector<BufferRef> inputs(mix.bindings.begin(), mix.bindings.begin() + static_cast<std::ptrdiff_t>(first_output));
  std::vector<MixReader> readers;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    if (s == mix_index) continue;
    std::vector<BufferRef> reads = reads_of(steps[s]);
    for (std::size_t k = 0; k < shape.outputs.size(); ++k) {
      const BufferRef& output = mix.bindings[first_output + k];
      if (!contains(reads, output)) continue;
      const Step& reader = steps[s];
      if (!shape.per_row[k] || !reader.row_gemv || reader.row_gemv->k != shape.width || reader.bindings[0] != output ||
          std::count(reads.begin(), reads.end(), output) != 1 || reader.writes != 1 ||
          contains(inputs, reader.bindings.back()))
        return {};
      readers.push_back({s, k});
    }
  }
  return readers;
}

// The folded steps for the mix at `mix_index`, one per reader (mix_readers). With `chain`, a
// folded GEMV whose product only another row GEMV reads (the FFN key, then value) also runs
// that second product's share of its rows (gemv_norm_mix_kernel's chain), and `sums` gets the
// step that adds the partials up in place of the second GEMV.
std::vector<Step> folded_steps(Program& program, std::size_t mix_index, const std::vector<MixReader>& readers,
                               PipelineStore& pipelines, const DeviceFeatures& features, bool chain,
                               std::vector<Replacement>& sums) {
  std::vector<Step>& steps = program.steps;
  const Step& mix = steps[mix_index];
  const NormMixShape& shape = mix.norm_mix->folded;
  std::size_t first_output = mix.bindings.size() - mix.writes;
  std::vector<BufferRef> inputs(mix.bindings.begin(), mix.bindings.begin() + static_cast<std::ptrdiff_t>(first_output));

  std::vector<BufferRef> last_rows;
  for (std::size_t k = 0; k < shape.outputs.size(); ++k)
    if (!shape.per_row[k]) last_rows.push_back(mix.bindings[first_output + k]);
  std::vector<Step> folded;
  for (std::size_t r = 0; r < readers.size(); ++r) {
    std::size_t reader_index = readers[r].step;
    const RowGemvForm gemv = *steps[reader_index].row_gemv;
    std::vector<BufferRef> reader_bindings = steps[reader_index].bindings;
    std::function<bool(const CallShape&)> reader_runs = steps[reader_index].runs;
    bool stores_last_rows = r == 0 && !last_rows.empty();
    auto n = static_cast<std::uint32_t>(gemv.n), k = static_cast<std::uint32_t>(gemv.k);
    std::uint32_t rows = gemv_norm_mix_rows(features, gemv.n);
    std::uint32_t groups = std::min<std::uint32_t>((n + rows - 1) / rows, features.max_workgroup_count_x);

    // Only a widening product chains (the FFN key: C -> F, then back): its rows' values are
    // the larger intermediate, and its second product the larger matrix to read.
    std::optional<std::size_t> second;
    if (chain && gemv.n > gemv.k && groups * static_cast<std::uint64_t>(rows) >= n &&
        static_cast<std::uint64_t>(shape.width) * 4 + 1024 + (rows + 7) / 8 * 8 * 4 <= features.shared_memory_bytes)
      second = chain_target(program, reader_index, reader_bindings.back(), gemv.n);
    std::vector<BufferRef> bindings = inputs;
    std::size_t writes = 1 + (stores_last_rows ? last_rows.size() : 0);
    const Pipeline* pipeline = nullptr;
    if (second) {
      // The reader's B and epilogue inputs; the second matrix's transpose; the partials.
      const Step& next = steps[*second];
      GemvChain shape_of_chain{next.row_gemv->shape.b_dtype, next.row_gemv->n, rows};
      pipeline = &pipelines.get(gemv_norm_mix_kernel(features, gemv.shape, gemv.epilogue, shape, mix.norm_mix->uses_softplus,
                                                     readers[r].output, stores_last_rows, &shape_of_chain));
      bindings.insert(bindings.end(), reader_bindings.begin() + 1, reader_bindings.end() - 1);
      bindings.push_back(program.transposed(next.bindings[1].index));
      BufferRef partials{BufferRef::Kind::activation, static_cast<std::uint32_t>(program.activations.size())};
      program.activations.push_back({{TensorType{DType::f32, Shape{static_cast<Dim>(groups) * next.row_gemv->n}}}});
      bindings.push_back(partials);

      std::vector<BufferRef> sum_bindings{partials};
      sum_bindings.insert(sum_bindings.end(), next.bindings.begin() + 2, next.bindings.end());
      const Pipeline* sum = &pipelines.get(gemv_chain_sum_kernel(features, next.row_gemv->epilogue));
      auto outputs = static_cast<std::uint32_t>(next.row_gemv->n);
      std::uint32_t sum_groups = (outputs + gemv_chain_sum_columns() - 1) / gemv_chain_sum_columns();
      sums.push_back({*second, Step{sum_bindings, 1,
                                    [sum, outputs, groups, sum_groups](const CallShape&) {
                                      return Launch{sum, {sum_groups, 1, 1}, {outputs, groups, 1u}};
                                    },
                                    narrowed(next.runs, one_token)}});
    } else {
      pipeline = &pipelines.get(gemv_norm_mix_kernel(features, gemv.shape, gemv.epilogue, shape,
                                                     mix.norm_mix->uses_softplus, readers[r].output, stores_last_rows));
      bindings.insert(bindings.end(), reader_bindings.begin() + 1, reader_bindings.end());  // B, epilogue inputs, out
    }
    if (stores_last_rows) bindings.insert(bindings.end(), last_rows.begin(), last_rows.end());
    folded.push_back({bindings, writes,
                      [pipeline, n, k, rows, groups](const CallShape&) {
                        return Launch{pipeline, {groups, 1, 1}, {1u, n, k, 0u, 1u, rows}};
                      },
                      narrowed(reader_runs, one_token)});
  }
  return folded;
}

// Whether `step` runs for some call of 1..kFusedWkvMaxTokens tokens.
bool runs_for_short_calls(const Step& step) {
  if (!step.runs) return true;
  for (std::int64_t t = 1; t <= kFusedWkvMaxTokens; ++t)
    if (step.runs({t, true}) || step.runs({t, false})) return true;
  return false;
}

}  // namespace

void fold_lora_ups_into_wkv(Program& program, PipelineStore& pipelines) {
  std::vector<Step>& steps = program.steps;
  // The wkv steps and the ups each now computes, for the group norm fold (run last: it inserts steps).
  std::vector<std::pair<std::size_t, std::map<std::size_t, LoraUp>>> wkv_steps;
  for (std::size_t s = 0; s < steps.size(); ++s)
    if (steps[s].wkv) wkv_steps.push_back({s, {}});
  for (auto& [index, folded_ups] : wkv_steps) {
    if (!fold_enabled("lora_up")) break;
    Step& wkv = steps[index];
    std::map<std::size_t, LoraUp> ups;
    std::map<std::size_t, std::size_t> writer_of;  // input -> the up's step
    for (std::size_t k = 0; k < wkv.wkv->inputs; ++k) {
      const BufferRef& input = wkv.bindings[k];
      std::vector<std::size_t> writers, other_readers;
      for (std::size_t s = 0; s < steps.size(); ++s) {
        if (&steps[s] == &wkv) continue;
        const Step& step = steps[s];
        std::vector<BufferRef> written(step.bindings.end() - static_cast<std::ptrdiff_t>(step.writes), step.bindings.end());
        if (contains(written, input))
          writers.push_back(s);
        if (contains(reads_of(step), input) && runs_for_short_calls(step)) other_readers.push_back(s);
      }
      if (writers.size() != 1 || !other_readers.empty()) continue;
      const Step& up = steps[writers[0]];
      if (!up.row_gemv || !up.row_gemv->epilogue.empty() || up.runs || up.bindings.size() != 3 ||
          up.row_gemv->k > kMaxFoldedRank || up.row_gemv->k >= up.row_gemv->n || contains(wkv.bindings, up.bindings[0]) || contains(wkv.bindings, up.bindings[1]))
        continue;
      ups[k] = {up.row_gemv->k, up.row_gemv->shape.b_dtype};
      writer_of[k] = writers[0];
    }
    if (ups.empty()) continue;
    std::optional<KernelSource> source = wkv.wkv->source(ups);
    if (!source) continue;
    std::size_t inputs = wkv.wkv->inputs;
    std::vector<BufferRef> bindings(wkv.bindings.begin(), wkv.bindings.begin() + static_cast<std::ptrdiff_t>(inputs));
    std::vector<BufferRef> matrices;
    for (const auto& [k, up] : ups) {
      const Step& gemv = steps[writer_of[k]];
      bindings[k] = gemv.bindings[0];
      matrices.push_back(gemv.bindings[1]);
    }
    bindings.insert(bindings.end(), matrices.begin(), matrices.end());
    bindings.insert(bindings.end(), wkv.bindings.begin() + static_cast<std::ptrdiff_t>(inputs), wkv.bindings.end());
    wkv.bindings = std::move(bindings);
    wkv.launch = wkv.wkv->launch(&pipelines.get(*source));
    // The up products now run only for the calls the one-kernel wkv does not take.
    for (const auto& [k, up] : ups) {
      Step& gemv = steps[writer_of[k]];
      gemv.runs = [](const CallShape& call) { return call.tokens > kFusedWkvMaxTokens; };
    }
    folded_ups = ups;
  }
  if (fold_enabled("group_norm")) fold_group_norm_into_outputs(program, pipelines, wkv_steps);
  for (Step& step : steps) step.wkv = nullptr;  // it reads the graph, which does not outlive planning
}

void fold_norm_mix_into_gemvs(Program& program, PipelineStore& pipelines, const DeviceFeatures& features) {
  if (!fold_enabled("norm_mix")) return;
  std::vector<Step>& steps = program.steps;
  bool chain = fold_enabled("chain"), batch = fold_enabled("batch");
  // Each folded step goes just before the GEMV it replaces: its epilogue may read values
  // computed after the mix. A batch goes before the first (batched_folded_gemvs checks that
  // the others' epilogue inputs are there).
  std::vector<std::vector<Step>> before(steps.size());
  for (std::size_t s = 0; s < steps.size(); ++s) {
    if (!steps[s].norm_mix) continue;
    std::vector<MixReader> readers = mix_readers(program, s, features);
    if (readers.empty()) continue;
    std::vector<Step> batched;
    if (batch) batched = batched_folded_gemvs(program, s, readers, pipelines, features);
    std::vector<Replacement> sums;
    std::vector<Step> folded = batched.empty() ? folded_steps(program, s, readers, pipelines, features, chain, sums)
                                               : std::vector<Step>();
    steps[s].runs = narrowed(steps[s].runs, several_tokens);
    for (std::size_t r = 0; r < readers.size(); ++r) {
      steps[readers[r].step].runs = narrowed(steps[readers[r].step].runs, several_tokens);
      if (!folded.empty()) before[readers[r].step].push_back(std::move(folded[r]));
    }
    for (Step& step : batched) before[readers.front().step].push_back(std::move(step));
    for (Replacement& sum : sums) {
      steps[sum.before].runs = narrowed(steps[sum.before].runs, several_tokens);
      before[sum.before].push_back(std::move(sum.step));
    }
  }
  std::vector<Step> rewritten;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    for (Step& step : before[s]) rewritten.push_back(std::move(step));
    rewritten.push_back(std::move(steps[s]));
  }
  steps = std::move(rewritten);
}

}  // namespace rwkvc::vulkan
