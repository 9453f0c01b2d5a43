#!/bin/bash
# On the GPU machine (the device tool, from the repository root, carry [".device"]): builds the
# CUDA backend and its tests, runs them, runs compute-sanitizer (memcheck, racecheck) over
# forward passes of each tiny model (one-token calls, a 40-token prompt in f32, and in f16 with
# the chunked WKV7), and times large random models. Logs go to $OUT (at most 7 files).
#   bash backends/cuda/device_check.sh [bench shapes, e.g. L24xD2048,L12xD768]
# RWKVC_CHECK: the parts to run (default "tests sanitizer bench"; also "nopdl": the first shape
# again with programmatic dependent launch off, and "torch": bench/torch_rwkv7.py at 1.5B,
# eager and torch.compile). The sanitizer runs last (the slowest part, and no timing after it).
# RWKVC_SKIP_BUILD=1: build-dev already holds rwkvc and rwkvc_cuda_tests (bench/h100_report.sh).
set -o pipefail
[ "${RWKVC_SKIP_BUILD:-0}" = 1 ] || source .device/prepare.sh
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export XDG_CACHE_HOME=/tmp/rwkvc-cache
parts=${RWKVC_CHECK:-"tests sanitizer bench"}
shapes=${1:-L24xD2048}
has() { [[ " $parts " == *" $1 "* ]]; }
build() {
  cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF "$@" > "$OUT/build.log" 2>&1 &&
    ninja -C build-dev rwkvc rwkvc_cuda_tests >> "$OUT/build.log" 2>&1
}
if [ "${RWKVC_SKIP_BUILD:-0}" != 1 ] && ! build -DRWKVC_CUDA=ON -DRWKVC_VULKAN=OFF; then
  tail -40 "$OUT/build.log"
  exit 1
fi
echo "== devices"; build-dev/rwkvc devices
if has tests; then
  echo "== tests $(date +%T)"
  build-dev/tests/rwkvc_cuda_tests --durations yes > "$OUT/tests.log" 2>&1
  echo "rc=$?"
  grep -E "FAILED|failed|passed|with expansion|Error|error" "$OUT/tests.log" | head -60; tail -3 "$OUT/tests.log"
fi
if has bench; then
  echo "== bench $shapes $(date +%T)"
  RWKVC_BENCH_SHAPES=$shapes RWKVC_BENCH_OUT="$OUT/bench.jsonl" \
    build-dev/tests/rwkvc_cuda_tests "[bench]" > "$OUT/bench.log" 2>&1
  grep '^{' "$OUT/bench.log"
fi
if has nopdl; then
  echo "== bench ${shapes%%,*}, programmatic dependent launch off"
  RWKVC_CUDA_PDL=0 RWKVC_BENCH_SHAPES=${shapes%%,*} RWKVC_BENCH_OUT="$OUT/bench.jsonl" \
    build-dev/tests/rwkvc_cuda_tests "[bench]" >> "$OUT/bench.log" 2>&1
  tail -1 "$OUT/bench.jsonl"
fi
if has torch; then
  echo "== torch $(date +%T)"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    timeout 170 python3 bench/torch_rwkv7.py --layers 24 --embd 2048 --decode-tokens 20 --prefill-repeats 2 \
      > "$OUT/torch.json" 2> "$OUT/torch.log"
    echo "rc=$?"; cat "$OUT/torch.json"
  else
    echo "torch is not importable (or sees no GPU) on this machine"
  fi
fi
if has sanitizer; then
  echo "== compute-sanitizer $(date +%T)"
  short=1,2,3,4,5,6,7,8,9,10,11,12
  long=$(seq -s, 1 40)
  # Memcheck of everything first, then racecheck (the slower); each model one-token (the decode
  # graph), a 40-token prompt in f32, and the same prompt in f16 with the chunked WKV7 taken (the
  # 16-bit activations of long calls and the chunk records).
  for tool in memcheck racecheck; do
    for model in rwkv7 rwkv4; do
      for run in "rnn $short f32" "gpt $long f32" "gpt $long f16"; do
        set -- $run
        RWKVC_WKV7_CHUNKED_FROM=$([ "$3" = f16 ] && echo 16 || echo 0) \
          compute-sanitizer --tool $tool --error-exitcode 9 build-dev/rwkvc forward --backend cuda --mode $1 \
          --dtype $3 --model tests/models/$model-tiny.safetensors --tokens $2 > /tmp/sanitizer.tmp 2>&1
        echo "$model $tool $1 $3 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/sanitizer.tmp | tr '\n' ' ')"
        cat /tmp/sanitizer.tmp >> "$OUT/sanitizer.log"
      done
    done
  done
  # Head size 64 and the new kernels' tests (odd sizes, 1/3/45 tokens) through the test program.
  for test in "CUDA matches the CPU on RWKV-7 with head size 64" \
              "CUDA's batched GEMVs and WKV7 row blocks match the CPU on odd LoRA ranks"; do
    compute-sanitizer --tool memcheck --error-exitcode 9 build-dev/tests/rwkvc_cuda_tests "$test" > /tmp/sanitizer.tmp 2>&1
    echo "memcheck '$test' rc=$? $(grep -E 'ERROR SUMMARY' /tmp/sanitizer.tmp | tr '\n' ' ')"
    cat /tmp/sanitizer.tmp >> "$OUT/sanitizer.log"
  done
fi
