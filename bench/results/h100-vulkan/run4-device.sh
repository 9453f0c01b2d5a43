#!/bin/bash
# Run 4 (session 5) on the device machine, after `source .device/prepare.sh`: build the Vulkan
# tests, the 1.5B speed probe with every decode variant, the whole Vulkan test program (with the
# validation layer), then 0.1B and 0.4B. Logs under $OUT/run4, packed into $OUT/run4.tgz.
# (BUILD, RUN4_BIG and RUN4_SMALL override the build folder and shapes for a dry run elsewhere.)
export XDG_CACHE_HOME=/tmp/rwkvc-cache
B=${BUILD:-build-dev}
L=$OUT/run4
mkdir -p "$L"
{ time timeout 110 sh -c "cmake -S . -B $B -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_VULKAN=ON -DRWKVC_CUDA=OFF &&
  ninja -C $B rwkvc_vulkan_tests"; } > "$L/build.log" 2>&1
V="RWKVC_VULKAN_WKV_TOKEN_SPLIT=0"
V="$V;RWKVC_VULKAN_FOLDS=norm_mix,chain"
V="$V;RWKVC_VULKAN_GEMV=fold_prefetch=1"
V="$V;RWKVC_VULKAN_FOLDS=norm_mix,chain RWKVC_VULKAN_GEMV=fold_prefetch=1,unroll=16 RWKVC_VULKAN_WKV_PREFETCH=1"
V="$V;RWKVC_VULKAN_WKV_TOKEN_SPLIT=8"
V="$V;RWKVC_VULKAN_WKV_PREFETCH=1"
V="$V;RWKVC_VULKAN_FOLDS=norm_mix,lora_up"
V="$V;RWKVC_VULKAN_GEMV=unroll=16"
V="$V;RWKVC_VULKAN_GEMV=fold_prefetch=1,fold_groups=512"
V="$V;RWKVC_VULKAN_FOLDS=norm_mix,chain RWKVC_VULKAN_GEMV=fold_prefetch=1"
V="$V;RWKVC_VULKAN_FOLDS=norm_mix,chain RWKVC_VULKAN_GEMV=fold_prefetch=1,fold_groups=512"
V="$V;RWKVC_VULKAN_GEMV=rows=8"
V="$V;RWKVC_VULKAN_GEMV=fold_prefetch=1,fold_groups=1024"
V="$V;RWKVC_VULKAN_FOLDS=norm_mix,chain,lora_up RWKVC_VULKAN_GEMV=fold_prefetch=1,unroll=16 RWKVC_VULKAN_WKV_PREFETCH=1"
V="$V;RWKVC_VULKAN_GEMV=unroll=4"
V="$V;RWKVC_SPEED_REPEAT=default"
{ time RWKVC_SPEED_SHAPES=${RUN4_BIG:-24x2048} RWKVC_SPEED_FOLDS= RWKVC_SPEED_COOPMAT=0 RWKVC_SPEED_VARIANTS="$V" \
  timeout 90 stdbuf -oL -eL "$B/tests/rwkvc_vulkan_tests" "[.speed]"; } > "$L/speed-1.5B.log" 2>&1
{ time timeout 45 "$B/tests/rwkvc_vulkan_tests"; } > "$L/tests.log" 2>&1
S="RWKVC_VULKAN_FOLDS=norm_mix,chain RWKVC_VULKAN_GEMV=fold_prefetch=1,unroll=16 RWKVC_VULKAN_WKV_PREFETCH=1"
S="$S;RWKVC_VULKAN_FOLDS=norm_mix,chain,lora_up RWKVC_VULKAN_GEMV=fold_prefetch=1,unroll=16 RWKVC_VULKAN_WKV_PREFETCH=1"
{ time RWKVC_SPEED_SHAPES=${RUN4_SMALL:-12x768,24x1024} RWKVC_SPEED_FOLDS= RWKVC_SPEED_COOPMAT=0 RWKVC_SPEED_VARIANTS="$S" \
  timeout 30 stdbuf -oL -eL "$B/tests/rwkvc_vulkan_tests" "[.speed]"; } > "$L/speed-small.log" 2>&1
tar czf "$OUT/run4.tgz" -C "$OUT" run4
