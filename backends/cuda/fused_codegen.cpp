#include "backends/cuda/fused_codegen.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/error.h"

namespace rwkvc::cuda {

namespace {

using Index = std::vector<std::string>;  // one C++ expression (i64) per dimension

std::string dim_text(Dim d) { return d == kSeq ? "T" : std::to_string(d); }

// The element offset of `index` in a row-major tensor of `shape`.
std::string flat_offset(const Index& index, const Shape& shape) {
  std::string text;
  std::string stride;  // empty: 1
  for (std::size_t i = shape.rank(); i-- > 0;) {
    if (shape[i] != 1) {
      std::string term = stride.empty() ? index[i] : fmt::format("{} * {}", index[i], stride);
      text = text.empty() ? term : term + " + " + text;
    }
    stride = stride.empty() ? dim_text(shape[i]) : fmt::format("{} * {}", stride, dim_text(shape[i]));
  }
  return text.empty() ? "0" : "(" + text + ")";
}

// `index` of a `result`-shaped value read from an operand of `shape` broadcast to it.
Index broadcast_index(const Index& index, const Shape& shape) {
  std::size_t offset = index.size() - shape.rank();
  Index out;
  for (std::size_t i = 0; i < shape.rank(); ++i) out.push_back(shape[i] == 1 ? "0" : index[offset + i]);
  return out;
}

bool broadcasts_to(const Shape& shape, const Shape& target) {
  if (shape.rank() > target.rank()) return false;
  std::size_t offset = target.rank() - shape.rank();
  for (std::size_t i = 0; i < shape.rank(); ++i)
    if (shape[i] != 1 && shape[i] != target[offset + i]) return false;
  return true;
}

// Elements with T large: the output with the most is the domain the others broadcast to.
std::int64_t size_rank(const Shape& shape) { return shape.numel(1 << 20); }

std::string float_literal(double value) {
  auto f = static_cast<float>(value);
  return fmt::format("__int_as_float({})", std::bit_cast<std::int32_t>(f));
}

class Emitter {
 public:
  Emitter(const CodegenScope& scope, const std::vector<bool>& materialized) : scope_(scope), materialized_(materialized) {
    memo_.emplace_back();
  }

  // `id` is held in the register `name` for the element at `index` (a GEMV's accumulator).
  void hold_in_register(ValueId id, const Index& index, std::string name) {
    register_value_ = id;
    register_index_ = index;
    register_name_ = std::move(name);
  }

  const Shape& shape(ValueId id) const { return scope_.types[static_cast<std::size_t>(id)].shape; }
  // The C++ type output `id` is stored as, and the store of `v` in it.
  DType store_type(ValueId id) const {
    auto i = static_cast<std::size_t>(id);
    return i < scope_.store_as.size() ? scope_.store_as[i] : DType::f32;
  }
  std::string stored(ValueId id, const std::string& v) const {
    DType type = store_type(id);
    if (type == DType::f32) return v;
    return fmt::format("{}{{f32_to_{}_bits({})}}", type == DType::f16 ? "f16" : "bf16", type == DType::f16 ? "f16" : "bf16", v);
  }
  std::string output_pointer(ValueId id) const {
    DType type = store_type(id);
    return type == DType::f32 ? "float*" : type == DType::f16 ? "f16*" : "bf16*";
  }

  // A block per row of the domain (`d0`): a layer_norm of a materialised [rows, C] value reads
  // its row's mean and inverse deviation from a block reduction done once, up front, for each
  // row asked for (row d0, the previous row of a token shift, the last row).
  void use_row_statistics() { row_statistics_ = true; }
  // A block per head, one token: sums over the block's head go to head_prologue().
  void use_head_reductions(HeadBlock head) { head_ = std::move(head); }
  // The head sums, for every thread of the block to run before the per-element loop.
  std::string head_prologue() const {
    if (head_prologue_.empty()) return "";
    return fmt::format("  __shared__ float {}head_scratch[32];\n{}", prefix_, head_prologue_);
  }
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }
  const std::string& prefix() const { return prefix_; }
  bool used_row_statistics() const { return !row_stats_.empty(); }
  // The code that computes the statistics, to run before the per-element loop.
  std::string row_statistics_prologue() const {
    // A row asked for twice (the last row is row d0 in a one-token call) is reduced once.
    std::string text;
    for (std::size_t k = 0; k < row_stats_.size(); ++k) {
      const RowStats& stats = row_stats_[k];
      std::string same;
      for (std::size_t j = 0; j < k; ++j)
        if (row_stats_[j].value == stats.value && row_stats_[j].eps == stats.eps)
          same += fmt::format("    if (row == {0}) {{ {1} = {2}; {3} = {4}; }} else\n", row_stats_[j].row_name,
                              stats.mean, row_stats_[j].mean, stats.inv_std, row_stats_[j].inv_std);
      text += fmt::format(
          "  float {0} = 0.0f, {1} = 0.0f;\n"
          "  const i64 {7} = {2};\n"
          "  {{\n"
          "    const i64 row = {7};\n"
          "{8}"
          "    if (row >= 0 && row < {3}) {{\n"
          "      const float* src = {4} + row * {5};\n"
          "      float sum = 0.0f;\n"
          "      for (int c = threadIdx.x; c < {5}; c += blockDim.x) sum += src[c];\n"
          "      {0} = block_sum(sum, row_scratch) / (float)({5});\n"
          "      float squares = 0.0f;\n"
          "      for (int c = threadIdx.x; c < {5}; c += blockDim.x) squares += (src[c] - {0}) * (src[c] - {0});\n"
          "      {1} = 1.0f / sqrtf(block_sum(squares, row_scratch) / (float)({5}) + {6});\n"
          "    }}\n"
          "  }}\n",
          stats.mean, stats.inv_std, stats.row, stats.rows, stats.input, stats.width, stats.eps, stats.row_name, same);
    }
    return text;
  }

  // The name of a local holding value `id` at `index`, emitting the code that computes it.
  std::string eval(ValueId id, const Index& index) {
    std::string key = fmt::format("{}@{}", id, fmt::join(index, ","));
    for (auto it = memo_.rbegin(); it != memo_.rend(); ++it)
      if (auto found = it->find(key); found != it->end()) return found->second;
    std::string expr = compute(id, index);
    std::string name = fresh("v");
    line(fmt::format("const float {} = {};", name, expr));
    memo_.back()[key] = name;
    return name;
  }

  void line(const std::string& text) { body_ += std::string(indent_, ' ') + text + "\n"; }
  std::string fresh(const std::string& prefix) { return fmt::format("{}{}", prefix, counter_++); }
  void open_scope(const std::string& header) {
    line(header + " {");
    indent_ += 2;
    memo_.emplace_back();
  }
  void close_scope() {
    memo_.pop_back();
    indent_ -= 2;
    line("}");
  }

  const std::string& body() const { return body_; }
  const std::vector<ValueId>& inputs() const { return inputs_; }

 private:
  std::string input_name(ValueId id) {
    auto [it, added] = input_index_.try_emplace(id, inputs_.size());
    if (added) inputs_.push_back(id);
    return fmt::format("{}in{}", prefix_, it->second);
  }

  std::string compute(ValueId id, const Index& index) {
    const TensorType& type = scope_.types[static_cast<std::size_t>(id)];
    if (id == register_value_) {
      if (index != register_index_)
        throw IrError(fmt::format("value %{} is read at [{}], not at the element held", id, fmt::join(index, ", ")));
      return register_name_;
    }
    if (materialized_[static_cast<std::size_t>(id)]) {
      if (type.dtype != DType::f32)
        throw IrError(fmt::format("generated CUDA kernels read f32 values only, not {} (value %{})", to_string(type), id));
      return fmt::format("{}[{}]", input_name(id), flat_offset(index, type.shape));
    }
    const Op* op = scope_.producer[static_cast<std::size_t>(id)];
    if (op == nullptr) throw IrError(fmt::format("value %{} has no producer and is not in memory", id));
    auto operand = [&](std::size_t i) { return op->operands[i]; };
    auto broadcast = [&](std::size_t i) { return eval(operand(i), broadcast_index(index, shape(operand(i)))); };

    switch (op->kind) {
      case OpKind::constant: return float_literal(op->float_attr("value"));
      case OpKind::exp: return fmt::format("expf({})", broadcast(0));
      case OpKind::neg: return fmt::format("-{}", broadcast(0));
      case OpKind::sigmoid: return fmt::format("sigmoidf_({})", broadcast(0));
      case OpKind::tanh: return fmt::format("tanhf({})", broadcast(0));
      case OpKind::softplus: return fmt::format("softplusf_({})", broadcast(0));
      case OpKind::relu: {
        std::string x = broadcast(0);
        return fmt::format("({0} > 0.0f ? {0} : 0.0f)", x);
      }
      case OpKind::square: {
        std::string x = broadcast(0);
        return fmt::format("{0} * {0}", x);
      }
      case OpKind::add: return fmt::format("{} + {}", broadcast(0), broadcast(1));
      case OpKind::sub: return fmt::format("{} - {}", broadcast(0), broadcast(1));
      case OpKind::mul: return fmt::format("{} * {}", broadcast(0), broadcast(1));
      case OpKind::div: return fmt::format("{} / {}", broadcast(0), broadcast(1));
      case OpKind::lerp: {
        std::string a = broadcast(0), b = broadcast(1), t = broadcast(2);
        return fmt::format("{0} + ({1} - {0}) * {2}", a, b, t);
      }
      case OpKind::token_shift: {
        // Row 0 reads the previous call's row; only that branch touches `prev`.
        Index rest(index.begin() + 1, index.end());
        std::string result = fresh("v");
        line(fmt::format("float {};", result));
        open_scope(fmt::format("if ({} == 0)", index[0]));
        line(fmt::format("{} = {};", result, eval(operand(1), rest)));
        close_scope();
        open_scope("else");
        Index previous = index;
        previous[0] = fmt::format("({} - 1)", index[0]);
        line(fmt::format("{} = {};", result, eval(operand(0), previous)));
        close_scope();
        return result;
      }
      case OpKind::last_row: {
        Index source{fmt::format("({} - 1)", dim_text(shape(operand(0))[0]))};
        source.insert(source.end(), index.begin(), index.end());
        return eval(operand(0), source);
      }
      case OpKind::reshape: {
        const Shape& from = shape(operand(0));
        std::string flat = fresh("f");
        line(fmt::format("const i64 {} = {};", flat, flat_offset(index, type.shape)));
        Index source;
        std::string stride = "1";
        std::vector<std::string> strides(from.rank());
        for (std::size_t i = from.rank(); i-- > 0;) {
          strides[i] = stride;
          stride = fmt::format("{} * {}", stride, dim_text(from[i]));
        }
        for (std::size_t i = 0; i < from.rank(); ++i)
          source.push_back(i == 0 ? fmt::format("({} / ({}))", flat, strides[i])
                                  : fmt::format("(({} / ({})) % {})", flat, strides[i], dim_text(from[i])));
        return eval(operand(0), source);
      }
      case OpKind::reduce_sum: {
        Dim width = shape(operand(0)).back();
        if (is_head_group(operand(0), width)) return head_sum(operand(0), "", false);
        return group_sum(operand(0), index, "0", dim_text(width), "", false);
      }
      case OpKind::l2_norm: {
        std::string squares;
        if (is_head_group(operand(0), shape(operand(0)).back() / op->int_attr("groups"))) {
          squares = head_sum(operand(0), "", true);
        } else {
          auto [base, width] = group_of(op, index.back(), shape(operand(0)).back());
          squares = group_sum(operand(0), index, base, width, "", true);
        }
        return fmt::format("{} / fmaxf(sqrtf({}), {})", eval(operand(0), index), squares,
                           float_literal(op->float_attr("eps")));
      }
      case OpKind::group_norm:
      case OpKind::layer_norm: {
        if (op->kind == OpKind::layer_norm && row_statistics_ && index.size() == 2 && shape(operand(0)).rank() == 2 &&
            materialized_[static_cast<std::size_t>(operand(0))] && shape(operand(0)).back() != kSeq &&
            known_before_the_loop(index[0])) {
          const RowStats& stats = row_stats(operand(0), index[0], op->float_attr("eps"));
          Index channel{index.back()};
          return fmt::format("({} - {}) * {} * {} + {}", eval(operand(0), index), stats.mean, stats.inv_std,
                             eval(operand(1), channel), eval(operand(2), channel));
        }
        std::string mean, squares, width;
        if (op->kind == OpKind::group_norm &&
            is_head_group(operand(0), shape(operand(0)).back() / op->int_attr("groups"))) {
          width = std::to_string(head_->width);
          mean = fmt::format("({} / (float)({}))", head_sum(operand(0), "", false), width);
          squares = head_sum(operand(0), mean, true);
        } else {
          std::string base;
          std::tie(base, width) = op->kind == OpKind::layer_norm
                                      ? std::pair<std::string, std::string>{"0", dim_text(shape(operand(0)).back())}
                                      : group_of(op, index.back(), shape(operand(0)).back());
          mean = fresh("m");
          line(fmt::format("const float {} = {} / (float)({});", mean,
                           group_sum(operand(0), index, base, width, "", false), width));
          squares = group_sum(operand(0), index, base, width, mean, true);
        }
        Index channel{index.back()};
        return fmt::format("({} - {}) * (1.0f / sqrtf({} / (float)({}) + {})) * {} + {}", eval(operand(0), index), mean,
                           squares, width, float_literal(op->float_attr("eps")), eval(operand(1), channel),
                           eval(operand(2), channel));
      }
      default: break;
    }
    throw IrError(fmt::format("a generated CUDA kernel cannot evaluate '{}' inline", op_name(op->kind)));
  }

  // Whether a row expression reads only d0 and T (the block's row and the length), so that
  // the prologue can evaluate it before the per-element loop.
  static bool known_before_the_loop(std::string row) {
    for (const char* name : {"d0", "T"})
      for (std::size_t at = row.find(name); at != std::string::npos; at = row.find(name)) row.erase(at, std::strlen(name));
    return row.find_first_not_of("0123456789()+-* ") == std::string::npos;
  }

  struct RowStats {
    ValueId value;
    std::string row, eps;
    std::string mean, inv_std, input, width, rows, row_name;
  };
  const RowStats& row_stats(ValueId x, const std::string& row, double eps) {
    std::string eps_text = float_literal(eps);
    for (const RowStats& stats : row_stats_)
      if (stats.value == x && stats.row == row && stats.eps == eps_text) return stats;
    const Shape& from = shape(x);
    row_stats_.push_back({x, row, eps_text, fresh("row_mean"), fresh("row_inv_std"), input_name(x),
                          dim_text(from.back()), dim_text(from[0]), fresh("row")});
    return row_stats_.back();
  }

  // The group of the last axis that element `last` of an l2_norm / group_norm belongs to.
  std::pair<std::string, std::string> group_of(const Op* op, const std::string& last, Dim columns) {
    std::int64_t width = columns / op->int_attr("groups");
    std::string base = fresh("g");
    line(fmt::format("const i64 {} = ({} / {}) * {};", base, last, width, width));
    return {base, std::to_string(width)};
  }

  // Element j of the block's head in a value `x` of a head-major layout ([T, C], [C], [T, H, N],
  // [H, N]; the one token is row 0), or nothing for any other shape.
  std::optional<Index> head_channel(ValueId x, const std::string& j) const {
    const Shape& s = shape(x);
    Dim H = head_->heads, N = head_->width;
    std::string head = fmt::format("(i64){}", head_->head);
    std::string channel = fmt::format("({} * {} + {})", head, N, j);
    if (s == Shape{kSeq, H * N}) return Index{head_->row, channel};
    if (s == Shape{H * N}) return Index{channel};
    if (s == Shape{kSeq, H, N}) return Index{head_->row, head, j};
    if (s == Shape{H, N}) return Index{head, j};
    return std::nullopt;
  }

  // Whether a sum over groups of `group_width` elements of x's last axis is a sum over the
  // block's head, so that head_sum() can compute it once for the block.
  bool is_head_group(ValueId x, Dim group_width) const {
    return head_ && group_width == head_->width && head_channel(x, "0");
  }

  // The sum over the block's head of x (squared, less `mean`, if asked), emitted once into the
  // head prologue: each thread sums its channels, then one block reduction; the result is a
  // name the prologue declares. `mean` may only name prologue values.
  std::string head_sum(ValueId x, const std::string& mean, bool squared) {
    std::string key = fmt::format("{}|{}|{}", x, mean, squared);
    if (auto found = head_sums_.find(key); found != head_sums_.end()) return found->second;
    // The prologue is code of its own: set the element body aside (a sum the summand reads is
    // emitted, complete, ahead of this one).
    std::string saved_body = std::exchange(body_, "");
    auto saved_memo = std::exchange(memo_, decltype(memo_)(1));
    int saved_indent = std::exchange(indent_, 2);
    // Prologue names carry the prefix: two phases' prologues share the kernel's scope.
    std::string part = fresh(prefix_ + "head_part"), j = fresh("j");
    line(fmt::format("float {} = 0.0f;", part));
    open_scope(fmt::format("for (int {0} = threadIdx.x; {0} < {1}; {0} += blockDim.x)", j, head_->width));
    std::string v = eval(x, *head_channel(x, j));
    if (!mean.empty()) {
      std::string d = fresh("v");
      line(fmt::format("const float {} = {} - {};", d, v, mean));
      v = d;
    }
    line(squared ? fmt::format("{0} += {1} * {1};", part, v) : fmt::format("{} += {};", part, v));
    close_scope();
    std::string sum = fresh(prefix_ + "head_sum");
    line(fmt::format("const float {} = block_sum({}, {}head_scratch);", sum, part, prefix_));
    head_prologue_ += body_;
    body_ = std::move(saved_body);
    memo_ = std::move(saved_memo);
    indent_ = saved_indent;
    head_sums_.emplace(key, sum);
    return sum;
  }

  // Sum over j < width of x at index with its last axis base + j (squared, less `mean`, if asked).
  std::string group_sum(ValueId x, const Index& index, const std::string& base, const std::string& width,
                        const std::string& mean, bool squared) {
    std::string sum = fresh("s"), j = fresh("j");
    line(fmt::format("float {} = 0.0f;", sum));
    line("#pragma unroll 8");  // the loads of several elements in flight at once
    open_scope(fmt::format("for (i64 {0} = 0; {0} < {1}; ++{0})", j, width));
    Index at = index;
    at.back() = base == "0" ? j : fmt::format("({} + {})", base, j);
    std::string v = eval(x, at);
    if (!mean.empty()) {
      std::string d = fresh("v");
      line(fmt::format("const float {} = {} - {};", d, v, mean));
      v = d;
    }
    line(squared ? fmt::format("{0} += {1} * {1};", sum, v) : fmt::format("{} += {};", sum, v));
    close_scope();
    return sum;
  }

  const CodegenScope& scope_;
  const std::vector<bool>& materialized_;
  std::vector<std::map<std::string, std::string>> memo_;
  std::vector<ValueId> inputs_;
  std::map<ValueId, std::size_t> input_index_;
  std::string body_;
  std::string prefix_;  // of the pointer names: `prefix`in0..., `prefix`out0...
  bool row_statistics_ = false;
  std::vector<RowStats> row_stats_;
  std::optional<HeadBlock> head_;
  std::string head_prologue_;
  std::map<std::string, std::string> head_sums_;  // by summand: the prologue's name for the sum
  ValueId register_value_ = kNoValue;
  Index register_index_;
  std::string register_name_;
  int indent_ = 4;
  int counter_ = 0;
};

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

// Stores every output at its element of the domain point `index`.
void emit_outputs(Emitter& emitter, std::span<const ValueId> outputs, const Shape& domain, const Index& index) {
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const Shape& shape = emitter.shape(outputs[o]);
    // An output smaller than the domain is written once, by the threads at index 0 of the
    // dimensions it broadcasts along.
    std::vector<std::string> guards;
    std::size_t offset = domain.rank() - shape.rank();
    for (std::size_t i = 0; i < domain.rank(); ++i)
      if ((i < offset || shape[i - offset] == 1) && domain[i] != 1) guards.push_back(index[i] + " == 0");
    Index at = broadcast_index(index, shape);
    if (!guards.empty()) emitter.open_scope(fmt::format("if ({})", fmt::join(guards, " && ")));
    std::string v = emitter.eval(outputs[o], at);
    emitter.line(fmt::format("{}out{}[{}] = {};", emitter.prefix(), o, flat_offset(at, shape), emitter.stored(outputs[o], v)));
    if (!guards.empty()) emitter.close_scope();
  }
}

Index domain_index(const Shape& domain) {
  Index index;
  for (std::size_t i = 0; i < domain.rank(); ++i) index.push_back(fmt::format("d{}", i));
  return index;
}

std::uint64_t fnv1a(std::string_view text);

// A block per row of a [rows, C] domain, when a layer_norm of a materialised value feeds the
// outputs (a token shift mix that starts with its layer norm): the row statistics are reduced
// once per block instead of by every element. Null when no layer_norm is there to gain from.
std::optional<FusedKernel> generate_row_group(const CodegenScope& scope, const std::vector<ValueId>& outputs,
                                              const std::vector<std::size_t>& positions, const Shape& domain,
                                              const std::vector<bool>& materialized) {
  if (domain.rank() != 2 || domain[1] == kSeq) return std::nullopt;
  Emitter emitter(scope, materialized);
  emitter.use_row_statistics();
  emit_outputs(emitter, outputs, domain, domain_index(domain));
  if (!emitter.used_row_statistics()) return std::nullopt;
  std::string params = "i64 T";
  for (std::size_t o = 0; o < outputs.size(); ++o) params += fmt::format(", {} out{}", emitter.output_pointer(outputs[o]), o);
  for (std::size_t i = 0; i < emitter.inputs().size(); ++i) params += fmt::format(", const float* __restrict__ in{}", i);
  std::string text = fmt::format(
      "({}) {{\n  (void)T;\n  kernel_entry();\n  __shared__ float row_scratch[32];\n  const i64 d0 = blockIdx.x;\n{}"
      "  for (i64 d1 = threadIdx.x; d1 < {}; d1 += blockDim.x) {{\n{}  }}\n}}\n",
      params, emitter.row_statistics_prologue(), domain[1], emitter.body());
  std::string name = fmt::format("fused_rows_{:016x}", fnv1a(text));
  FusedKernel kernel{name, fmt::format("extern \"C\" __global__ void {}{}", name, text), outputs, positions,
                     emitter.inputs(), domain};
  kernel.block_per_row = true;
  return kernel;
}

FusedKernel generate_group(const CodegenScope& scope, const std::vector<ValueId>& outputs,
                           std::vector<std::size_t> positions, const Shape& domain, const std::vector<bool>& materialized) {
  if (auto rows = generate_row_group(scope, outputs, positions, domain, materialized)) return *rows;
  Emitter emitter(scope, materialized);
  emit_outputs(emitter, outputs, domain, domain_index(domain));

  std::string params = "i64 T";
  for (std::size_t o = 0; o < outputs.size(); ++o) params += fmt::format(", {} out{}", emitter.output_pointer(outputs[o]), o);
  for (std::size_t i = 0; i < emitter.inputs().size(); ++i) params += fmt::format(", const float* __restrict__ in{}", i);
  std::string decode = "    i64 rest = e;\n";
  for (std::size_t i = domain.rank(); i-- > 0;) {
    if (i == 0)
      decode += "    const i64 d0 = rest;\n";
    else
      decode += fmt::format("    const i64 d{0} = rest % {1};\n    rest /= {1};\n", i, dim_text(domain[i]));
  }
  std::string count = "1";
  for (Dim d : domain.dims()) count += " * " + dim_text(d);
  std::string text = fmt::format(
      "(i64 T{}) {{\n  (void)T;\n  kernel_entry();\n  const i64 count = {};\n"
      "  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < count; e += (i64)gridDim.x * blockDim.x) {{\n"
      "{}{}  }}\n}}\n",
      params.substr(5), count, domain.rank() > 0 ? decode : "", emitter.body());
  std::string name = fmt::format("fused_{:016x}", fnv1a(text));
  return {name, fmt::format("extern \"C\" __global__ void {}{}", name, text), outputs, std::move(positions),
          emitter.inputs(), domain};
}

}  // namespace

EpilogueKernel generate_gemv_epilogue(const CodegenScope& scope, std::span<const ValueId> outputs,
                                      const std::vector<bool>& materialized, ValueId accumulator,
                                      const std::string& weight_type) {
  const Shape& domain = scope.types[static_cast<std::size_t>(accumulator)].shape;
  for (ValueId id : outputs)
    if (!broadcasts_to(scope.types[static_cast<std::size_t>(id)].shape, domain))
      throw IrError(fmt::format("output %{} does not broadcast to the product's shape", id));
  Emitter emitter(scope, materialized);
  Index index = domain_index(domain);
  emitter.hold_in_register(accumulator, index, "acc");
  emit_outputs(emitter, outputs, domain, index);

  // The GEMV stores row m, column n; the product's element is (m, n), or (n) without rows.
  std::string members = "  i64 T;\n", params = "const float* x, const @W@* w, int K, int N, i64 T", init = "T";
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    members += fmt::format("  float* out{};\n", o);
    params += fmt::format(", float* out{}", o);
    init += fmt::format(", out{}", o);
  }
  for (std::size_t i = 0; i < emitter.inputs().size(); ++i) {
    members += fmt::format("  const float* in{};\n", i);
    params += fmt::format(", const float* __restrict__ in{}", i);
    init += fmt::format(", in{}", i);
  }
  std::string position = domain.rank() == 2 ? "    const i64 d0 = m, d1 = n;\n" : "    const i64 d0 = n;\n    (void)m;\n";
  std::string text = fmt::format(
      "struct @NAME@_store {{\n{}"
      "  __device__ __forceinline__ void operator()(float*, int, int m, int n, float acc) const {{\n{}{}  }}\n}};\n"
      "extern \"C\" __global__ void GEMV_LAUNCH_BOUNDS @NAME@({}) {{\n"
      "  gemv_rows<@W@, 1, true>(x, w, nullptr, K, N, @NAME@_store{{{}}}, blockIdx.x);\n}}\n",
      members, position, emitter.body(), params, init);
  auto replace_all = [](std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
    return text;
  };
  text = replace_all(text, "@W@", weight_type);
  std::string name = fmt::format("gemv_epilogue_{:016x}", fnv1a(text));
  return {name, replace_all(text, "@NAME@", name), emitter.inputs(), outputs.size()};
}

ElementCode generate_element_code(const CodegenScope& scope, std::span<const ValueId> outputs,
                                  const std::vector<bool>& materialized, const Shape& domain, const std::string& prefix,
                                  const std::optional<HeadBlock>& head, bool row_statistics) {
  for (ValueId id : outputs)
    if (!broadcasts_to(scope.types[static_cast<std::size_t>(id)].shape, domain))
      throw IrError(fmt::format("output %{} does not broadcast to the domain {}", id, to_string(domain)));
  Emitter emitter(scope, materialized);
  emitter.set_prefix(prefix);
  if (head) emitter.use_head_reductions(*head);
  if (row_statistics) emitter.use_row_statistics();
  emit_outputs(emitter, outputs, domain, domain_index(domain));
  std::string prologue = emitter.head_prologue();
  if (emitter.used_row_statistics())
    prologue = "  __shared__ float row_scratch[32];\n" + emitter.row_statistics_prologue() + prologue;
  return {prologue, emitter.body(), emitter.inputs()};
}

bool is_generatable(OpKind kind) {
  switch (kind) {
    case OpKind::constant:
    case OpKind::lerp:
    case OpKind::token_shift:
    case OpKind::last_row:
    case OpKind::reshape:
    case OpKind::reduce_sum:
    case OpKind::l2_norm:
    case OpKind::group_norm:
    case OpKind::layer_norm: return true;
    default: return is_unary_elementwise(kind) || is_binary_elementwise(kind);
  }
}

std::vector<FusedKernel> generate_fused(const CodegenScope& scope, std::span<const ValueId> outputs,
                                        const std::vector<bool>& materialized) {
  auto shape = [&](std::size_t position) -> const Shape& {
    return scope.types[static_cast<std::size_t>(outputs[position])].shape;
  };
  std::vector<std::size_t> left(outputs.size());
  for (std::size_t i = 0; i < left.size(); ++i) left[i] = i;
  std::vector<FusedKernel> kernels;
  while (!left.empty()) {
    std::size_t largest = left.front();
    for (std::size_t p : left)
      if (size_rank(shape(p)) > size_rank(shape(largest))) largest = p;
    Shape domain = shape(largest);
    std::vector<std::size_t> group, rest;
    for (std::size_t p : left) (broadcasts_to(shape(p), domain) ? group : rest).push_back(p);
    std::vector<ValueId> ids;
    for (std::size_t p : group) ids.push_back(outputs[p]);
    kernels.push_back(generate_group(scope, ids, group, domain, materialized));
    left = std::move(rest);
  }
  return kernels;
}

}  // namespace rwkvc::cuda
