#include "backends/vulkan/elementwise_codegen.h"

#include <map>

#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"
#include "ir/error.h"

namespace rwkvc::vulkan {

namespace {

// A product of dimensions as GLSL: static extents folded, each T a factor of pc.T.
std::string extent(std::span<const Dim> dims) {
  std::int64_t fixed = 1;
  std::string out;
  for (Dim d : dims) {
    if (d == kSeq)
      out += out.empty() ? "pc.T" : " * pc.T";
    else
      fixed *= d;
  }
  if (out.empty()) return fmt::format("{}u", fixed);
  return fixed == 1 ? fmt::format("({})", out) : fmt::format("({} * {}u)", out, fixed);
}

std::string extent(const Shape& shape) { return extent(shape.dims()); }

// The operand's flat index for output element `i`, broadcasting the operand (aligned at the
// trailing dimension) to the result's shape.
std::string broadcast_index(const Shape& result, const Shape& operand) {
  if (operand == result) return "i";
  if (!operand.has_seq() && operand.numel() == 1) return "0u";
  std::size_t rank = result.rank(), pad = rank - operand.rank();
  auto operand_dim = [&](std::size_t d) -> Dim { return d < pad ? 1 : operand[d - pad]; };
  // The operand matches a suffix of the result and is 1 before it: a modulo.
  std::size_t first = rank;
  while (first > 0 && operand_dim(first - 1) == result[first - 1]) --first;
  bool ones_before = true;
  for (std::size_t d = 0; d < first; ++d) ones_before = ones_before && operand_dim(d) == 1;
  std::span<const Dim> dims = result.dims();
  if (ones_before) return fmt::format("(i % {})", extent(dims.subspan(first)));
  // General: rebuild the coordinates, keeping those the operand does not broadcast.
  std::string index;
  for (std::size_t d = 0; d < rank; ++d) {
    if (operand_dim(d) == 1) continue;
    std::string coordinate = fmt::format("((i / {}) % {})", extent(dims.subspan(d + 1)), extent(dims.subspan(d, 1)));
    std::vector<Dim> operand_inner;
    for (std::size_t e = d + 1; e < rank; ++e) operand_inner.push_back(operand_dim(e));
    index += fmt::format("{}{} * {}", index.empty() ? "" : " + ", coordinate, extent(operand_inner));
  }
  return index.empty() ? "0u" : fmt::format("({})", index);
}

}  // namespace

const std::string_view kSoftplusHelper =
    "float softplus_log1p(float e) { float u = 1.0 + e; return u == 1.0 ? e : log(u) * (e / (u - 1.0)); }\n";

std::string unary_expression(OpKind kind) {
  switch (kind) {
    case OpKind::exp: return "exp(x)";
    case OpKind::neg: return "-x";
    case OpKind::sigmoid: return "1.0 / (1.0 + exp(-x))";
    // tanh through e^-2|x|, which never overflows (GLSL's tanh may for large |x|).
    case OpKind::tanh: return "sign(x) * ((1.0 - exp(-2.0 * abs(x))) / (1.0 + exp(-2.0 * abs(x))))";
    // log1p(e) from log(u) with u = 1 + e, corrected for the rounding of u.
    case OpKind::softplus:
      return "max(x, 0.0) + softplus_log1p(exp(-abs(x)))";
    case OpKind::relu: return "max(x, 0.0)";
    case OpKind::square: return "x * x";
    default: break;
  }
  throw IrError(fmt::format("the Vulkan code generator has no expression for '{}'", op_name(kind)));
}

std::string_view binary_operator(OpKind kind) {
  switch (kind) {
    case OpKind::add: return "+";
    case OpKind::sub: return "-";
    case OpKind::mul: return "*";
    case OpKind::div: return "/";
    default: break;
  }
  throw IrError(fmt::format("the Vulkan code generator has no operator for '{}'", op_name(kind)));
}

namespace {

class Generator {
 public:
  Generator(std::span<const TensorType> types, const ElementwiseGroup& group, std::string prefix = {})
      : types_(types), prefix_(std::move(prefix)) {
    for (std::size_t k = 0; k < group.inputs.size(); ++k) input_of_[group.inputs[k]] = k;
    for (const Op* op : group.ops) {
      if (!is_generated_elementwise(op->kind))
        throw IrError(fmt::format("the Vulkan code generator cannot fuse '{}'", op_name(op->kind)));
      definer_[op->results.at(0)] = op;
    }
    for (ValueId output : group.outputs) emit(output);
  }

  const std::string& code() const { return code_; }
  bool uses_softplus() const { return softplus_; }

 private:
  const Shape& shape(ValueId id) const { return types_[static_cast<std::size_t>(id)].shape; }

  // Defines `float v<id>(uint i)` after the functions it calls.
  void emit(ValueId id) {
    if (emitted_.contains(id)) return;
    emitted_[id] = true;
    if (auto input = input_of_.find(id); input != input_of_.end()) {
      code_ += fmt::format("float {0}v{1}(uint i) {{ return load_{0}in{2}(i); }}\n", prefix_, id, input->second);
      return;
    }
    auto found = definer_.find(id);
    if (found == definer_.end()) throw IrError(fmt::format("fused kernel: value %{} is neither an input nor computed", id));
    const Op& op = *found->second;
    for (ValueId operand : op.operands) emit(operand);
    const Shape& out = shape(id);
    auto at = [&](std::size_t k) {
      return fmt::format("{}v{}({})", prefix_, op.operands[k], broadcast_index(out, shape(op.operands[k])));
    };
    std::string body;
    if (is_unary_elementwise(op.kind)) {
      softplus_ = softplus_ || op.kind == OpKind::softplus;
      body = fmt::format("float x = {}; return {};", at(0), unary_expression(op.kind));
    } else if (is_binary_elementwise(op.kind)) {
      body = fmt::format("return {} {} {};", at(0), binary_operator(op.kind), at(1));
    } else {
      switch (op.kind) {
        case OpKind::lerp:
          body = fmt::format("float a = {}; return a + ({} - a) * {};", at(0), at(1), at(2));
          break;
        case OpKind::token_shift: {
          // Row 0 is the previous call's last row; row t is x's row t - 1.
          std::string row = extent(shape(op.operands[1]));
          body = fmt::format("return i < {0} ? {3}v{1}(i) : {3}v{2}(i - {0});", row, op.operands[1], op.operands[0], prefix_);
          break;
        }
        case OpKind::last_row:
          body = fmt::format("return {}v{}((pc.T - 1u) * {} + i);", prefix_, op.operands[0], extent(out));
          break;
        case OpKind::reshape: body = fmt::format("return {}v{}(i);", prefix_, op.operands[0]); break;
        case OpKind::constant: body = fmt::format("return {};", glsl_float(op.float_attr("value"))); break;
        default: throw IrError(fmt::format("the Vulkan code generator cannot fuse '{}'", op_name(op.kind)));
      }
    }
    code_ += fmt::format("float {}v{}(uint i) {{ {} }}\n", prefix_, id, body);
  }

  std::span<const TensorType> types_;
  std::string prefix_;
  std::map<ValueId, std::size_t> input_of_;
  std::map<ValueId, const Op*> definer_;
  std::map<ValueId, bool> emitted_;
  std::string code_;
  bool softplus_ = false;
};

}  // namespace

bool is_generated_elementwise(OpKind kind) {
  if (is_unary_elementwise(kind) || is_binary_elementwise(kind)) return true;
  switch (kind) {
    case OpKind::lerp:
    case OpKind::token_shift:
    case OpKind::last_row:
    case OpKind::reshape:
    case OpKind::constant: return true;
    default: return false;
  }
}


std::string elementwise_functions(std::span<const TensorType> types, const ElementwiseGroup& group, bool* uses_softplus,
                                  const std::string& prefix) {
  Generator generator(types, group, prefix);
  if (uses_softplus != nullptr) {
    *uses_softplus = generator.uses_softplus();
    return generator.code();
  }
  return (generator.uses_softplus() ? std::string(kSoftplusHelper) : std::string()) + generator.code();
}

KernelSource elementwise_kernel(const DeviceFeatures& features, std::span<const TensorType> types,
                                const ElementwiseGroup& group, std::string_view label) {
  Generator generator(types, group);
  GlslBuilder shader(features, std::string(label));
  for (std::size_t k = 0; k < group.inputs.size(); ++k)
    shader.buffer(fmt::format("in{}", k), types[static_cast<std::size_t>(group.inputs[k])].dtype, Access::read);
  for (std::size_t k = 0; k < group.outputs.size(); ++k)
    shader.buffer(fmt::format("out{}", k), DType::f32, Access::write);
  shader.push({"count", "T"});
  shader.local_size(kElementwiseGroupSize);
  if (generator.uses_softplus()) shader.code(kSoftplusHelper);
  shader.code(generator.code());
  std::string stores;
  for (std::size_t k = 0; k < group.outputs.size(); ++k) {
    ValueId id = group.outputs[k];
    stores += fmt::format("    if (i < {}) store_out{}(i, v{}(i));\n", extent(types[static_cast<std::size_t>(id)].shape), k, id);
  }
  shader.code(fmt::format(
      "void main() {{\n"
      "  for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {{\n"
      "{}"
      "  }}\n"
      "}}\n",
      stores));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
