#!/bin/bash
# Call 4 (decode session), on the GPU machine from the repository root (carry [".device"]):
# build, the CUDA tests (the NVRTC code generation ones ran on the 2-core machine), the decode
# tunings on and off at 1.5B (decode_bench_test.cpp), the usual bench at 1.5B (decode, prefill,
# eager profile), an ncu time per kernel of one eager 1.5B decode step, the tunings at 0.1B and
# 7.2B, then compute-sanitizer while time is left (the variants it ran, with the L2 prefetch and
# row split switches, were removed after it). Logs go straight to $OUT (8 files), so a
# part cut off by its timeout still leaves what it wrote; each part starts only while time is left.
set -o pipefail
source .device/prepare.sh
OUT=${OUT:-/tmp/out}
LOG=$OUT
mkdir -p "$OUT"
export XDG_CACHE_HOME=/tmp/rwkvc-cache
left() { [ $SECONDS -lt "$1" ] || { echo "skipped: ${SECONDS}s gone"; return 1; }; }
cap() { local rest=$((320 - SECONDS)); echo $(( $1 < rest ? $1 : rest )); }  # a part's timeout
T=build-dev/tests/rwkvc_cuda_tests
echo "== build $(date +%T)"
{ cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_VULKAN=OFF && ninja -C build-dev rwkvc rwkvc_cuda_tests; } \
  > "$LOG/build.log" 2>&1 || { tail -40 "$LOG/build.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== tests $(date +%T)"
timeout $(cap 90) $T "~[codegen]~[.]" --durations yes > "$LOG/tests.log" 2>&1
echo "tests rc=$?"; grep -E "FAILED|failed|passed|No tests" "$LOG/tests.log" | head -20; tail -2 "$LOG/tests.log"
echo "== decode tunings 1.5B $(date +%T)"
left 250 && RWKVC_BENCH_SHAPES=L24xD2048 timeout $(cap 75) $T "[decode_bench]" > "$LOG/decode_ab.log" 2>&1
echo "rc=$?"; grep '^{' "$LOG/decode_ab.log" | cut -c1-230
echo "== bench 1.5B $(date +%T)"
left 265 && RWKVC_BENCH_SHAPES=L24xD2048 RWKVC_BENCH_OUT="$LOG/bench.jsonl" timeout $(cap 60) $T "[bench]" > "$LOG/bench.log" 2>&1
echo "rc=$?"; cat "$LOG/bench.jsonl"
echo "== ncu $(date +%T)"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
left 280 && RWKVC_BENCH_SHAPES=L24xD2048 timeout $(cap 50) $NCU --metrics gpu__time_duration.sum --csv --launch-skip 594 \
  --launch-count 198 $T "[decode_profile]" > "$LOG/ncu.csv" 2>&1
echo "rc=$?"
python3 - "$LOG/ncu.csv" > "$LOG/ncu_summary.txt" 2>&1 <<'EOF'
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head, data = rows[0], rows[1:]
name, grid, value = head.index("Kernel Name"), head.index("Grid Size"), head.index("Metric Value")
by = collections.defaultdict(lambda: [0.0, 0])
for r in data:
    key = r[name][:40] + " " + r[grid]
    by[key][0] += float(r[value].replace(",", "")) / 1e3
    by[key][1] += 1
total = sum(v[0] for v in by.values())
print(f"ncu, one eager 1.5B decode step, kernels serialized: {len(data)} launches, {total:.1f} us")
for k, (us, n) in sorted(by.items(), key=lambda kv: -kv[1][0]):
    print(f"{us:9.1f} us {100 * us / total:5.1f}% {n:4d}x {us / n:7.2f} us  {k}")
EOF
head -30 "$LOG/ncu_summary.txt"
echo "== decode tunings 0.1B, 7.2B $(date +%T)"
left 290 && RWKVC_BENCH_SHAPES=L12xD768,L32xD4096 timeout $(cap 60) \
  env RWKVC_DECODE_VARIANTS="base:RWKVC_CUDA_EARLY_RELEASE=0,RWKVC_CUDA_GEMV_PREFETCH=0,RWKVC_CUDA_ROW_SPLIT=0;all:" \
  $T "[decode_bench]" >> "$LOG/decode_ab.log" 2>&1
echo "rc=$?"; grep '^{' "$LOG/decode_ab.log" | tail -n +7 | cut -c1-230
echo "== compute-sanitizer $(date +%T)"
for model in rwkv7 rwkv4; do
  for tool in memcheck racecheck; do
    left 305 || break
    timeout $(cap 30) compute-sanitizer --tool $tool --error-exitcode 9 build-dev/rwkvc forward --backend cuda --mode rnn \
      --model tests/models/$model-tiny.safetensors --tokens 1,2,3,4,5,6 > /tmp/san.tmp 2>&1
    echo "$model $tool rnn rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.tmp | tr '\n' ' ')"
    cat /tmp/san.tmp >> "$LOG/sanitizer.log"
  done
done
echo "== end $(date +%T)"
