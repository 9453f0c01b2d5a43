#!/bin/bash
# On the GPU machine (the device tool, from the repository root, carry [".device"]): builds the
# CUDA backend and its tests, runs them, runs compute-sanitizer (memcheck, racecheck) over one
# forward pass of each tiny model, and times large random models. Logs go to $OUT.
#   bash backends/cuda/device_check.sh [bench shapes, e.g. L24xD2048,L12xD768]
set -o pipefail
source .device/prepare.sh
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export XDG_CACHE_HOME=/tmp/rwkvc-cache
build() {
  cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF "$@" > "$OUT/cmake.log" 2>&1 &&
    ninja -C build-dev rwkvc rwkvc_cuda_tests > "$OUT/build.log" 2>&1
}
if ! build; then
  echo "== build with Vulkan failed; building without it"; tail -5 "$OUT/build.log"
  rm -rf build-dev
  build -DRWKVC_VULKAN=OFF || { tail -40 "$OUT/build.log"; exit 1; }
fi
echo "== devices"; build-dev/rwkvc devices
echo "== tests"
build-dev/tests/rwkvc_cuda_tests --durations yes > "$OUT/tests.log" 2>&1
grep -E "FAILED|failed|passed|with expansion|relative|Error|error" "$OUT/tests.log" | head -60; tail -3 "$OUT/tests.log"
echo "== compute-sanitizer"
tokens=1,2,3,4,5,6,7,8,9,10,11,12
for model in rwkv7 rwkv4; do
  for tool in memcheck racecheck; do
    for mode in gpt rnn; do
      compute-sanitizer --tool $tool --error-exitcode 9 build-dev/rwkvc forward --backend cuda --mode $mode \
        --model tests/models/$model-tiny.safetensors --tokens $tokens > "$OUT/sanitizer.log.tmp" 2>&1
      echo "$model $tool $mode rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer.log.tmp" | tr '\n' ' ')"
      cat "$OUT/sanitizer.log.tmp" >> "$OUT/sanitizer.log"
    done
  done
done
# Head size 64 (the released models' size) through the test program: one-token and long calls.
compute-sanitizer --tool memcheck --error-exitcode 9 build-dev/tests/rwkvc_cuda_tests \
  "CUDA matches the CPU on RWKV-7 with head size 64" > "$OUT/sanitizer.log.tmp" 2>&1
echo "head-size-64 test memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer.log.tmp" | tr '\n' ' ')"
cat "$OUT/sanitizer.log.tmp" >> "$OUT/sanitizer.log"
echo "== bench"
RWKVC_BENCH_SHAPES=${1:-L24xD2048} RWKVC_BENCH_OUT="$OUT/bench.jsonl" \
  build-dev/tests/rwkvc_cuda_tests "[bench]" > "$OUT/bench.log" 2>&1
tail -5 "$OUT/bench.log"
