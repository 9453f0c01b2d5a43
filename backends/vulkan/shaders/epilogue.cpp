// A matmul's elementwise tail, evaluated where the product is stored: the product reaches the
// generated functions through a private variable, so they need no buffer for it.
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

void declare_epilogue(GlslBuilder& shader, const Epilogue& epilogue) {
  if (epilogue.empty()) {
    shader.code("float epilogue(uint i, float product) { return product; }\n");
    return;
  }
  for (std::size_t k = 0; k < epilogue.inputs.size(); ++k)
    shader.buffer(fmt::format("in{}", k + 1), epilogue.inputs[k], Access::read);
  shader.code("float epilogue_product;\n"
              "float load_in0(uint i) { return epilogue_product; }\n");
  shader.code(epilogue.functions);
  shader.code(fmt::format("float epilogue(uint i, float product) {{ epilogue_product = product; return {}(i); }}\n",
                          epilogue.result));
}

}  // namespace rwkvc::vulkan
