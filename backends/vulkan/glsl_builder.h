// Assembles one GLSL compute shader: the version and the extensions its buffers need, its
// storage buffers (with a load/store function per buffer that hides the element type: f32,
// f16 through 16-bit storage or packed in uints, bf16 as the high half of an f32), its push
// constants and its body. Hand-written templates and the code generator both build through it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/vulkan/device.h"
#include "backends/vulkan/pipeline_store.h"
#include "ir/dtype.h"

namespace rwkvc::vulkan {

enum class Access { read, write, read_write };

class GlslBuilder {
 public:
  GlslBuilder(const DeviceFeatures& features, std::string name);

  // The next binding, named `name`. Defines `float load_NAME(uint i)` (readable buffers) and
  // `void store_NAME(uint i, float v)` (writable ones, f32 only). With wide = true (readable,
  // for the GEMV) it also defines `void load8_NAME(uint i8, out vec4 lo, out vec4 hi)`, the
  // elements 8*i8 .. 8*i8+7 in one or two 16-byte loads.
  void buffer(std::string_view name, DType dtype, Access access, bool wide = false);
  // Push constants, each a uint field of `pc` (at most kPushWords).
  void push(std::vector<std::string> fields);
  void local_size(std::uint32_t x);
  // subgroupAdd and friends (callers check features().subgroup_arithmetic first).
  void use_subgroups() { subgroups_ = true; }
  // `float workgroup_sum(float v)`: every invocation of the workgroup gets the sum; all must call it.
  void use_workgroup_sum();
  void define(std::string_view name, std::string_view value);
  // `#extension NAME : require`, placed before any declaration.
  void extension(std::string_view name);
  void code(std::string_view text);

  const DeviceFeatures& features() const { return features_; }
  KernelSource finish() const;

 private:
  const DeviceFeatures& features_;
  std::string name_;
  std::uint32_t local_size_ = 64;
  std::uint32_t bindings_ = 0;
  bool storage16_used_ = false;
  bool subgroups_ = false;
  bool workgroup_sum_ = false;
  std::vector<std::string> push_;
  std::string extensions_, defines_, buffers_, code_;
};

// A float literal GLSL reads back as the same f32 value.
std::string glsl_float(double value);

}  // namespace rwkvc::vulkan
