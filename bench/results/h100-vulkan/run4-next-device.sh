#!/bin/bash
# After run 4 (session 5), not run yet: the new state copied by one kernel per 128 slots instead of a
# transfer per slot; default decode and prefill at 0.1B, 0.4B, 1.5B, and the LoRA ups folded into
# the split wkv kernel at 0.1B and 0.4B. Logs in $OUT/run4-next.tgz.
export XDG_CACHE_HOME=/tmp/rwkvc-cache
B=${BUILD:-build-dev}
L=$OUT/run4-next
mkdir -p "$L"
{ time timeout 90 sh -c "cmake -S . -B $B -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_VULKAN=ON -DRWKVC_CUDA=OFF > /dev/null &&
  ninja -C $B rwkvc_vulkan_tests"; } > "$L/build.log" 2>&1
{ time RWKVC_SPEED_SHAPES=${RUN4_SMALL:-12x768,24x1024} RWKVC_SPEED_FOLDS= RWKVC_SPEED_COOPMAT=0 \
  RWKVC_SPEED_VARIANTS="RWKVC_VULKAN_FOLDS=norm_mix,lora_up" timeout 30 stdbuf -oL -eL "$B/tests/rwkvc_vulkan_tests" "[.speed]"; } > "$L/speed-small.log" 2>&1
{ time RWKVC_SPEED_SHAPES=${RUN4_BIG:-24x2048} RWKVC_SPEED_FOLDS= RWKVC_SPEED_COOPMAT=0 \
  timeout 45 stdbuf -oL -eL "$B/tests/rwkvc_vulkan_tests" "[.speed]"; } > "$L/speed-1.5B.log" 2>&1
tar czf "$OUT/run4-next.tgz" -C "$OUT" run4-next
