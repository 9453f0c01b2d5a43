# Call 5 (helper cuda-prefill, 2026-11-23): the command given to the device tool (carry .device,
# nvidia-h100-x1, timeout 330 s); its printed output follows as comments.
source .device/prepare.sh >/dev/null; export XDG_CACHE_HOME=/tmp/rwkvc-cache; S=$SECONDS; T=build-dev/tests/rwkvc_cuda_tests
(cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_VULKAN=OFF && ninja -k 0 -C build-dev rwkvc rwkvc_cuda_tests) > $OUT/build.log 2>&1; echo build rc=$? $((SECONDS-S))s; [ -x $T ] || { tail -30 $OUT/build.log; exit 1; }
timeout 70 $T "[wkv7_chunked],[matrix]" > $OUT/tests1.log 2>&1; echo tests1 rc=$? $((SECONDS-S))s; grep -E "FAILED|passed|failed|CUDA chunked|errors:" $OUT/tests1.log | head -40
RWKVC_BENCH_SHAPES=L24xD2048,L12xD768 RWKVC_BENCH_OUT=$OUT/bench.jsonl timeout 100 $T "[bench]" > $OUT/bench.log 2>&1; echo bench rc=$? $((SECONDS-S))s; cat $OUT/bench.jsonl
timeout 80 $T "~[codegen]~[wkv7_chunked]~[matrix]" > $OUT/tests2.log 2>&1; echo tests2 rc=$? $((SECONDS-S))s; grep -E "FAILED|passed|failed" $OUT/tests2.log | head -20
if [ $((SECONDS-S)) -lt 255 ]; then RWKVC_WKV7_CHUNKED_FROM=0 RWKVC_BENCH_SHAPES=L24xD2048 RWKVC_BENCH_OUT=$OUT/bench-sequential.jsonl timeout $((300-SECONDS+S)) $T "[bench]" >> $OUT/bench.log 2>&1; echo seqbench rc=$? $((SECONDS-S))s; cat $OUT/bench-sequential.jsonl; fi
for tool in memcheck racecheck; do [ $((SECONDS-S)) -lt 290 ] || break; timeout $((318-SECONDS+S)) compute-sanitizer --tool $tool --error-exitcode 9 build-dev/rwkvc forward --backend cuda --mode gpt --model tests/models/rwkv7-tiny.safetensors --tokens $(seq -s, 1 40) > /tmp/san.log 2>&1; echo $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log | tr '\n' ' '); cat /tmp/san.log >> $OUT/sanitizer.log; done
echo end $((SECONDS-S))s
# Output (wall 274.5 s; the default threshold was 32 tokens in this tree, so every call of 32+
# tokens took the chunked kernel except under RWKVC_WKV7_CHUNKED_FROM=0):
#   build rc=0 49s
#   tests1 rc=0 101s            All tests passed (353 assertions in 7 test cases)   -> 5-tests.log
#   bench rc=0 160s             -> 5-bench-chunked.jsonl, 5-bench.log (first two profiles)
#   tests2 rc=124 241s          the exclusion-only filter also selected the hidden bench cases
#                               (Catch2 v2), which used the 80 s: -> 5-tests-rest.log
#   seqbench rc=0 267s          -> 5-bench-sequential.jsonl, 5-bench.log (last profiles)
#   memcheck rc=0 ========= ERROR SUMMARY: 0 errors                  (40-token prompt, chunked)
#   racecheck rc=0 ========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)
#   end 271s
