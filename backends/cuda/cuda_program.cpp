#include "backends/cuda/cuda_program.h"

#include <algorithm>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_steps.h"
#include "backends/cuda/cuda_wkv7_prompt.h"
#include "backends/cuda/decode_ln_fold.h"
#include "backends/cuda/decode_lora_fold.h"
#include "backends/cuda/fused_codegen.h"
#include "backends/cuda/kernel_sources.h"
#include "backends/cuda/prefill_epilogues.h"
#include "backends/cuda/prefill_half.h"
#include "backends/cuda/prefill_wkv_region.h"
#include "backends/cuda/wkv_region_form.h"
#include "ir/error.h"

namespace rwkvc::cuda {

void RunContext::launch(const KernelHandle& kernel, dim3 grid, dim3 block, LaunchArgs& args, std::size_t shared_bytes) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  std::vector<void*> pointers = args.pointers();
  std::string name = timings == nullptr ? std::string() : fmt::format("{} <<<{}, {}>>>", kernel.name, grid.x * grid.y, block.x);
  record(name, [&] {
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = shared_bytes;
    config.stream = stream;
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    if (dependent_launch) {
      config.attrs = &attribute;
      config.numAttrs = 1;
      // RWKVC_CUDA_SHARED_CARVEOUT=<percent> (measurements, with RWKVC_CUDA_GEMV_STAGED): every
      // short-call kernel prefers that share of the SM's memory as shared memory, so that an SM
      // need not drain to change its split between a staged GEMV and the kernels around it.
      if (const char* carveout = std::getenv("RWKVC_CUDA_SHARED_CARVEOUT"); carveout != nullptr && *carveout != '\0')
        check(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel.kernel),
                                   cudaFuncAttributePreferredSharedMemoryCarveout, std::atoi(carveout)),
              fmt::format("the shared memory carveout of {}", kernel.name));
    }
    check(cudaLaunchKernelExC(&config, reinterpret_cast<const void*>(kernel.kernel), pointers.data()),
          fmt::format("launch of {}", kernel.name));
  });
}

void RunContext::record(const std::string& name, const std::function<void()>& enqueue) {
  ++launches;
  if (timings == nullptr) return enqueue();
  Timing timing{name, nullptr, nullptr};
  check(cudaEventCreate(&timing.start), "cudaEventCreate");
  check(cudaEventCreate(&timing.stop), "cudaEventCreate");
  check(cudaEventRecord(timing.start, stream), "cudaEventRecord");
  enqueue();
  check(cudaEventRecord(timing.stop, stream), "cudaEventRecord");
  timings->push_back(timing);
}

void RunContext::launch_elements(const KernelHandle& kernel, std::int64_t count, LaunchArgs& args) {
  constexpr std::int64_t kThreads = 256, kMaxBlocks = 65536;  // a grid-stride loop covers the rest
  auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>((count + kThreads - 1) / kThreads, 1, kMaxBlocks));
  launch(kernel, dim3(blocks), dim3(kThreads), args);
}

void ModuleSource::include(const char* family) {
  if (std::find(families_.begin(), families_.end(), family) == families_.end()) families_.push_back(family);
}

KernelHandle* ModuleSource::kernel(const std::string& name, const std::string& definition) {
  for (KernelHandle& handle : handles_)
    if (handle.name == name) return &handle;
  if (!definition.empty()) definitions_.push_back({name, definition});
  handles_.push_back({name, nullptr});
  return &handles_.back();
}

std::string ModuleSource::text() const {
  std::string text = tuning_defines() + kPreludeSource;
  text += kMiscSource;
  for (const char* family : families_) text += family;
  for (const Definition& definition : definitions_) text += definition.text;
  return text;
}

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

class ProgramBuilder {
 public:
  explicit ProgramBuilder(const Graph& graph) : graph_(graph) {
    program_.graph_slots = graph.values.size();
    program_.staging_slot = graph.values.size();
    for (const Value& value : graph.values) types_.push_back(value.type);
    is_weight_.assign(graph.values.size(), false);
    for (const WeightDecl& decl : graph.weights) is_weight_[at(decl.value)] = true;
  }

  Program build() {
    program_.long_call_dtype = long_call_dtypes(graph_);
    decide_in_place();
    for (std::size_t i = 0; i < graph_.ops.size(); ++i) program_.runs_at.push_back(i);
    for (std::size_t i = 0; i < graph_.ops.size(); ++i) {
      const Op& op = graph_.ops[i];
      if (!joins_batch(op, i)) {
        flush_batch();
        lower(op);
        if (op.kind == OpKind::region && !program_.steps.empty()) recent_region_ = RecentRegion{program_.steps.size() - 1, i};
      }
    }
    flush_batch();
    write_back_state();
    check_transposed_weights();
    return std::move(program_);
  }

 private:
  void decide_in_place() {
    std::vector<std::size_t> producer(graph_.values.size(), graph_.ops.size());
    std::vector<std::size_t> last_reader(graph_.values.size(), 0);
    for (std::size_t i = 0; i < graph_.ops.size(); ++i) {
      for (ValueId id : graph_.ops[i].results) producer[at(id)] = i;
      for (ValueId id : graph_.ops[i].operands) last_reader[at(id)] = std::max(last_reader[at(id)], i);
    }
    for (const StateDecl& decl : graph_.states) {
      bool in_place = false;
      std::size_t p = decl.output == kNoValue ? graph_.ops.size() : producer[at(decl.output)];
      if (p < graph_.ops.size() && last_reader[at(decl.input)] <= p)
        in_place = writes_in_place(graph_.ops[p], decl.input, decl.output);
      program_.state_in_place.push_back(in_place);
    }
  }

  // The state operand a wkv op updates into result `result`, if that result is a state.
  static std::optional<std::size_t> state_operand(const Op& op, std::size_t result) {
    if (op.kind == OpKind::wkv7 && result == 1) return 6;
    if (op.kind == OpKind::wkv4 && result >= 1 && result <= 3) return 3 + result;
    return std::nullopt;
  }

  // Whether `op` may write `output` over `input`'s memory: a wkv kernel reads each state element
  // before it writes it, in the same thread, and nothing else reads the input.
  static bool writes_in_place(const Op& op, ValueId input, ValueId output) {
    auto position = std::find(op.results.begin(), op.results.end(), output) - op.results.begin();
    if (std::count(op.operands.begin(), op.operands.end(), input) != 1) return false;
    if (op.kind != OpKind::region) {
      auto operand = state_operand(op, static_cast<std::size_t>(position));
      return operand && op.operands[*operand] == input;
    }
    const Region& body = *op.region;
    ValueId argument = static_cast<ValueId>(std::find(op.operands.begin(), op.operands.end(), input) - op.operands.begin());
    ValueId yielded = body.yields[static_cast<std::size_t>(position)];
    int readers = 0;
    bool paired = false;
    for (const Op& inner : body.ops) {
      readers += static_cast<int>(std::count(inner.operands.begin(), inner.operands.end(), argument));
      auto result = std::find(inner.results.begin(), inner.results.end(), yielded);
      if (result == inner.results.end()) continue;
      auto operand = state_operand(inner, static_cast<std::size_t>(result - inner.results.begin()));
      paired = operand && inner.operands[*operand] == argument;
    }
    return paired && readers == 1 && std::count(body.yields.begin(), body.yields.end(), yielded) == 1;
  }

  // A weight uploaded transposed serves [K, N] matmuls alone.
  void check_transposed_weights() const {
    auto check_reader = [&](const Op& op, ValueId weight, std::size_t operand) {
      if (op.kind != OpKind::matmul || operand != 1 || op.int_attr("transpose_b") != 0)
        throw IrError(fmt::format("weight {} is read both as a [K, N] matrix and otherwise; the CUDA backend holds "
                                  "one layout per weight",
                                  graph_.ref(weight)));
    };
    for (ValueId weight : program_.transposed_weights)
      for (const Op& op : graph_.ops)
        for (std::size_t i = 0; i < op.operands.size(); ++i) {
          if (op.operands[i] != weight) continue;
          if (op.kind != OpKind::region) {
            check_reader(op, weight, i);
            continue;
          }
          for (const Op& inner : op.region->ops)
            for (std::size_t j = 0; j < inner.operands.size(); ++j)
              if (inner.operands[j] == static_cast<ValueId>(i)) check_reader(inner, weight, j);
        }
  }

  // Decode's independent one-row GEMVs (r, k, v; the LoRA downs; the LoRA ups) go out as few
  // launches: a first batch of matmuls independent of each other, and a second that may read
  // the first's results. Both run, in that order, where their last member stands; any other op
  // runs them first.
  struct PendingGemv {
    GemvMember member;
    std::size_t index;
    std::vector<ValueId> results;
  };

  bool joins_batch(const Op& op, std::size_t index) {
    std::optional<GemvMember> member = gemv_member(op);
    if (!member) return false;
    auto reads = [&](const std::vector<PendingGemv>& batch) {
      for (const PendingGemv& pending : batch)
        for (ValueId id : pending.results)
          if (std::find(op.operands.begin(), op.operands.end(), id) != op.operands.end()) return true;
      return false;
    };
    auto fits = [&](const std::vector<PendingGemv>& batch) {
      return batch.size() < kMatmulBatch && (batch.empty() || batch[0].member.spec.b_dtype == member->spec.b_dtype);
    };
    PendingGemv pending{std::move(*member), index, op.results};
    if (reads(second_)) {
      flush_batch();
    } else if (reads(first_)) {
      if (fits(second_)) {
        second_.push_back(std::move(pending));
        return true;
      }
      flush_batch();
    } else if (!fits(first_)) {
      if (fits(second_)) {
        second_.push_back(std::move(pending));
        return true;
      }
      flush_batch();
    }
    first_.push_back(std::move(pending));
    return true;
  }

  void flush_batch() {
    if (first_.empty() && second_.empty()) return;
    std::size_t last = 0;
    for (const auto* batch : {&first_, &second_})
      for (const PendingGemv& pending : *batch) last = std::max(last, pending.index);
    std::vector<GemvMember*> firsts;  // may compute their x themselves (a folded layer norm + mix)
    std::vector<std::size_t> first_ops;
    for (PendingGemv& pending : first_) {
      firsts.push_back(&pending.member);
      first_ops.push_back(pending.index);
    }
    fold_row_prologues(graph_, recent_region_, firsts, first_ops, last, program_);
    for (auto* batch : {&first_, &second_}) {
      if (batch->empty()) continue;
      RecentGemvBatch recent{program_.steps.size(), {}, {}};  // a one-token wkv kernel may take it (LoRA ups)
      for (PendingGemv& pending : *batch) {
        program_.runs_at[pending.index] = last;
        recent.members.push_back(std::move(pending.member));
        recent.ops.push_back(pending.index);
      }
      program_.steps.push_back(gemv_group_step(recent.members, program_));
      recent_batch_ = std::move(recent);
      batch->clear();
    }
  }

  // A one-row GEMV candidate for a batch: a matmul by a weight (not the logits), or a
  // matmul_epilogue region whose tail folds into the GEMV's store.
  std::optional<GemvMember> gemv_member(const Op& op) {
    if (op.kind == OpKind::region) return epilogue_member(op);
    if (op.kind != OpKind::matmul || !is_weight_[at(op.operands[1])] || op.results[0] == graph_.logits) return std::nullopt;
    GemvMember member;
    member.spec = matmul_spec(op, at(op.operands[0]), at(op.operands[1]), at(op.results[0]), types_, op.operands[1], false);
    member.single = matmul_step(member.spec, program_);
    return member;
  }

  void write_back_state() {
    std::vector<std::pair<std::size_t, std::size_t>> copies;
    std::vector<std::int64_t> counts;
    for (std::size_t s = 0; s < graph_.states.size(); ++s) {
      const StateDecl& decl = graph_.states[s];
      if (program_.state_in_place[s] || decl.output == kNoValue || decl.output == decl.input) continue;
      copies.emplace_back(at(decl.output), at(decl.input));
      counts.push_back(graph_.type(decl.input).shape.numel());
    }
    if (!copies.empty()) program_.steps.push_back(copy_step(program_, std::move(copies), std::move(counts)));
  }

  void lower(const Op& op) {
    auto slots = [](const std::vector<ValueId>& ids) {
      std::vector<std::size_t> out;
      for (ValueId id : ids) out.push_back(at(id));
      return out;
    };
    switch (op.kind) {
      case OpKind::region: return lower_region_for_any_length(op);
      case OpKind::embedding:
        if (!is_weight_[at(op.operands[0])] || op.operands[1] != graph_.tokens)
          throw IrError("the CUDA backend gathers embeddings from a weight table by the graph's tokens only");
        program_.steps.push_back(embedding_step(program_, types_[at(op.operands[0])].dtype, at(op.operands[0]),
                                                at(op.operands[1]), at(op.results[0]), types_[at(op.results[0])].shape));
        return;
      case OpKind::layer_norm:
        program_.steps.push_back(layer_norm_step(program_, at(op.operands[0]), at(op.operands[1]), at(op.operands[2]),
                                                 at(op.results[0]), types_[at(op.operands[0])].shape,
                                                 static_cast<float>(op.float_attr("eps"))));
        return;
      case OpKind::matmul:
        program_.steps.push_back(matmul_step(matmul_spec(op, at(op.operands[0]), at(op.operands[1]), at(op.results[0]),
                                                         types_, op.operands[1], op.results[0] == graph_.logits),
                                             program_));
        return;
      case OpKind::wkv7:
        program_.steps.push_back(wkv7_any_length_step(program_, slots(op.operands), slots(op.results),
                                                      types_[at(op.operands[0])].shape, types_[at(op.operands[6])].shape));
        return;
      case OpKind::l2_norm:
      case OpKind::group_norm:
      case OpKind::reduce_sum:
        program_.steps.push_back(
            group_reduction_step(program_, op, slots(op.operands), at(op.results[0]), types_[at(op.operands[0])].shape));
        return;
      case OpKind::wkv4:
        program_.steps.push_back(wkv4_step(program_, slots(op.operands), slots(op.results),
                                           types_[at(op.operands[2])].shape, types_[at(op.operands[0])].shape.numel()));
        return;
      default: break;
    }
    if (!is_generatable(op.kind))
      throw IrError(fmt::format("the CUDA backend has no kernel for '{}'", op_name(op.kind)));
    // One op on its own: a generated kernel with the op's operands in memory.
    CodegenScope scope{types_, std::vector<const Op*>(types_.size(), nullptr)};
    std::vector<bool> materialized(types_.size(), true);
    for (ValueId id : op.results) {
      scope.producer[at(id)] = &op;
      materialized[at(id)] = false;
    }
    add_generated_steps(program_, scope, op.results, materialized, slots(op.results), [](ValueId id) { return at(id); });
  }

  // A matmul whose B is a weight reads it as [N, K] (weights the graph reads as [K, N] are
  // uploaded transposed); a computed B goes to the plain kernel as it is.
  // `matrix`: the graph value B is (a weight, or kNoValue inside a region when computed there).
  MatmulSpec matmul_spec(const Op& op, std::size_t a, std::size_t b, std::size_t out,
                         std::span<const TensorType> types, ValueId matrix, bool logits) {
    const TensorType& a_type = types[at(op.operands[0])];
    const TensorType& b_type = types[at(op.operands[1])];
    MatmulSpec spec;
    spec.a = a;
    spec.b = b;
    spec.out = out;
    spec.a_shape = a_type.shape;
    spec.K = a_type.shape.back();
    spec.transpose_b = op.int_attr("transpose_b") != 0;
    spec.N = spec.transpose_b ? b_type.shape[0] : b_type.shape[1];
    spec.b_dtype = b_type.dtype;
    spec.logits = logits;
    spec.b_is_weight = matrix != kNoValue && is_weight_[at(matrix)];
    if (spec.b_is_weight && !spec.transpose_b) program_.transposed_weights.insert(matrix);
    if (!spec.b_is_weight && spec.b_dtype != DType::f32)
      throw IrError(fmt::format("the CUDA backend multiplies by a computed {} matrix only in f32", dtype_name(spec.b_dtype)));
    return spec;
  }

  static bool is_reduction(OpKind kind) {
    return kind == OpKind::l2_norm || kind == OpKind::group_norm || kind == OpKind::reduce_sum ||
           kind == OpKind::layer_norm;
  }

  // The steps `lower` adds, taken out of the program.
  template <typename Lower>
  std::vector<Step> steps_of(Lower lower) {
    std::size_t first = program_.steps.size();
    lower();
    std::vector<Step> steps(std::make_move_iterator(program_.steps.begin() + static_cast<std::ptrdiff_t>(first)),
                            std::make_move_iterator(program_.steps.end()));
    program_.steps.resize(first);
    return steps;
  }

  // A generated kernel evaluates a reduction inline, each thread summing its own group: cheap for
  // a few tokens, but on long prompts every element re-reads its group. There the reductions run
  // as kernels of their own (one warp per group) over materialised operands; the step picks by T.
  void lower_region_for_any_length(const Op& op) {
    if (lower_matmul_epilogue(op)) return;
    const Region& body = *op.region;
    if (std::none_of(body.ops.begin(), body.ops.end(), [](const Op& inner) { return is_reduction(inner.kind); }))
      return lower_region(op, false);
    std::vector<Step> inline_steps = steps_of([&] { lower_region(op, false); });
    std::vector<Step> split_steps = steps_of([&] { lower_region(op, true); });
    std::optional<Step> one_token = wkv7_one_token(op);
    std::optional<Step> long_call = wkv7_long_call_step(op, program_);
    program_.steps.push_back([inline_steps, split_steps, one_token, long_call](RunContext& ctx) {
      if (ctx.T == 1 && one_token) return (*one_token)(ctx);
      if (ctx.T > kGemvMaxRows && long_call) return (*long_call)(ctx);
      for (const Step& step : ctx.T >= kSplitReductionsFrom ? split_steps : inline_steps) step(ctx);
    });
  }

  // RWKVC_CUDA_HEAD_REDUCTIONS=0 (read once): the one-token wkv kernel re-sums each head
  // reduction element by element, as before the block reductions (a fallback).
  static bool head_reductions_enabled() {
    static const bool enabled = [] {
      const char* value = std::getenv("RWKVC_CUDA_HEAD_REDUCTIONS");
      return value == nullptr || std::string(value) != "0";
    }();
    return enabled;
  }

  // A one-token call of an RWKV-7 wkv region as one kernel, a block per head: the pre-ops for
  // the head's channels, the recurrence for its rows, then the post-ops (group norm, bonus,
  // gate), which read only the head's own channels (checked), with barriers between; the head
  // sums they need (the l2 norm before, the group norm's and the bonus after) are block
  // reductions run once by all the block's threads. Null when the region does not have that form.
  std::optional<Step> wkv7_one_token(const Op& op) {
    std::optional<HeadwiseWkv7> form = match_headwise_wkv7(op);
    if (!form) return std::nullopt;
    const Region& body = *op.region;
    std::span<const TensorType> types = body.values;
    const Op* wkv = form->wkv;
    Dim H = form->heads, N = form->size, C = H * N;
    Shape domain{kSeq, C};

    // Slots: arguments in the operands', the wkv7 operands and results in scratch unless
    // they are arguments or yields, the other yields (computed last) in the results'.
    std::vector<std::optional<std::size_t>> slot(types.size());
    for (std::size_t i = 0; i < body.arguments; ++i) slot[i] = at(op.operands[i]);
    std::vector<ValueId> yields_after;
    std::vector<std::size_t> yield_slots;
    for (std::size_t p = 0; p < body.yields.size(); ++p) {
      ValueId y = body.yields[p];
      if (slot[at(y)]) return std::nullopt;  // an argument or a value yielded twice: a copy
      slot[at(y)] = at(op.results[p]);
      if (y == wkv->results[0] || y == wkv->results[1]) continue;
      if (types[at(y)].shape != domain) return std::nullopt;
      yields_after.push_back(y);
      yield_slots.push_back(at(op.results[p]));
    }
    std::size_t scratch_used = 0;
    auto place = [&](ValueId id) { place_in_scratch(slot, types, id, scratch_used); };
    std::vector<ValueId> before;
    for (std::size_t i = 0; i < 6; ++i) {
      ValueId id = wkv->operands[i];
      if (at(id) >= body.arguments && std::find(before.begin(), before.end(), id) == before.end()) before.push_back(id);
      place(id);
    }
    for (ValueId id : wkv->results) place(id);

    CodegenScope scope{types, std::vector<const Op*>(types.size(), nullptr)};
    for (const Op& inner : body.ops)
      for (ValueId id : inner.results) scope.producer[at(id)] = &inner;
    std::vector<bool> ready(types.size(), false);
    for (std::size_t i = 0; i < body.arguments; ++i) ready[i] = true;
    // Every reduction here is over one head (checked above), so the block sums each once.
    std::optional<HeadBlock> head;
    if (head_reductions_enabled()) head = HeadBlock{H, N, "h"};
    ElementCode pre = generate_element_code(scope, before, ready, domain, "a_", head);
    for (ValueId id : before) ready[at(id)] = true;
    for (ValueId id : wkv->results) ready[at(id)] = true;
    ElementCode post = generate_element_code(scope, yields_after, ready, domain, "c_", head);

    std::string params = "i64 T";
    for (std::size_t o = 0; o < before.size(); ++o) params += fmt::format(", float* a_out{}", o);
    for (std::size_t i = 0; i < pre.inputs.size(); ++i) params += fmt::format(", const float* a_in{}", i);
    for (std::size_t o = 0; o < yields_after.size(); ++o) params += fmt::format(", float* c_out{}", o);
    for (std::size_t i = 0; i < post.inputs.size(); ++i) params += fmt::format(", const float* c_in{}", i);
    params += ", const float* r, const float* w, const float* k, const float* v, const float* a, const float* b, "
              "const float* s_in, float* s_out, float* y";
    bool in_graph = &op >= graph_.ops.data() && &op < graph_.ops.data() + graph_.ops.size();
    std::vector<FoldedUp> ups =
        in_graph ? fold_lora_ups(graph_, static_cast<std::size_t>(&op - graph_.ops.data()), recent_batch_, program_, C)
                 : std::vector<FoldedUp>{};
    LoraFoldCode fold = lora_fold_code(ups, N, wkv_prefetch_enabled());
    params += fold.params;
    std::string text = fmt::format(
        "({0}) {{\n  (void)T;\n  const int h = blockIdx.x;\n{6}  kernel_entry();\n{7}  const i64 d0 = 0;\n{4}"
        "  for (int c = threadIdx.x; c < {1}; c += blockDim.x) {{\n    const i64 d1 = (i64)h * {1} + c;\n{2}  }}\n"
        "  __syncthreads();  // the head's vectors are in memory\n"
        "  wkv7_head_one_token<{1}>(h, r, w, k, v, a, b, s_in, s_out, y);\n"
        "  __syncthreads();  // and its outputs\n{5}"
        "  for (int c = threadIdx.x; c < {1}; c += blockDim.x) {{\n    const i64 d1 = (i64)h * {1} + c;\n{3}  }}\n}}\n",
        params, N, pre.body, post.body, pre.prologue, post.prologue, fold.before_wait, fold.after_wait);
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (char ch : text) hash = (hash ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
    std::string name = fmt::format("wkv7_token_{:016x}", hash);
    program_.module.include(kWkvSource);
    KernelHandle* kernel =
        program_.module.kernel(name, fmt::format("extern \"C\" __global__ void __launch_bounds__(1024) {}{}", name, text));

    std::vector<std::size_t> slots;
    for (std::size_t i = 0; i < before.size(); ++i) slots.push_back(*slot[at(before[i])]);
    for (ValueId id : pre.inputs) slots.push_back(*slot[at(id)]);
    for (std::size_t s : yield_slots) slots.push_back(s);
    for (ValueId id : post.inputs) slots.push_back(*slot[at(id)]);
    for (std::size_t i = 0; i < 7; ++i) slots.push_back(*slot[at(wkv->operands[i])]);
    slots.push_back(*slot[at(wkv->results[1])]);
    slots.push_back(*slot[at(wkv->results[0])]);
    for (const FoldedUp& up : ups) slots.insert(slots.end(), {up.hidden, up.weight, up.out});
    auto threads = static_cast<unsigned>(std::min<Dim>(1024, 32 * N));
    return [kernel, slots, H, threads](RunContext& ctx) {
      LaunchArgs args;
      args.add<long long>(ctx.T);
      for (std::size_t s : slots) args.add(ctx.slots[s]);
      ctx.launch(*kernel, dim3(static_cast<unsigned>(H)), dim3(threads), args);
    };
  }
  static constexpr std::int64_t kSplitReductionsFrom = 32;

  // A matmul_epilogue region (one matmul, then elementwise ops on its result): for one row, one
  // GEMV kernel whose store computes the tail; otherwise the matmul and a tail kernel.
  bool lower_matmul_epilogue(const Op& op) {
    std::optional<GemvMember> member = epilogue_member(op);
    if (!member) return false;
    program_.steps.push_back(member->single);
    return true;
  }

  // The GEMV (with its folded tail) of a matmul_epilogue region, when it has one: a matmul by a
  // weight first, then only generatable ops that read the product where they store.
  std::optional<GemvMember> epilogue_member(const Op& op) {
    const Region& body = *op.region;
    if (body.kind != "matmul_epilogue" || body.ops.empty() || body.ops[0].kind != OpKind::matmul) return std::nullopt;
    const Op& matmul = body.ops[0];
    ValueId a = matmul.operands[0], b = matmul.operands[1];
    if (at(a) >= body.arguments || at(b) >= body.arguments || !is_weight_[at(op.operands[at(b)])]) return std::nullopt;
    for (std::size_t i = 1; i < body.ops.size(); ++i)
      if (!is_generatable(body.ops[i].kind) || is_reduction(body.ops[i].kind)) return std::nullopt;
    const Shape& result = body.values[at(matmul.results[0])].shape;
    if (result.rank() > 2) return std::nullopt;

    CodegenScope scope{body.values, std::vector<const Op*>(body.values.size(), nullptr)};
    for (const Op& inner : body.ops)
      for (ValueId id : inner.results) scope.producer[at(id)] = &inner;
    std::vector<bool> materialized(body.values.size(), false);
    for (std::size_t i = 0; i < body.arguments; ++i) materialized[i] = true;
    DType dtype = body.values[at(b)].dtype;
    EpilogueKernel epilogue;
    try {
      epilogue = generate_gemv_epilogue(scope, body.yields, materialized, matmul.results[0], device_type(dtype));
    } catch (const IrError&) {
      return std::nullopt;  // the tail reads the product elsewhere than where it stores: not foldable
    }
    program_.module.include(kGemvSource);
    KernelHandle* kernel = program_.module.kernel(epilogue.name, epilogue.source);
    std::vector<std::size_t> outs, ins;
    for (ValueId id : op.results) outs.push_back(at(id));
    for (ValueId id : epilogue.inputs) ins.push_back(at(op.operands[at(id)]));
    std::vector<Step> unfolded = steps_of([&] { lower_region(op, false); });

    std::size_t x = at(op.operands[at(a)]), w = at(op.operands[at(b)]);
    Shape a_shape = body.values[at(a)].shape;
    std::int64_t K = a_shape.back(), N = result.back(), per_vector = dtype == DType::f32 ? 4 : 8;
    GemvMember member;
    member.spec.a = x;
    member.spec.b = w;
    member.spec.a_shape = a_shape;
    member.spec.K = K;
    member.spec.N = N;
    member.spec.b_dtype = dtype;
    member.spec.b_is_weight = true;
    member.epilogue = epilogue.name;
    member.outs = outs;
    member.ins = ins;
    member.single = [=](RunContext& ctx) {
      bool aligned = reinterpret_cast<std::uintptr_t>(ctx.slots[x]) % 16 == 0 &&
                     reinterpret_cast<std::uintptr_t>(ctx.slots[w]) % 16 == 0;
      if (a_shape.numel(ctx.T) != K || K % per_vector != 0 || !aligned) {
        for (const Step& step : unfolded) step(ctx);
        return;
      }
      LaunchArgs args;
      args.add(ctx.slots[x]).add(ctx.slots[w]).add<int>(static_cast<int>(K)).add<int>(static_cast<int>(N)).add<long long>(ctx.T);
      for (std::size_t s : outs) args.add(ctx.slots[s]);
      for (std::size_t s : ins) args.add(ctx.slots[s]);
      ctx.launch(*kernel, dim3(static_cast<unsigned>((N + 7) / 8)), dim3(256), args);
    };
    // Long calls of `y = x + a W^T`: one cuBLASLt call with beta = 1 (RWKVC_CUDA_GEMM_EPILOGUES=1).
    if (std::optional<Step> residual = residual_gemm_step(op, is_weight_, member.single, program_))
      member.single = by_call_length({member.single}, {*residual});
    return member;
  }

  // Gives body value `id` the next scratch buffer of this region's lowering (scratch buffer s is
  // shared by every region's s-th value, sized for the largest) unless it already has a slot.
  void place_in_scratch(std::vector<std::optional<std::size_t>>& slot, std::span<const TensorType> types, ValueId id,
                        std::size_t& scratch_used) {
    if (!slot[at(id)]) slot[at(id)] = program_.region_scratch(scratch_used, types[at(id)].shape);
  }

  void lower_region(const Op& op, bool split_reductions) {
    auto inline_here = [&](OpKind kind) { return is_generatable(kind) && !(split_reductions && is_reduction(kind)); };
    const Region& body = *op.region;
    std::span<const TensorType> types = body.values;
    CodegenScope scope{types, std::vector<const Op*>(types.size(), nullptr)};
    for (const Op& inner : body.ops) {
      if (inner.kind == OpKind::region || inner.kind == OpKind::embedding)
        throw IrError(fmt::format("region \"{}\": the CUDA backend runs no {} inside a region", body.kind,
                                  op_name(inner.kind)));
      for (ValueId id : inner.results) scope.producer[at(id)] = &inner;
    }

    // Where each body value lives once materialised: arguments in the operands' slots, yields in
    // the results' slots, whatever else a matmul or recurrence reads or writes in scratch.
    std::vector<std::optional<std::size_t>> slot(types.size());
    for (std::size_t i = 0; i < body.arguments; ++i) slot[i] = at(op.operands[i]);
    std::vector<std::size_t> copies;  // yield positions whose value lives elsewhere
    for (std::size_t p = 0; p < body.yields.size(); ++p) {
      ValueId y = body.yields[p];
      if (slot[at(y)])
        copies.push_back(p);
      else
        slot[at(y)] = at(op.results[p]);
    }
    std::size_t scratch_used = 0;
    auto place = [&](ValueId id) { place_in_scratch(slot, types, id, scratch_used); };

    std::vector<bool> ready(types.size(), false);
    for (std::size_t i = 0; i < body.arguments; ++i) ready[i] = true;
    auto slot_of = [&](ValueId id) { return *slot[at(id)]; };
    // Computes `values` (not yet in memory) with generated kernels into their slots.
    auto materialise = [&](std::vector<ValueId> values) {
      std::vector<std::size_t> outs;
      for (ValueId id : values) {
        place(id);
        outs.push_back(slot_of(id));
      }
      if (values.empty()) return;
      add_generated_steps(program_, scope, values, ready, outs, slot_of);
      for (ValueId id : values) ready[at(id)] = true;
    };

    for (const Op& inner : body.ops) {
      if (inline_here(inner.kind)) continue;  // computed where it is needed
      std::vector<ValueId> pending;
      for (ValueId id : inner.operands)
        if (!ready[at(id)] && std::find(pending.begin(), pending.end(), id) == pending.end()) pending.push_back(id);
      materialise(pending);
      for (ValueId id : inner.results) place(id);
      std::vector<std::size_t> operand_slots, result_slots;
      for (ValueId id : inner.operands) operand_slots.push_back(slot_of(id));
      for (ValueId id : inner.results) result_slots.push_back(slot_of(id));
      switch (inner.kind) {
        case OpKind::matmul:
          program_.steps.push_back(matmul_step(
              matmul_spec(inner, operand_slots[0], operand_slots[1], result_slots[0], types,
                          at(inner.operands[1]) < body.arguments ? op.operands[at(inner.operands[1])] : kNoValue,
                          false),
              program_));
          break;
        case OpKind::wkv7:
          program_.steps.push_back(wkv7_any_length_step(program_, operand_slots, result_slots,
                                                        types[at(inner.operands[0])].shape,
                                                        types[at(inner.operands[6])].shape));
          break;
        case OpKind::wkv4:
          program_.steps.push_back(wkv4_step(program_, operand_slots, result_slots, types[at(inner.operands[2])].shape,
                                             types[at(inner.operands[0])].shape.numel()));
          break;
        case OpKind::l2_norm:
        case OpKind::group_norm:
        case OpKind::reduce_sum:
          program_.steps.push_back(group_reduction_step(program_, inner, operand_slots, result_slots[0],
                                                        types[at(inner.operands[0])].shape));
          break;
        case OpKind::layer_norm:
          program_.steps.push_back(layer_norm_step(program_, operand_slots[0], operand_slots[1], operand_slots[2],
                                                   result_slots[0], types[at(inner.operands[0])].shape,
                                                   static_cast<float>(inner.float_attr("eps"))));
          break;
        default:
          throw IrError(fmt::format("region \"{}\": the CUDA backend has no kernel for '{}'", body.kind,
                                    op_name(inner.kind)));
      }
      for (ValueId id : inner.results) ready[at(id)] = true;
    }

    // The yields: computed into the results' slots, or copied there when they live elsewhere.
    std::vector<ValueId> outputs;
    std::vector<std::size_t> outs;
    for (std::size_t p = 0; p < body.yields.size(); ++p) {
      ValueId y = body.yields[p];
      bool copy = std::find(copies.begin(), copies.end(), p) != copies.end();
      if (!copy && ready[at(y)]) continue;
      outputs.push_back(y);
      outs.push_back(at(op.results[p]));
    }
    if (!outputs.empty()) add_generated_steps(program_, scope, outputs, ready, outs, slot_of);
  }

  const Graph& graph_;
  std::vector<PendingGemv> first_, second_;
  std::optional<RecentGemvBatch> recent_batch_;
  std::optional<RecentRegion> recent_region_;
  std::vector<TensorType> types_;
  std::vector<bool> is_weight_;
  Program program_;
};

}  // namespace

std::size_t Program::region_scratch(std::size_t& used, const Shape& shape) {
  auto is_reserved = [&](std::size_t s) {
    return std::any_of(reserved.begin(), reserved.end(), [&](const auto& entry) { return entry.second == s; });
  };
  while (is_reserved(used)) ++used;
  if (scratch.size() <= used) scratch.resize(used + 1);
  scratch[used].push_back(shape);
  return scratch_slot(used++);
}

std::size_t Program::reserved_scratch(const std::string& name, const Shape& shape) {
  auto [entry, added] = reserved.try_emplace(name, scratch.size());
  if (added) scratch.emplace_back();
  scratch[entry->second].push_back(shape);
  return scratch_slot(entry->second);
}

Program build_program(const Graph& graph) { return ProgramBuilder(graph).build(); }

}  // namespace rwkvc::cuda
