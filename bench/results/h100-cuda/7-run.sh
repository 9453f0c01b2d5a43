# Call 7 (helper cuda-wkv7-prefill): the two-kernel chunked WKV7. Run on the device tool from the
# repository root (carry .device): bash bench/results/h100-cuda/7-run.sh; logs under $OUT.
# Stops itself before LIMIT seconds (default 205) so that its logs come back.
source .device/prepare.sh >/dev/null; export XDG_CACHE_HOME=/tmp/rwkvc-cache
S=$SECONDS; LIMIT=${LIMIT:-205}; T=build-dev/tests/rwkvc_cuda_tests
left() { echo $((LIMIT - SECONDS + S)); }
(cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_VULKAN=OFF -DRWKVC_CUDA=ON && ninja -C build-dev rwkvc rwkvc_cuda_tests) > $OUT/build.log 2>&1
echo build rc=$? $((SECONDS-S))s; [ -x $T ] || { tail -30 $OUT/build.log; exit 1; }
# 1. The WKV7 step alone, 32 heads of 64: sequential against each chunked variant, 64..4096 tokens.
timeout 50 $T "[.wkv7_chunked_bench]" > $OUT/kbench.log 2>&1; echo kbench rc=$? $((SECONDS-S))s
grep -E "wkv7 bench:" $OUT/kbench.log | sed 's/; last y vs sequential:/ | y/; s/; state max-abs/ | state/'
# The fastest chunked variant at 4096 tokens runs the rest.
best=$(grep -E "wkv7 bench: 4096 tokens, chunked" $OUT/kbench.log | sed -E 's/.*chunked ([0-9x]+)( fused)?: ([0-9.]+) ms.*/\3 \1 \2/' | sort -n | head -1)
SHAPE=$(echo $best | awk '{print $2}'); FUSED=0; case "$best" in *fused*) FUSED=1;; esac
export RWKVC_WKV7_CHUNKED_SHAPE=${SHAPE:-16x2} RWKVC_WKV7_CHUNKED_FUSED=$FUSED; echo "picked: shape $RWKVC_WKV7_CHUNKED_SHAPE fused $FUSED"
# 2. Correctness: the chunked kernels against the CPU, and the tiny-model matrix with its
#    70-token prompts on the chunked kernels.
RWKVC_WKV7_CHUNKED_FROM=32 timeout 70 $T "[wkv7_chunked],[matrix]" > $OUT/tests.log 2>&1; echo tests rc=$? $((SECONDS-S))s
grep -E "FAILED|passed|failed|CUDA chunked vs CPU" $OUT/tests.log | head -30
# 3. The 1.5B bench with the chunked kernels from 64 tokens, then with the sequential ones.
for from in 64 0; do
  [ $(left) -gt 40 ] || break
  RWKVC_WKV7_CHUNKED_FROM=$from RWKVC_BENCH_SHAPES=L24xD2048 RWKVC_BENCH_OUT=$OUT/bench-from$from.jsonl \
    timeout $(( $(left) - 8 )) $T "[bench]" > $OUT/bench-from$from.log 2>&1
  echo bench from=$from rc=$? $((SECONDS-S))s; cat $OUT/bench-from$from.jsonl 2>/dev/null
  grep -iE "wkv7" $OUT/bench-from$from.log | head -6
done
# 4. memcheck of a chunked 40-token prompt of rwkv7-tiny (head size 32).
if [ $(left) -gt 15 ]; then
  RWKVC_WKV7_CHUNKED_FROM=1 timeout $(( $(left) - 3 )) compute-sanitizer --tool memcheck --error-exitcode 9 build-dev/rwkvc \
    forward --backend cuda --mode gpt --model tests/models/rwkv7-tiny.safetensors --tokens $(seq -s, 1 40) > $OUT/sanitizer.log 2>&1
  echo memcheck rc=$? $(grep -E 'ERROR SUMMARY' $OUT/sanitizer.log)
fi
cd $OUT && tar czf logs.tgz *.log *.jsonl 2>/dev/null; echo end $((SECONDS-S))s
# Output (device tool, nvidia-h100-x1, LIMIT=205, timeout 220; wall 153.9 s). The machine was warm
# with a build-dev configured by an earlier call with RWKVC_CUDA=OFF: cmake kept it, so ninja
# knew no rwkvc_cuda_tests target (7-1-build.log) and the steps below ran that call's binary,
# built from the shared tree minutes before with this kernel text; rwkvc was missing, so the
# memcheck did not run. -DRWKVC_CUDA=ON above was added after the call (7-run2.sh has it).
#   build rc=1 0s
#   kbench rc=0 23s      -> 7-1-kbench.log
#   picked: shape 16x2 fused 0
#   tests rc=0 72s       All tests passed (509 assertions in 7 test cases) -> 7-1-tests.log
#   bench from=64 rc=0 115s, bench from=0 rc=0 150s -> 7-1-bench*.jsonl, 7-1-bench.log
#   memcheck rc=1 (Target application doesn't exist)
