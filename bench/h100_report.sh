#!/bin/bash
# On the GPU machine (the device tool, repository root, carry [".device"]): builds rwkvc with the
# CPU, Vulkan and CUDA backends and runs `rwkvc bench` on RWKV-7 shapes (f16 weights, -O0 and
# -O2), one JSON + Markdown report per shape, all in $OUT/h100-report.tar.gz. The side-by-side
# summary is made from the JSON records with `rwkvc bench --summarize` (here or anywhere).
#   [RWKVC_REPORT_CHECKS=1] bash bench/h100_report.sh [shape names: 0.1B 0.4B 1.5B 2.9B 7.2B]
# RWKVC_REPORT_CHECKS=1 first runs the CUDA tests and compute-sanitizer (backends/cuda/device_check.sh)
# and the Vulkan tests with the validation layer, on the same build. The tarball is rewritten
# after every shape, so a run cut short still returns what it finished.
set -o pipefail
source .device/prepare.sh
OUT=${OUT:-/tmp/out}
R=/tmp/h100-report/h100  # packed into $OUT after each step: the device tool returns a few files only
mkdir -p "$R" "$OUT"
export XDG_CACHE_HOME=/tmp/rwkvc-cache
checks=${RWKVC_REPORT_CHECKS:-0}
targets="rwkvc"
[ "$checks" = 1 ] && targets="rwkvc rwkvc_cuda_tests rwkvc_vulkan_tests"
echo "== build $(date +%T)"
{ cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF && ninja -C build-dev $targets; } > "$R/build.log" 2>&1 ||
  { tail -40 "$R/build.log"; exit 1; }
B=build-dev/rwkvc
$B devices | tee "$R/devices.txt"
pack() { tar -czf "$OUT/h100-report.tar.gz" -C "$(dirname "$R")" h100; }
if [ "$checks" = 1 ]; then
  echo "== vulkan tests $(date +%T)"
  build-dev/tests/rwkvc_vulkan_tests > "$R/vulkan-tests.log" 2>&1
  echo "rc=$?"; grep -E "FAILED|failed|passed" "$R/vulkan-tests.log" | head -20
  OUT="$R/cuda" RWKVC_SKIP_BUILD=1 RWKVC_CHECK="tests sanitizer" bash backends/cuda/device_check.sh
  pack
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

for name in "${@:-0.1B 0.4B 1.5B 2.9B 7.2B}"; do
  for n in $name; do
    echo "== $n (${SHAPE[$n]}: ${BACKENDS[$n]})"
    $B bench --shape "${SHAPE[$n]}" --backends "${BACKENDS[$n]}" --dtype f16 -O0,-O2 --prompt 512 --gen 64 --repeat 3 \
      --bandwidth-gbs "cuda=$BW,vulkan=$BW" --peak-tflops "cuda=$PEAK,vulkan=$PEAK" \
      --json "$R/$n.json" --markdown "$R/$n.md" --svg "$R/$n.svg" > "$R/$n.log" 2>&1
    echo "rc=$? $(date +%T)"; grep -E "^(cuda|vulkan|cpu) |fraction|decode x" "$R/$n.log"
    pack
  done
done
pack
