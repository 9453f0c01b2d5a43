#!/usr/bin/env bash
# Installs what rwkvc needs on Debian 12 (only what is missing), then configures and builds it
# in ./build. Safe to run again: it rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config libfmt-dev nlohmann-json3-dev libcli11-dev catch2
          libbenchmark-dev libpcre2-dev libicu-dev zlib1g-dev python3 python3-numpy
          # the Vulkan backend: loader, shaderc and glslang (run-time GLSL), SPIR-V tools
          # (spirv-val in tests), the validation layer, and Mesa's lavapipe to run on a CPU
          libvulkan-dev glslc libshaderc-dev glslang-dev spirv-tools vulkan-validationlayers
          mesa-vulkan-drivers)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
