#include "backends/vulkan/wkv_region.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/glsl_builder.h"

namespace rwkvc::vulkan {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// Where a value's element for (token t, channel c of head h) lives: every value of the region
// is per channel ([C] or [H, N]), per head ([H, 1]) or one number, each optionally per token.
enum class Layout { channel, head, scalar };
struct Place {
  Layout layout;
  bool per_token;
};

std::optional<Place> classify(const Shape& shape, std::int64_t heads, std::int64_t n) {
  std::vector<Dim> dims(shape.dims().begin(), shape.dims().end());
  bool per_token = !dims.empty() && dims[0] == kSeq;
  if (per_token) dims.erase(dims.begin());
  if (std::find(dims.begin(), dims.end(), kSeq) != dims.end()) return std::nullopt;
  auto is = [&](std::initializer_list<Dim> want) { return std::equal(dims.begin(), dims.end(), want.begin(), want.end()); };
  if (is({heads * n}) || is({heads, n})) return Place{Layout::channel, per_token};
  if (is({heads, 1})) return Place{Layout::head, per_token};
  if (dims.empty() || is({1})) return Place{Layout::scalar, per_token};
  return std::nullopt;
}

// The element's index for token `t` (a GLSL expression).
std::string element_index(Place place, std::string_view t = "t") {
  switch (place.layout) {
    case Layout::channel: return place.per_token ? fmt::format("{} * C + c", t) : "c";
    case Layout::head: return place.per_token ? fmt::format("{} * H + h", t) : "h";
    case Layout::scalar: return place.per_token ? std::string(t) : "0u";
  }
  return "0u";
}

// The region's tail out = (group_norm(y; weight, bias) + bonus) * gate, where the group norm's
// result, the sum and the weight and bias are read nowhere else and `out` is a yield only.
struct GroupNormTail {
  ValueId input, weight, bias, norm, bonus, gate, gated;
  double eps;
};

std::optional<GroupNormTail> find_group_norm_tail(const Region& region, std::int64_t heads) {
  auto readers = [&](ValueId id) {
    std::vector<const Op*> found;
    for (const Op& op : region.ops)
      if (std::find(op.operands.begin(), op.operands.end(), id) != op.operands.end()) found.push_back(&op);
    return found;
  };
  auto yielded = [&](ValueId id) { return std::count(region.yields.begin(), region.yields.end(), id); };
  auto other = [](const Op& op, ValueId id) { return op.operands[0] == id ? op.operands[1] : op.operands[0]; };
  for (const Op& norm : region.ops) {
    if (norm.kind != OpKind::group_norm || norm.int_attr("groups") != heads || norm.operands.size() != 3) continue;
    GroupNormTail tail{norm.operands[0], norm.operands[1], norm.operands[2], norm.results[0], kNoValue, kNoValue,
                       kNoValue, norm.float_attr("eps")};
    if (at(tail.weight) >= region.arguments || at(tail.bias) >= region.arguments || tail.weight == tail.bias ||
        readers(tail.weight).size() != 1 || readers(tail.bias).size() != 1)
      return std::nullopt;
    std::vector<const Op*> sums = readers(tail.norm);
    if (sums.size() != 1 || yielded(tail.norm) != 0 || sums[0]->kind != OpKind::add ||
        sums[0]->operands[0] == sums[0]->operands[1])
      return std::nullopt;
    tail.bonus = other(*sums[0], tail.norm);
    ValueId sum = sums[0]->results[0];
    std::vector<const Op*> gates = readers(sum);
    if (gates.size() != 1 || yielded(sum) != 0 || gates[0]->kind != OpKind::mul ||
        gates[0]->operands[0] == gates[0]->operands[1])
      return std::nullopt;
    tail.gate = other(*gates[0], sum);
    tail.gated = gates[0]->results[0];
    if (!readers(tail.gated).empty() || yielded(tail.gated) != 1) return std::nullopt;
    return tail;
  }
  return std::nullopt;
}

// Builds the kernel's per-token body from the region's ops; fails (nullopt) on anything else.
// With a group norm tail (`tail`), the kernel stores the group norm's input, the bonus and the
// gate in place of the gated output (three outputs for that yield); the group norm's weight and
// bias keep their input places (so the folded ups' indices hold) but are not read.
class WkvKernel {
 public:
  // `split` invocations per state row (1: one invocation per row; more needs subgroup shuffles).
  // `prefetch`: each token's loaded inputs are read one token ahead (the first token's before
  // the state), so their latency overlaps the state's load or the previous token's step.
  // `ups_ahead`: likewise the folded LoRA ups, computed a token ahead (the first token's before
  // the state is staged), so their loads overlap the state's and each other's.
  WkvKernel(const Region& region, std::int64_t heads, std::int64_t n, std::int64_t split, bool prefetch,
            bool ups_ahead, std::map<std::size_t, LoraUp> ups = {}, std::optional<GroupNormTail> tail = {},
            std::int64_t groups = 1)
      : region_(region), heads_(heads), n_(n), split_(split), groups_(groups), prefetch_(prefetch),
        ups_ahead_(ups_ahead), ups_(std::move(ups)), tail_(tail) {}

  bool add(const Op& op) {
    // With a head over several workgroups, an invocation's recurrence result is another
    // channel's (its state row's): only the tail's unread group norm may take it.
    bool reads_result = std::find(op.operands.begin(), op.operands.end(), result_) != op.operands.end();
    if (groups_ > 1 && reads_result && !(tail_ && op.kind == OpKind::group_norm && op.results[0] == tail_->norm))
      return false;
    auto result_place = [&](std::size_t k) { return classify(region_.values[at(op.results[k])].shape, heads_, n_); };
    if (op.kind == OpKind::wkv7) return add_recurrence(op);
    if (op.results.size() != 1) return false;
    std::optional<Place> place = result_place(0);
    if (!place) return false;
    if (tail_ && op.kind == OpKind::group_norm && op.results[0] == tail_->norm) return add_unread_norm(op, *place);
    std::vector<std::string> x;
    for (ValueId id : op.operands) {
      auto name = value(id);
      if (!name) return false;
      x.push_back(*name);
    }
    std::string v = fmt::format("v{}", op.results[0]);
    const Shape& in = op.operands.empty() ? Shape{} : region_.values[at(op.operands[0])].shape;
    std::string statement;
    if (op.kind == OpKind::constant) {
      statement = fmt::format("float {} = {};", v, glsl_float(op.float_attr("value")));
    } else if (is_unary_elementwise(op.kind)) {
      softplus_ = softplus_ || op.kind == OpKind::softplus;
      statement = fmt::format("float {0}; {{ float x = {1}; {0} = {2}; }}", v, x[0], unary_expression(op.kind));
    } else if (is_binary_elementwise(op.kind)) {
      statement = fmt::format("float {} = {} {} {};", v, x[0], binary_operator(op.kind), x[1]);
    } else if (op.kind == OpKind::lerp) {
      statement = fmt::format("float {0}; {{ float a = {1}; {0} = a + ({2} - a) * {3}; }}", v, x[0], x[1], x[2]);
    } else if (op.kind == OpKind::reshape) {
      std::optional<Place> from = classify(in, heads_, n_);
      if (!from || from->layout != place->layout || from->per_token != place->per_token) return false;
      statement = fmt::format("float {} = {};", v, x[0]);
    } else if (op.kind == OpKind::l2_norm) {
      if (place->layout != Layout::channel || in.back() / op.int_attr("groups") != n_) return false;
      statement = fmt::format("float {0}; {{ float x = {1}; {0} = x / max(sqrt(head_sum(x * x)), {2}); }}", v, x[0],
                              glsl_float(op.float_attr("eps")));
    } else if (op.kind == OpKind::group_norm) {
      if (place->layout != Layout::channel || op.int_attr("groups") != heads_) return false;
      statement = fmt::format(
          "float {0}; {{ float x = {1}; float mean = head_sum(x) / float(N); float d = x - mean;\n"
          "      {0} = d * (1.0 / sqrt(head_sum(d * d) / float(N) + {4})) * {2} + {3}; }}",
          v, x[0], x[1], x[2], glsl_float(op.float_attr("eps")));
    } else if (op.kind == OpKind::reduce_sum) {
      std::optional<Place> from = classify(in, heads_, n_);
      if (!from || from->layout != Layout::channel || in.back() != n_ || place->layout != Layout::head) return false;
      statement = fmt::format("float {} = head_sum({});", v, x[0]);
    } else {
      return false;
    }
    body_ += "    " + statement + "\n";
    places_[op.results[0]] = *place;
    return true;
  }

  // Stores a yield (a per-token channel value, or the recurrence's new state). Yields take the outputs in order; with a tail, its gated yield takes three (the group
  // norm's input, the bonus, the gate).
  bool yield(ValueId id) {
    if (id == state_out_) {
      state_binding_ = outputs_++;
      return true;
    }
    std::vector<ValueId> stored{id};
    if (tail_ && id == tail_->gated) stored = {tail_->input, tail_->bonus, tail_->gate};
    for (ValueId part : stored) {
      auto name = value(part);
      auto place = classify(region_.values[at(part)].shape, heads_, n_);
      if (!name || !place || place->layout != Layout::channel || !place->per_token) return false;
      if (groups_ == 1)
        stores_ += fmt::format("    if (q == 0u) store_out{}(t * C + c, {});\n", outputs_++, *name);
      else if (part == result_)  // this invocation's state row's
        stores_ += fmt::format("    if (rq == 0u) store_out{}(t * C + h * N + ri, {});\n", outputs_++, *name);
      else  // each channel from the workgroup of its row
        stores_ += fmt::format("    if (q == 0u && i / ROWS == g) store_out{}(t * C + c, {});\n", outputs_++, *name);
    }
    return true;
  }
  std::size_t outputs() const { return outputs_; }
  // The input places of the tail's group norm weight and bias (bindings of the kernel).
  std::size_t input_of(ValueId id) const {
    return static_cast<std::size_t>(std::find(inputs_.begin(), inputs_.end(), id) - inputs_.begin());
  }

  bool complete() const { return recurrences_ == 1 && state_binding_.has_value(); }
  const std::vector<ValueId>& inputs() const { return inputs_; }
  ValueId state_input() const { return state_in_; }

  KernelSource source(const DeviceFeatures& features, std::size_t outputs) const {
    std::string label = split_ > 1 ? fmt::format("wkv region split{} H{} N{} fused {} inputs", split_, heads_, n_, inputs_.size())
                                   : fmt::format("wkv region H{} N{} fused {} inputs", heads_, n_, inputs_.size());
    if (prefetch_ && inputs_.size() > ups_.size()) label += " prefetched";
    if (ups_ahead_ && !ups_.empty()) label += " ups ahead";
    if (tail_) label += " group norm out";
    if (groups_ > 1) label += fmt::format(" groups{}", groups_);
    GlslBuilder shader(features, label);
    for (std::size_t k = 0; k < inputs_.size(); ++k)
      shader.buffer(fmt::format("in{}", k), region_.values[at(inputs_[k])].dtype, Access::read,
                    ups_.contains(k) && ups_.at(k).rank % 8 == 0);
    for (const auto& [k, up] : ups_) shader.buffer(fmt::format("up{}", k), up.dtype, Access::read, up.rank % 8 == 0);
    shader.buffer("state_in", DType::f32, Access::read);
    for (std::size_t k = 0; k < outputs; ++k) shader.buffer(fmt::format("out{}", k), DType::f32, Access::write);
    shader.push({"T"});
    shader.local_size(static_cast<std::uint32_t>(n_ * split_));
    shader.use_workgroup_sum();
    shader.define("N", fmt::format("{}u", n_));
    shader.define("H", fmt::format("{}u", heads_));
    shader.define("C", fmt::format("{}u", heads_ * n_));
    shader.define("SPLIT", fmt::format("{}u", split_));
    // A head's state rows over GROUPS workgroups: each runs ROWS rows, RLANES invocations a row
    // (all N channels' values are still computed in each, SPLIT invocations a channel).
    std::int64_t row_lanes = split_ * groups_;
    shader.define("GROUPS", fmt::format("{}u", groups_));
    shader.define("ROWS", fmt::format("{}u", n_ / groups_));
    shader.define("RLANES", fmt::format("{}u", row_lanes));
    shader.define("PART", fmt::format("{}u", n_ / row_lanes));
    if (row_lanes > 1) {
      shader.use_subgroups();
      shader.extension("GL_KHR_shader_subgroup_shuffle");
      // A row's RLANES invocations are neighbours in one subgroup: butterfly shuffles close its
      // sums; likewise a channel's SPLIT invocations.
      shader.code(
          "float row_sum(float x) {\n"
          "  [[unroll]] for (uint m = 1u; m < RLANES; m <<= 1) x += subgroupShuffleXor(x, m);\n"
          "  return x;\n"
          "}\n"
          "float channel_sum(float x) {\n"
          "  [[unroll]] for (uint m = 1u; m < SPLIT; m <<= 1) x += subgroupShuffleXor(x, m);\n"
          "  return x;\n"
          "}\n");
    } else {
      shader.code("float row_sum(float x) { return x; }\nfloat channel_sum(float x) { return x; }\n");
    }
    // The channel ops run on every invocation of a row (the same value SPLIT times); a head's
    // sum counts each channel once, from the row's first invocation.
    shader.code("float head_sum(float x) { return workgroup_sum(gl_LocalInvocationIndex % SPLIT == 0u ? x : 0.0); }\n");
    if (softplus_) shader.code(kSoftplusHelper);
    // A folded LoRA up: channel c of token t is the hidden row t times row c of the up's
    // transpose ([C, rank]), read 8 at a time when the rank allows; a row's invocations take
    // every SPLIT-th part of the rank.
    for (const auto& [k, up] : ups_) {
      std::string loop = up.rank % 8 == 0 ?
          fmt::format("  [[unroll]] for (uint d = q; d < {0}u; d += SPLIT) {{\n"
                      "    vec4 hl, hh, wl, wh;\n"
                      "    load8_in{1}(t * {0}u + d, hl, hh); load8_up{1}(c * {0}u + d, wl, wh);\n"
                      "    s += dot(hl, wl) + dot(hh, wh);\n"
                      "  }}\n", up.rank / 8, k) :
          fmt::format("  for (uint d = q; d < {0}u; d += SPLIT) s += load_in{1}(t * {0}u + d) * load_up{1}(c * {0}u + d);\n",
                      up.rank, k);
      shader.code(fmt::format("float lora_up{}(uint t, uint c) {{\n  uint q = gl_LocalInvocationIndex % SPLIT;\n"
                              "  float s = 0.0;\n{}  return channel_sum(s);\n}}\n", k, loop));
    }
    // The state moves through shared memory when it fits, so its loads and stores are
    // coalesced; rows are padded by SPLIT floats, so a subgroup's reads of its rows' columns
    // fall in distinct banks. Else each invocation reads its columns directly.
    std::uint64_t invocations = static_cast<std::uint64_t>(n_ * split_);
    bool staged = static_cast<std::uint64_t>(n_ / groups_ * (n_ + row_lanes) + 7 * n_) * 4 + invocations * 4 + 1024 <=
                  features.shared_memory_bytes;
    std::string load_state = staged ?
        "  for (uint e = lid; e < ROWS * N; e += N * SPLIT) tile[(e / N) * (N + RLANES) + e % N] = load_state_in(first_row + e);\n"
        "  barrier();\n"
        "  [[unroll]] for (uint jj = 0u; jj < PART; ++jj) s[jj] = tile[(ri - g * ROWS) * (N + RLANES) + jj * RLANES + rq];\n" :
        "  [[unroll]] for (uint jj = 0u; jj < PART; ++jj) s[jj] = load_state_in(row + jj * RLANES + rq);\n";
    std::string store_state = staged ?
        fmt::format("  barrier();\n"
                    "  [[unroll]] for (uint jj = 0u; jj < PART; ++jj) tile[(ri - g * ROWS) * (N + RLANES) + jj * RLANES + rq] = s[jj];\n"
                    "  barrier();\n"
                    "  for (uint e = lid; e < ROWS * N; e += N * SPLIT) store_out{}(first_row + e, tile[(e / N) * (N + RLANES) + e % N]);\n",
                    *state_binding_) :
        fmt::format("  [[unroll]] for (uint jj = 0u; jj < PART; ++jj) store_out{}(row + jj * RLANES + rq, s[jj]);\n",
                    *state_binding_);
    std::string prefetch_loop = prefetch_first_.empty() ? "" :
        prefetch_take_ + "    if (t + 1u < pc.T) {\n      uint tn = t + 1u;\n" + prefetch_next_ + "    }\n";
    shader.code(fmt::format(
        "shared float r_[N], w_[N], k_[N], a_[N], b_[N]{};\n"
        "{}"
        "void main() {{\n"
        "  uint h = gl_WorkGroupID.x / GROUPS, g = gl_WorkGroupID.x % GROUPS;\n"
        "  uint lid = gl_LocalInvocationIndex, i = lid / SPLIT, q = lid % SPLIT;\n"
        "  uint ri = g * ROWS + lid / RLANES, rq = lid % RLANES;  // the state row and its columns' part\n"
        "  uint c = h * N + i, row = h * N * N + ri * N, first_row = h * N * N + g * ROWS * N;\n"
        "  float s[PART];\n"
        "{}{}"
        "  for (uint t = 0u; t < pc.T; ++t) {{\n"
        "{}{}{}"
        "  }}\n"
        "{}"
        "}}\n",
        groups_ > 1 ? ", v_[N]" : "", staged ? "shared float tile[ROWS * (N + RLANES)];\n" : "", prefetch_first_, load_state, prefetch_loop,
        body_, stores_, store_state));
    return shader.finish();
  }

 private:
  // The GLSL name of `id` in the token's body: arguments are loaded where first read.
  std::optional<std::string> value(ValueId id) {
    if (places_.contains(id)) return fmt::format("v{}", id);
    if (at(id) >= region_.arguments || id == state_in_) return std::nullopt;
    auto place = classify(region_.values[at(id)].shape, heads_, n_);
    if (!place) return std::nullopt;
    if (ups_.contains(inputs_.size())) {
      if (place->layout != Layout::channel || !place->per_token) return std::nullopt;
      std::size_t k = inputs_.size();
      if (ups_ahead_) {
        prefetch_first_ += fmt::format("  float p{} = lora_up{}(0u, c);\n", id, k);
        prefetch_take_ += fmt::format("    float v{0} = p{0};\n", id);
        prefetch_next_ += fmt::format("      p{} = lora_up{}(tn, c);\n", id, k);
      } else {
        body_ += fmt::format("    float v{} = lora_up{}(t, c);\n", id, k);
      }
    } else if (prefetch_) {
      std::size_t k = inputs_.size();
      prefetch_first_ += fmt::format("  float p{} = load_in{}({});\n", id, k, element_index(*place, "0u"));
      prefetch_take_ += fmt::format("    float v{0} = p{0};\n", id);
      if (place->per_token) prefetch_next_ += fmt::format("      p{} = load_in{}({});\n", id, k, element_index(*place, "tn"));
    } else {
      body_ += fmt::format("    float v{} = load_in{}({});\n", id, inputs_.size(), element_index(*place));
    }
    inputs_.push_back(id);
    places_[id] = *place;
    return fmt::format("v{}", id);
  }

  // The tail's group norm: its weight and bias take their input places unread; its value is
  // not used (the sum and the gated product it feeds are not stored).
  bool add_unread_norm(const Op& op, Place place) {
    if (!value(op.operands[0])) return false;
    for (ValueId id : {op.operands[1], op.operands[2]}) {
      if (places_.contains(id) || at(id) >= region_.arguments || ups_.contains(inputs_.size())) return false;
      inputs_.push_back(id);
      places_[id] = place;  // read by no other op (find_group_norm_tail)
    }
    body_ += fmt::format("    float v{} = 0.0;\n", op.results[0]);
    places_[op.results[0]] = place;
    return true;
  }

  // wkv7(r, w, k, v, a, b, state): this invocation's columns (j = jj * SPLIT + q) of its row of
  // the head's state, one token; the row's sums are closed over its SPLIT invocations.
  bool add_recurrence(const Op& op) {
    if (++recurrences_ != 1 || at(op.operands[6]) >= region_.arguments) return false;
    state_in_ = op.operands[6];
    state_out_ = op.results[1];
    std::vector<std::string> x;
    for (std::size_t k = 0; k < 6; ++k) {
      auto place = classify(region_.values[at(op.operands[k])].shape, heads_, n_);
      auto name = value(op.operands[k]);
      if (!place || !name || place->layout != Layout::channel || !place->per_token) return false;
      x.push_back(*name);
    }
    body_ += fmt::format(
        "    barrier();\n"
        "    if (q == 0u) {{ r_[i] = {0}; w_[i] = {1}; k_[i] = {2}; a_[i] = {4}; b_[i] = {5};{7} }}\n"
        "    barrier();\n"
        "    float v{6} = 0.0;\n"
        "    {{\n"
        "      float sa = 0.0;\n"
        "      [[unroll]] for (uint jj = 0u; jj < PART; ++jj) sa += s[jj] * a_[jj * RLANES + rq];\n"
        "      sa = row_sum(sa);\n"
        "      [[unroll]] for (uint jj = 0u; jj < PART; ++jj) {{\n"
        "        uint j = jj * RLANES + rq;\n"
        "        s[jj] = s[jj] * w_[j] + sa * b_[j] + {8} * k_[j];\n"
        "        v{6} += s[jj] * r_[j];\n"
        "      }}\n"
        "      v{6} = row_sum(v{6});\n"
        "    }}\n",
        x[0], x[1], x[2], x[3], x[4], x[5], op.results[0],
        // Several workgroups a head: a row's v is another invocation's channel.
        groups_ > 1 ? fmt::format(" v_[i] = {};", x[3]) : "", groups_ > 1 ? "v_[ri]" : x[3]);
    places_[op.results[0]] = Place{Layout::channel, true};
    result_ = op.results[0];
    return true;
  }

  const Region& region_;
  std::int64_t heads_, n_, split_, groups_;
  bool prefetch_, ups_ahead_;
  std::map<std::size_t, LoraUp> ups_;  // by input: inputs computed in the kernel
  std::optional<GroupNormTail> tail_;
  std::size_t outputs_ = 0;
  std::string body_, stores_;
  std::string prefetch_first_, prefetch_take_, prefetch_next_;  // inputs (and ups) one token ahead
  std::map<ValueId, Place> places_;
  std::vector<ValueId> inputs_;
  ValueId state_in_ = kNoValue, state_out_ = kNoValue, result_ = kNoValue;
  std::optional<std::size_t> state_binding_;
  int recurrences_ = 0;
  bool softplus_ = false;
};

// Invocations per state row: RWKVC_VULKAN_WKV_TOKEN_SPLIT (default 4; 0 or 1 keep one
// invocation per row, the kernel before the split) where the device and the head size allow.
std::int64_t row_split(const DeviceFeatures& features, std::int64_t n) {
  std::int64_t split = 4;
  if (const char* env = std::getenv("RWKVC_VULKAN_WKV_TOKEN_SPLIT"); env != nullptr && *env != '\0') {
    std::string_view text(env);
    if (text == "0" || text == "1") return 1;
    if (text == "2") split = 2;
    else if (text == "4") split = 4;
    else if (text == "8") split = 8;
    else throw std::invalid_argument(fmt::format("RWKVC_VULKAN_WKV_TOKEN_SPLIT='{}': expected 0, 1, 2, 4 or 8", text));
  }
  bool fits = features.subgroup_shuffle && features.subgroup_size % split == 0 && n % split == 0 &&
              n * split <= static_cast<std::int64_t>(features.max_workgroup_invocations);
  return fits ? split : 1;
}

// Workgroups a head with the group norm fold: RWKVC_VULKAN_WKV_GROUPS=1|2|4|8 (default 1) where
// a state row's SPLIT * groups invocations fit in a subgroup and divide the head size.
std::int64_t head_groups(const DeviceFeatures& features, std::int64_t n, std::int64_t split) {
  const char* env = std::getenv("RWKVC_VULKAN_WKV_GROUPS");
  if (env == nullptr || *env == '\0') return 1;
  std::string_view text(env);
  if (text != "1" && text != "2" && text != "4" && text != "8")
    throw std::invalid_argument(fmt::format("RWKVC_VULKAN_WKV_GROUPS='{}': expected 1, 2, 4 or 8", text));
  std::int64_t groups = text[0] - '0', lanes = split * groups;
  bool fits = features.subgroup_shuffle && features.subgroup_size % lanes == 0 && n % lanes == 0;
  return fits ? groups : 1;
}

// A 0|1 switch read from the environment (default 0).
bool switch_on(const char* name) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return false;
  std::string_view text(env);
  if (text != "0" && text != "1") throw std::invalid_argument(fmt::format("{}='{}': expected 0 or 1", name, text));
  return text == "1";
}

// Whether the one-token-at-a-time wkv kernel reads its inputs a token ahead:
// RWKVC_VULKAN_WKV_PREFETCH=0|1 (default 0).
bool input_prefetch() { return switch_on("RWKVC_VULKAN_WKV_PREFETCH"); }

// Whether the LoRA ups folded into the wkv kernel (RWKVC_VULKAN_FOLDS=...,lora_up) are computed
// a token ahead, all before the recurrence: RWKVC_VULKAN_WKV_UPS_AHEAD=0|1 (default 0). In the
// body each up is computed where first read, the gate's after the recurrence's barriers, so
// its loads cannot overlap the others'; ahead, the first token's loads overlap the state's.
bool ups_ahead() { return switch_on("RWKVC_VULKAN_WKV_UPS_AHEAD"); }

// The kernel's source for some folded ups, optionally with the group norm tail left to the
// output projection: WkvForm::source, and found again by group_norm_split through
// std::function::target (the form has no other place for it).
struct WkvSources {
  const Region* body;
  std::int64_t heads, n, split;
  bool prefetch, ahead;
  const DeviceFeatures* features;
  std::size_t outputs;

  std::optional<KernelSource> operator()(const std::map<std::size_t, LoraUp>& ups) const {
    WkvKernel folded(*body, heads, n, split, prefetch, ahead, ups);
    if (!build(folded) || folded.outputs() != outputs) return std::nullopt;
    return folded.source(*features, outputs);
  }

  std::optional<WkvGroupNormSplit> group_norm_split(const std::map<std::size_t, LoraUp>& ups) const {
    std::optional<GroupNormTail> tail = find_group_norm_tail(*body, heads);
    if (!tail) return std::nullopt;
    std::int64_t groups = head_groups(*features, n, split);
    WkvKernel folded(*body, heads, n, split, prefetch, ahead, ups, tail, groups);
    if (!build(folded)) return std::nullopt;
    std::size_t gated = static_cast<std::size_t>(
        std::find(body->yields.begin(), body->yields.end(), tail->gated) - body->yields.begin());
    WkvGroupNormSplit result{folded.source(*features, folded.outputs()), gated, folded.input_of(tail->weight),
                             folded.input_of(tail->bias), body->values[at(tail->weight)].dtype, tail->eps, heads, n,
                             static_cast<std::uint32_t>(heads * groups), features};
    return result;
  }

 private:
  bool build(WkvKernel& kernel) const {
    for (const Op& inner : body->ops)
      if (!kernel.add(inner)) return false;
    for (ValueId id : body->yields)
      if (!kernel.yield(id)) return false;
    return kernel.complete();
  }
};

}  // namespace

std::optional<WkvGroupNormSplit> group_norm_split(const WkvForm& form, const std::map<std::size_t, LoraUp>& ups) {
  const WkvSources* sources = form.source.target<WkvSources>();
  if (sources == nullptr) return std::nullopt;
  return sources->group_norm_split(ups);
}

std::optional<Step> fused_wkv_step(PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                                   const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results) {
  const Region& region = *op.region;
  if (region.kind != "wkv") return std::nullopt;
  auto wkv = std::find_if(region.ops.begin(), region.ops.end(), [](const Op& inner) { return inner.kind == OpKind::wkv7; });
  if (wkv == region.ops.end()) return std::nullopt;
  const Shape& state = region.values[at(wkv->operands[6])].shape;
  std::int64_t heads = state[0], n = state[1];
  bool power_of_two = (n & (n - 1)) == 0;
  if (n > static_cast<std::int64_t>(features.max_workgroup_invocations) || (!features.subgroup_arithmetic && !power_of_two))
    return std::nullopt;

  std::int64_t split = row_split(features, n);
  bool prefetch = input_prefetch(), ahead = ups_ahead();
  WkvKernel kernel(region, heads, n, split, prefetch, false);
  for (const Op& inner : region.ops)
    if (!kernel.add(inner)) return std::nullopt;
  for (ValueId id : region.yields)
    if (!kernel.yield(id)) return std::nullopt;
  if (!kernel.complete()) return std::nullopt;

  std::vector<BufferRef> bindings;
  for (ValueId id : kernel.inputs()) bindings.push_back(operands[at(id)]);
  bindings.push_back(operands[at(kernel.state_input())]);
  for (const BufferRef& result : results)
    if (std::find(bindings.begin(), bindings.end(), result) != bindings.end()) return std::nullopt;  // written while read
  bindings.insert(bindings.end(), results.begin(), results.end());
  const Pipeline* pipeline = &pipelines.get(kernel.source(features, results.size()));
  auto groups = static_cast<std::uint32_t>(heads);
  auto form = std::make_shared<WkvForm>();
  form->inputs = kernel.inputs().size();
  form->launch = [groups](const Pipeline* folded) {
    return [folded, groups](const CallShape& call) {
      return Launch{folded, {groups, 1, 1}, {static_cast<std::uint32_t>(call.tokens)}};
    };
  };
  form->source = WkvSources{&region, heads, n, split, prefetch, ahead, &features, results.size()};
  Step step{bindings, results.size(), form->launch(pipeline),
            [](const CallShape& call) { return call.tokens <= kFusedWkvMaxTokens; }};
  step.wkv = std::move(form);
  return step;
}

}  // namespace rwkvc::vulkan
