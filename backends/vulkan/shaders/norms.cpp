// Ops that reduce contiguous segments (layer_norm, group_norm, l2_norm, reduce_sum): a
// workgroup per segment, two passes over it for the variance as on the CPU.
#include <algorithm>

#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {

// A long segment (a decode step's one row of 2048) gets more invocations: with one
// workgroup per row, the row's loads would otherwise queue on 64.
std::uint32_t group_size(std::int64_t width) { return width >= 1024 ? 256 : 64; }

std::string_view op_label(SegmentOp op) {
  switch (op) {
    case SegmentOp::layer_norm: return "layer_norm";
    case SegmentOp::group_norm: return "group_norm";
    case SegmentOp::l2_norm: return "l2_norm";
    case SegmentOp::reduce_sum: return "reduce_sum";
  }
  return "?";
}

// What each op does with its segment's sums: `base` is the segment's first element, `j` the
// element's position in the segment.
std::string finish(const SegmentShape& shape) {
  switch (shape.op) {
    case SegmentOp::layer_norm:
    case SegmentOp::group_norm: {
      // The affine weights span a whole row: segment s covers row channels (s % groups) * W + j.
      std::string channel = shape.op == SegmentOp::group_norm ? "(s % GROUPS) * W + j" : "j";
      return fmt::format(
          "    float mean = workgroup_sum(sum) / float(W);\n"
          "    float squares = 0.0;\n"
          "    for (uint j = lane; j < W; j += LANES) {{ float d = load_x(base + j) - mean; squares += d * d; }}\n"
          "    float inv_std = 1.0 / sqrt(workgroup_sum(squares) / float(W) + EPS);\n"
          "    for (uint j = lane; j < W; j += LANES)\n"
          "      store_out(base + j, (load_x(base + j) - mean) * inv_std * load_weight({0}) + load_bias({0}));\n",
          channel);
    }
    case SegmentOp::l2_norm:
      return "    float squares = 0.0;\n"
             "    for (uint j = lane; j < W; j += LANES) { float v = load_x(base + j); squares += v * v; }\n"
             "    float divisor = max(sqrt(workgroup_sum(squares)), EPS);\n"
             "    for (uint j = lane; j < W; j += LANES) store_out(base + j, load_x(base + j) / divisor);\n";
    case SegmentOp::reduce_sum:
      return "    float total = workgroup_sum(sum);\n"
             "    if (lane == 0u) store_out(s, total);\n";
  }
  return {};
}

}  // namespace

KernelSource segment_kernel(const DeviceFeatures& features, const SegmentShape& shape) {
  GlslBuilder shader(features, fmt::format("{} W{}", op_label(shape.op), shape.width));
  shader.buffer("x", DType::f32, Access::read);
  if (shape.op == SegmentOp::layer_norm || shape.op == SegmentOp::group_norm) {
    shader.buffer("weight", shape.weight_dtype, Access::read);
    shader.buffer("bias", shape.weight_dtype, Access::read);
  }
  // Normalisations read back what no invocation writes twice; reduce_sum writes one value.
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"segments"});
  std::uint32_t lanes = group_size(shape.width);
  shader.local_size(lanes);
  shader.use_workgroup_sum();
  shader.define("W", fmt::format("{}u", shape.width));
  shader.define("LANES", fmt::format("{}u", lanes));
  shader.define("GROUPS", fmt::format("{}u", std::max<std::int64_t>(shape.groups, 1)));
  shader.define("EPS", glsl_float(shape.eps));
  bool needs_sum = shape.op != SegmentOp::l2_norm;
  shader.code(fmt::format(
      "void main() {{\n"
      "  uint lane = gl_LocalInvocationIndex;\n"
      "  for (uint s = gl_WorkGroupID.x; s < pc.segments; s += gl_NumWorkGroups.x) {{\n"
      "    uint base = s * W;\n"
      "{}"
      "{}"
      "  }}\n"
      "}}\n",
      needs_sum ? "    float sum = 0.0;\n    for (uint j = lane; j < W; j += LANES) sum += load_x(base + j);\n" : "",
      finish(shape)));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
