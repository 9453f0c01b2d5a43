# Session 6 final device call: build, every CUDA and Vulkan test (NVIDIA driver, validation on),
# the 1.5B report (-O2, CUDA 4096, Vulkan 2048, PyTorch), compute-sanitizer in what is left.
set -o pipefail
source .device/prepare.sh > /dev/null
export XDG_CACHE_HOME=/tmp/rwkvc-cache
R=/tmp/final/checks; mkdir -p "$R"
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
pack() { tar -czf "$OUT/checks.tar.gz" -C /tmp/final checks; }
{ cmake -S . -B build-dev -G Ninja -DRWKVC_BUILD_BENCH=OFF -DRWKVC_CUDA=ON -DRWKVC_VULKAN=ON &&
  ninja -C build-dev rwkvc rwkvc_cuda_tests rwkvc_vulkan_tests; } > "$R/build.log" 2>&1 || { tail -30 "$R/build.log"; exit 1; }
el build
build-dev/rwkvc devices > "$R/devices.txt" 2>&1
timeout 170 build-dev/tests/rwkvc_vulkan_tests --durations yes > "$R/vulkan-tests.log" 2>&1 &
vk=$!
timeout 170 build-dev/tests/rwkvc_cuda_tests "~[gemv_staged]" --durations yes > "$R/cuda-tests.log" 2>&1
echo "cuda tests rc=$?"; grep -E "FAILED|failed|passed" "$R/cuda-tests.log" | tail -8
el cuda tests
wait $vk; echo "vulkan tests rc=$?"; grep -E "FAILED|failed|passed" "$R/vulkan-tests.log" | tail -8
el vulkan tests
timeout 40 build-dev/tests/rwkvc_cuda_tests "[gemv_staged]" > "$R/gemv-staged-tests.log" 2>&1
echo "gemv_staged tests rc=$?"; grep -E "FAILED|failed|passed" "$R/gemv-staged-tests.log" | tail -3
pack; el staged
RWKVC_REPORT_LEVELS=-O2 RWKVC_REPORT_EXTRA=1 timeout 190 bash bench/h100_report.sh 1.5B 2>&1 | grep -v "^$"
el report
left=$(( ${FINAL_SECONDS:-440} - ($(date +%s) - t0) - 5 ))
if [ $left -gt 20 ]; then
  OUT="$R/sanitizer" RWKVC_SKIP_BUILD=1 RWKVC_CHECK=sanitizer timeout $left bash backends/cuda/device_check.sh > "$R/sanitizer.txt" 2>&1
  grep -E "rc=" "$R/sanitizer.txt"
fi
pack; el done
