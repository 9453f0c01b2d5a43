#include "backends/vulkan/glsl_builder.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc::vulkan {

GlslBuilder::GlslBuilder(const DeviceFeatures& features, std::string name)
    : features_(features), name_(std::move(name)) {}

void GlslBuilder::buffer(std::string_view name, DType dtype, Access access, bool wide) {
  std::uint32_t binding = bindings_++;
  bool readable = access != Access::write;
  std::string qualifier = access == Access::read ? "readonly " : access == Access::write ? "writeonly " : "";
  if (access != Access::read && dtype != DType::f32)
    throw std::logic_error(fmt::format("kernel {}: buffer {} is written but is {}", name_, name, dtype_name(dtype)));
  auto block = [&](std::string_view element) {
    buffers_ += fmt::format("layout(std430, binding = {}) {}buffer Buffer_{} {{ {} {}_data[]; }};\n", binding, qualifier,
                            name, element, name);
  };
  bool sixteen = features_.storage16 && !wide;
  switch (dtype) {
    case DType::f32:
      block(wide ? "vec4" : "float");
      if (readable && wide)
        buffers_ += fmt::format("void load8_{0}(uint i8, out vec4 lo, out vec4 hi) {{ lo = {0}_data[2u * i8]; hi = {0}_data[2u * i8 + 1u]; }}\n"
                                "float load_{0}(uint i) {{ return {0}_data[i >> 2][i & 3u]; }}\n", name);
      else if (readable)
        buffers_ += fmt::format("float load_{0}(uint i) {{ return {0}_data[i]; }}\n", name);
      if (access != Access::read) buffers_ += fmt::format("void store_{0}(uint i, float v) {{ {0}_data[i] = v; }}\n", name);
      break;
    case DType::f16:
      if (wide) {
        block("uvec4");
        buffers_ += fmt::format(
            "void load8_{0}(uint i8, out vec4 lo, out vec4 hi) {{ uvec4 w = {0}_data[i8];\n"
            "  lo = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)); hi = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)); }}\n"
            "float load_{0}(uint i) {{ return unpackHalf2x16({0}_data[i >> 3][(i >> 1) & 3u])[i & 1u]; }}\n", name);
      } else if (sixteen) {
        storage16_used_ = true;
        block("float16_t");
        buffers_ += fmt::format("float load_{0}(uint i) {{ return float({0}_data[i]); }}\n", name);
      } else {
        block("uint");
        buffers_ += fmt::format("float load_{0}(uint i) {{ return unpackHalf2x16({0}_data[i >> 1])[i & 1u]; }}\n", name);
      }
      break;
    case DType::bf16:
      // A bf16 is the high 16 bits of the f32 it stands for.
      if (wide) {
        block("uvec4");
        buffers_ += fmt::format(
            "vec2 bf16x2_{0}(uint w) {{ return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u)); }}\n"
            "void load8_{0}(uint i8, out vec4 lo, out vec4 hi) {{ uvec4 w = {0}_data[i8];\n"
            "  lo = vec4(bf16x2_{0}(w.x), bf16x2_{0}(w.y)); hi = vec4(bf16x2_{0}(w.z), bf16x2_{0}(w.w)); }}\n"
            "float load_{0}(uint i) {{ return bf16x2_{0}({0}_data[i >> 3][(i >> 1) & 3u])[i & 1u]; }}\n", name);
      } else if (sixteen) {
        storage16_used_ = true;
        block("uint16_t");
        buffers_ += fmt::format("float load_{0}(uint i) {{ return uintBitsToFloat(uint({0}_data[i]) << 16); }}\n", name);
      } else {
        block("uint");
        buffers_ += fmt::format(
            "float load_{0}(uint i) {{ uint w = {0}_data[i >> 1];\n"
            "  return uintBitsToFloat((i & 1u) != 0u ? (w & 0xffff0000u) : (w << 16)); }}\n", name);
      }
      break;
    case DType::i32:
      block("int");
      buffers_ += fmt::format("int load_{0}(uint i) {{ return {0}_data[i]; }}\n", name);
      break;
  }
}

void GlslBuilder::push(std::vector<std::string> fields) {
  if (fields.size() > kPushWords)
    throw std::logic_error(fmt::format("kernel {}: {} push constants, at most {}", name_, fields.size(), kPushWords));
  push_ = std::move(fields);
}

void GlslBuilder::local_size(std::uint32_t x) { local_size_ = x; }

void GlslBuilder::use_workgroup_sum() { workgroup_sum_ = true; }

void GlslBuilder::define(std::string_view name, std::string_view value) {
  defines_ += fmt::format("#define {} {}\n", name, value);
}

void GlslBuilder::code(std::string_view text) { code_ += text; }

void GlslBuilder::extension(std::string_view name) { extensions_ += fmt::format("#extension {} : require\n", name); }

KernelSource GlslBuilder::finish() const {
  bool subgroups = subgroups_ || (workgroup_sum_ && features_.subgroup_arithmetic);
  std::string out = "#version 450\n#extension GL_EXT_control_flow_attributes : enable\n";
  if (storage16_used_) out += "#extension GL_EXT_shader_16bit_storage : require\n";
  if (subgroups) out += "#extension GL_KHR_shader_subgroup_basic : require\n#extension GL_KHR_shader_subgroup_arithmetic : require\n";
  out += extensions_;
  out += fmt::format("// {}\nlayout(local_size_x = {}) in;\n", name_, local_size_);
  out += defines_;
  out += buffers_;
  if (!push_.empty()) {
    out += "layout(push_constant) uniform Push {";
    for (const std::string& field : push_) out += fmt::format(" uint {};", field);
    out += " } pc;\n";
  }
  if (workgroup_sum_) {
    if (features_.subgroup_arithmetic) {
      // One partial per subgroup, then every invocation adds the partials in the same order.
      out += fmt::format(
          "shared float partials[{}];\n"
          "float workgroup_sum(float v) {{\n"
          "  v = subgroupAdd(v);\n"
          "  barrier();\n"
          "  if (subgroupElect()) partials[gl_SubgroupID] = v;\n"
          "  barrier();\n"
          "  float s = 0.0;\n"
          "  for (uint i = 0u; i < gl_NumSubgroups; ++i) s += partials[i];\n"
          "  return s;\n"
          "}}\n",
          local_size_);
    } else {
      out += fmt::format(
          "shared float partials[{0}];\n"
          "float workgroup_sum(float v) {{\n"
          "  barrier();\n"
          "  partials[gl_LocalInvocationIndex] = v;\n"
          "  barrier();\n"
          "  for (uint s = {0}u / 2u; s > 0u; s >>= 1) {{\n"
          "    if (gl_LocalInvocationIndex < s) partials[gl_LocalInvocationIndex] += partials[gl_LocalInvocationIndex + s];\n"
          "    barrier();\n"
          "  }}\n"
          "  return partials[0];\n"
          "}}\n",
          local_size_);
    }
  }
  out += code_;
  return {name_, std::move(out), bindings_};
}

std::string glsl_float(double value) {
  auto f = static_cast<float>(value);
  if (std::isinf(f)) return f > 0 ? "uintBitsToFloat(0x7f800000u)" : "uintBitsToFloat(0xff800000u)";
  if (std::isnan(f)) return "uintBitsToFloat(0x7fc00000u)";
  std::string text = fmt::format("{:.9g}", f);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

}  // namespace rwkvc::vulkan
