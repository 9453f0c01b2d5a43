#include "frontend/model_config.h"

namespace rwkvc {

std::string_view arch_name(Arch arch) { return arch == Arch::rwkv4 ? "rwkv4" : "rwkv7"; }

}  // namespace rwkvc
