#!/bin/bash
# On the GPU machine (the device tool, repository root, carry [".device"]): builds rwkvc with the
# CPU, Vulkan and CUDA backends and runs `rwkvc bench` on RWKV-7 shapes (f16 weights, -O0 and
# -O2), one JSON + Markdown report per shape, all in $OUT/h100-report.tar.gz. The side-by-side
# summary is made from the JSON records with `rwkvc bench --summarize` (here or anywhere).
#   [RWKVC_REPORT_CHECKS=1|tests] [RWKVC_REPORT_EXTRA=1] bash bench/h100_report.sh [shapes: 0.1B 0.4B 1.5B 2.9B 7.2B]
# RWKVC_REPORT_CHECKS=1 first runs the CUDA tests and the Vulkan tests (validation layer on) side
# by side on the same build, then compute-sanitizer (backends/cuda/device_check.sh), each cut at
# RWKVC_REPORT_CHECK_SECONDS (default 300); =tests skips the sanitizer. RWKVC_REPORT_LEVELS: the optimisation levels
# compared per shape (default -O0,-O2).
# RWKVC_REPORT_EXTRA=1 adds, after the shapes, the long prompts the issues ask for (CUDA 4096
# tokens at 1.5B, Vulkan 2048 tokens at 0.1B/0.4B/1.5B, -O2) and the PyTorch comparison at 1.5B
# (bench/torch_rwkv7.py, eager and torch.compile) in the same call. The tarball is rewritten
# after every step, so a run cut short still returns what it finished.
set -o pipefail
source .device/prepare.sh
OUT=${OUT:-/tmp/out}
R=/tmp/h100-report/h100  # packed into $OUT after each step: the device tool returns a few files only
mkdir -p "$R" "$OUT"
export XDG_CACHE_HOME=/tmp/rwkvc-cache
checks=${RWKVC_REPORT_CHECKS:-0}
targets="rwkvc"
[ "$checks" != 0 ] && targets="rwkvc rwkvc_cuda_tests rwkvc_vulkan_tests"
echo "== build $(date +%T)"
# Both GPU backends named: a build-dev left by another script (warm machine) may have either off.
{ cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_CUDA=ON -DRWKVC_VULKAN=ON && ninja -C build-dev $targets; } > "$R/build.log" 2>&1 ||
  { tail -40 "$R/build.log"; exit 1; }
B=build-dev/rwkvc
$B devices | tee "$R/devices.txt"
pack() { tar -czf "$OUT/h100-report.tar.gz" -C "$(dirname "$R")" h100; }
if [ "$checks" != 0 ]; then
  # The CUDA and the Vulkan tests side by side (they only check: sharing the GPU costs only
  # time), then compute-sanitizer on its own: beside the sanitizer, the CUDA test program
  # (NVRTC compiling every kernel on a fresh machine) got through 8 of its cases in 150 s.
  echo "== checks $(date +%T)"
  limit=${RWKVC_REPORT_CHECK_SECONDS:-300}
  timeout "$limit" build-dev/tests/rwkvc_vulkan_tests > "$R/vulkan-tests.log" 2>&1 &
  vulkan=$!
  OUT="$R/cuda" RWKVC_SKIP_BUILD=1 RWKVC_CHECK=tests timeout "$limit" bash backends/cuda/device_check.sh \
    > "$R/cuda-tests.txt" 2>&1
  echo "cuda tests rc=$?"; cat "$R/cuda-tests.txt"
  wait $vulkan; echo "vulkan tests rc=$?"; grep -E "FAILED|failed|passed" "$R/vulkan-tests.log" | head -20
  pack
  if [ "$checks" != tests ]; then
    OUT="$R/cuda-sanitizer" RWKVC_SKIP_BUILD=1 RWKVC_CHECK=sanitizer timeout "$limit" \
      bash backends/cuda/device_check.sh > "$R/cuda-sanitizer.txt" 2>&1
    grep -E "rc=" "$R/cuda-sanitizer.txt"
    pack
  fi
fi

declare -A SHAPE=([0.1B]=rwkv7:L12:D768:V65536 [0.4B]=rwkv7:L24:D1024:V65536 [1.5B]=rwkv7:L24:D2048:V65536
                  [2.9B]=rwkv7:L32:D2560:V65536 [7.2B]=rwkv7:L32:D4096:V65536)
# The CPU backend (f32 arithmetic) takes minutes per round on the larger shapes.
declare -A BACKENDS=([0.1B]=cuda,vulkan,cpu [0.4B]=cuda,vulkan [1.5B]=cuda,vulkan [2.9B]=cuda,vulkan [7.2B]=cuda,vulkan)

# The ceilings, measured once on the device by the CUDA backend (a 1 GiB device-to-device copy,
# an 8192^3 f16 cuBLAS GEMM), apply to both GPU backends: they share the GPU and its memory.
$B bench --shape rwkv7:L1:D256:V1024 --backends cuda --prompt 1 --gen 1 --repeat 1 --warmup 0 --json "$R/ceilings.json" \
  > "$R/ceilings.log" 2>&1 || { cat "$R/ceilings.log"; exit 1; }
read -r BW PEAK < <(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]['roofline']; \
print(r['bandwidth_gbs'], r['peak_tflops'])" "$R/ceilings.json")
echo "ceilings: $BW GB/s, $PEAK TFLOP/s"

ceilings=(--bandwidth-gbs "cuda=$BW,vulkan=$BW" --peak-tflops "cuda=$PEAK,vulkan=$PEAK")
report() {  # report NAME: -O0 and -O2 (RWKVC_REPORT_LEVELS) on the shape's backends, a 512-token prompt
  echo "== $1 (${SHAPE[$1]}: ${BACKENDS[$1]}) $(date +%T)"
  $B bench --shape "${SHAPE[$1]}" --backends "${BACKENDS[$1]}" --dtype f16 "${RWKVC_REPORT_LEVELS:--O0,-O2}" --prompt 512 --gen 64 --repeat 3 \
    "${ceilings[@]}" --json "$R/$1.json" --markdown "$R/$1.md" --svg "$R/$1.svg" > "$R/$1.log" 2>&1
  echo "rc=$? $(date +%T)"; grep -E "^(cuda|vulkan|cpu) |fraction|decode x" "$R/$1.log"
  pack
}
long_prompt() {  # long_prompt NAME BACKEND TOKENS: prefill of a long prompt at -O2
  local name="$1-$2-prompt$3"
  echo "== $name $(date +%T)"
  $B bench --shape "${SHAPE[$1]}" --backends "$2" --dtype f16 -O2 --prompt "$3" --gen 8 --repeat 3 \
    "${ceilings[@]}" --json "$R/$name.json" --markdown "$R/$name.md" > "$R/$name.log" 2>&1
  echo "rc=$?"; grep -E "^(cuda|vulkan) " "$R/$name.log"
  pack
}
extras() {
  long_prompt 1.5B cuda 4096
  long_prompt 1.5B vulkan 2048
  echo "== torch 1.5B $(date +%T)"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    timeout 240 python3 bench/torch_rwkv7.py --layers 24 --embd 2048 --decode-tokens 20 --prompts 512,4096 \
      --prefill-repeats 1 > "$R/torch-1.5B.json" 2> "$R/torch-1.5B.log"
    echo "rc=$?"; cat "$R/torch-1.5B.json"; grep '^{' "$R/torch-1.5B.log"
  else
    echo "torch is not importable (or sees no GPU) on this machine" | tee "$R/torch-1.5B.log"
  fi
  pack
  long_prompt 0.1B vulkan 2048
  long_prompt 0.4B vulkan 2048
}

shapes=(${@:-0.1B 0.4B 1.5B 2.9B 7.2B})
for n in "${shapes[@]}"; do report "$n"; done
[ "${RWKVC_REPORT_EXTRA:-0}" = 1 ] && extras
pack
