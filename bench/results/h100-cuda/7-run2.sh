# Call 7, second command (helper cuda-wkv7-prefill): the row kernel with its u, v and sa in
# registers and the record's matrices read by swizzled float4s; the chunked kernels on by default
# from 512 tokens. bash bench/results/h100-cuda/7-run2.sh (carry .device); logs under $OUT.
source .device/prepare.sh >/dev/null; export XDG_CACHE_HOME=/tmp/rwkvc-cache
S=$SECONDS; LIMIT=${LIMIT:-66}; T=build-dev/tests/rwkvc_cuda_tests
left() { echo $((LIMIT - SECONDS + S)); }
(cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_VULKAN=OFF -DRWKVC_CUDA=ON && ninja -C build-dev rwkvc_cuda_tests) > $OUT/build.log 2>&1
echo build rc=$? $((SECONDS-S))s; [ -x $T ] || { tail -30 $OUT/build.log; exit 1; }
[ $(left) -gt 5 ] && RWKVC_WKV7_BENCH_QUICK=1 timeout $(( $(left) - 1 )) $T "[.wkv7_chunked_bench]" > $OUT/kbench.log 2>&1; echo kbench rc=$? $((SECONDS-S))s
grep -E "wkv7 bench:|FAILED" $OUT/kbench.log | sed 's/; last y vs sequential:/ | y/; s/; state max-abs/ | state/'
grep -A3 "profile of a 4096" $OUT/kbench.log | grep -E "wkv7"
[ $(left) -gt 12 ] && timeout $(( $(left) - 2 )) $T "CUDA's chunked WKV7 matches the CPU's recurrence" > $OUT/tests.log 2>&1; echo tests rc=$? $((SECONDS-S))s
grep -E "FAILED|passed|failed" $OUT/tests.log | head -12
if [ $(left) -gt 32 ]; then
  RWKVC_BENCH_SHAPES=L24xD2048 RWKVC_BENCH_OUT=$OUT/bench.jsonl timeout $(( $(left) - 2 )) $T "[bench]" > $OUT/bench.log 2>&1
  echo bench rc=$? $((SECONDS-S))s; cat $OUT/bench.jsonl 2>/dev/null; grep -iE "wkv7" $OUT/bench.log | head -4
fi
cd $OUT && tar czf logs.tgz *.log *.jsonl 2>/dev/null; echo end $((SECONDS-S))s
# Output (device tool, nvidia-h100-x1, fresh machine, LIMIT=66, timeout 70; wall 60.7 s):
#   build rc=0 41s
#   kbench rc=0 48s      -> 7-2-kbench.log
#   tests rc=0 57s       All tests passed (288 assertions in 1 test case) -> 7-2-tests.log
#   (no time left for the 1.5B bench)
