set -u
source .device/prepare.sh >/dev/null && export XDG_CACHE_HOME=/tmp/rwkvc-cache
t0=$(date +%s)
cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_CUDA=ON -DRWKVC_VULKAN=ON > $OUT/build.log 2>&1 &&
ninja -C build-dev rwkvc rwkvc_cuda_tests rwkvc_vulkan_tests >> $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s)-t0 )) s"
timeout 200 build-dev/tests/rwkvc_cuda_tests > $OUT/cuda-tests.log 2>&1; echo "cuda tests rc=$?"; grep -E "passed|failed" $OUT/cuda-tests.log | tail -3
echo "after tests $(( $(date +%s)-t0 )) s"
RWKVC_BENCH_SHAPES=L24xD2048 timeout 90 build-dev/tests/rwkvc_cuda_tests "[decode_bench]" > $OUT/decode.log 2>&1; grep '^{' $OUT/decode.log
RWKVC_PREFILL_VARIANTS=all,epilogues RWKVC_BENCH_SHAPES=L24xD2048 timeout 80 build-dev/tests/rwkvc_cuda_tests "[.prefill_bench]" > $OUT/prefill.log 2>&1; grep '^{' $OUT/prefill.log
echo "after cuda bench $(( $(date +%s)-t0 )) s"
RWKVC_SPEED_SHAPES=24x2048 RWKVC_SPEED_FOLDS= RWKVC_SPEED_COOPMAT=0 RWKVC_SPEED_VARIANTS='RWKVC_VULKAN_FOLDS=norm_mix,lora_up;RWKVC_VULKAN_FOLDS=norm_mix,lora_up RWKVC_VULKAN_WKV_UPS_AHEAD=1;RWKVC_VULKAN_WKV_TOKEN_SPLIT=8' timeout 100 build-dev/tests/rwkvc_vulkan_tests "[.speed]" > $OUT/vulkan-speed.log 2>&1; echo "vk rc=$?"
grep -iE "decode|variant|tok/s|roofline" $OUT/vulkan-speed.log | head -40
echo "total $(( $(date +%s)-t0 )) s"
