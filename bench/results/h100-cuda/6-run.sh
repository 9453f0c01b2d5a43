#!/bin/bash
# Call 6 (decode folds, helper cuda-decode), on the GPU machine from the repository root (carry
# [".device"]): build the CUDA tests, run the cases that cover the folded decode kernels (the
# fused-kernel cases, the tiny-model matrix, f16 precision), the decode switches on and off at
# 1.5B in one process (decode_bench_test.cpp), then the usual bench (decode, prefill 512/4096,
# eager per-kernel profile) for the shapes given (default 1.5B). Each part starts only while
# time is left and is capped so that the logs come back; they go to $OUT as one tarball too.
#   source .device/prepare.sh && bash bench/results/h100-cuda/6-run.sh [BUDGET_S] [SHAPES] [PARTS]
set -o pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export XDG_CACHE_HOME=/tmp/rwkvc-cache
budget=${1:-220}
shapes=${2:-L24xD2048}
parts=${3:-"tests decode bench"}
has() { [[ " $parts " == *" $1 "* ]]; }
left() { [ $SECONDS -lt "$1" ] || { echo "skipped: ${SECONDS}s gone"; return 1; }; }
cap() { local rest=$((budget - SECONDS)); echo $(( $1 < rest ? $1 : rest )); }
T=build-dev/tests/rwkvc_cuda_tests
echo "== build $(date +%T)"
# RWKVC_CUDA=ON spelled out: a warm machine's build-dev may hold another engineer's CUDA=OFF
# (call 6-2 lost its build to that).
{ cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_CUDA=ON -DRWKVC_VULKAN=OFF &&
  ninja -C build-dev rwkvc_cuda_tests; } \
  > "$OUT/6-build.log" 2>&1 || { tail -40 "$OUT/6-build.log"; exit 1; }
echo "built in ${SECONDS}s"
if has tests; then
  echo "== tests $(date +%T)"
  timeout $(cap 100) $T "[kernels],[matrix],CUDA with f16 weights stays within the f16 bound of the CPU on the same graph" \
    --durations yes > "$OUT/6-tests.log" 2>&1
  echo "tests rc=$?"; grep -E "FAILED|failed|passed|No tests|with expansion" "$OUT/6-tests.log" | head -30
  grep -E "^[0-9.]+ s:" "$OUT/6-tests.log" | head -20
fi
if has decode; then
  echo "== decode switches ${shapes%%,*} $(date +%T)"
  left $((budget - 40)) && RWKVC_BENCH_SHAPES=${shapes%%,*} timeout $(cap 90) stdbuf -oL $T "[decode_bench]" \
    > "$OUT/6-decode_ab.log" 2>&1
  echo "rc=$?"; grep '^{' "$OUT/6-decode_ab.log" | cut -c1-250
fi
if has bench; then
  echo "== bench $shapes $(date +%T)"
  left $((budget - 30)) && RWKVC_BENCH_SHAPES=$shapes RWKVC_BENCH_OUT="$OUT/6-bench.jsonl" timeout $(cap 150) \
    stdbuf -oL $T "[bench]" > "$OUT/6-bench.log" 2>&1
  echo "rc=$?"; cat "$OUT/6-bench.jsonl" | cut -c1-400
  grep -A 12 "profile of a 1-token forward" "$OUT/6-bench.log" | cut -c1-90
fi
echo "== end $(date +%T), ${SECONDS}s"
tar -C "$OUT" -czf "$OUT/6-logs.tgz" $(cd "$OUT" && ls 6-*.log 6-*.jsonl 2>/dev/null)
