// Decode speed of large random RWKV-7 models (f16 matrices) under each decode tuning switched
// off and on, in one process on the same weights, so the effect of each shows apart from the
// run-to-run spread. Hidden ([.decode_bench]); on a GPU:
//   RWKVC_BENCH_SHAPES=L24xD2048 rwkvc_cuda_tests "[decode_bench]"
// RWKVC_DECODE_VARIANTS: "name:VAR=value,VAR=value;name:..." (default below). Prints one JSON
// object per shape and variant. "[.decode_profile]" runs five eager one-token forwards of the
// first shape and nothing else, for a kernel profiler (ncu) to time each launch on its own.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cuda/roofline.h"
#include "bench_models.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

namespace {

// The switches the variants set; each variant starts with all of them unset (everything on).
constexpr const char* kSwitches[] = {"RWKVC_CUDA_EARLY_RELEASE",         "RWKVC_CUDA_PDL",
                                     "RWKVC_CUDA_FOLD_LN",               "RWKVC_CUDA_FOLD_LN_ROW_BLOCKS",
                                     "RWKVC_CUDA_FOLD_LORA_UP",          "RWKVC_CUDA_WKV_PREFETCH",
                                     "RWKVC_CUDA_GEMV_MIN_BLOCKS",       "RWKVC_CUDA_GEMV_PERSISTENT",
                                     "RWKVC_CUDA_GEMV_PERSISTENT_GRID",  "RWKVC_CUDA_GEMV_STAGED",
                                     "RWKVC_CUDA_GEMV_STAGED_STAGES",    "RWKVC_CUDA_GEMV_STAGED_TILE_KB",
                                     "RWKVC_CUDA_GEMV_STAGED_PER_SM",    "RWKVC_CUDA_GEMV_STAGED_GRID",
                                     "RWKVC_CUDA_GEMV_STAGED_HEAD",      "RWKVC_CUDA_GEMV_STAGED_LANES",
                                     "RWKVC_CUDA_GEMV_STAGED_COPY",      "RWKVC_CUDA_SHARED_CARVEOUT"};
// Session 5: the default (LoRA ups in the wkv kernel, state prefetch), with the layer-norm fold
// on as well (4 row blocks a block), with three batched GEMV blocks an SM, and both folds off.
// Then the GEMV batches walked by resident warps (gemv_persistent.h): as many blocks as the
// occupancy calculator allows, three an SM (fewer registers), one an SM (132 on the H100), and
// with the layer-norm fold (whose batches keep their own kernel). Session 6: the GEMVs staging
// their weight tiles in shared memory before the wait (gemv_staged.h; a warp a row): a block per
// 4 tiles of 16 KB, then rings of 2 x 32 KB and 2 x 16 KB, two blocks an SM walking a ring of
// 3 x 16 KB, one an SM with 4 x 32 KB, rows split over the block (256 lanes), every thread
// copying (cp.async) instead of one bulk copy a tile, without the head, and with every kernel
// preferring shared memory over L1.
constexpr const char* kDefaultVariants =
    "default:;ln_fold:RWKVC_CUDA_FOLD_LN=1;gemv_3_blocks:RWKVC_CUDA_GEMV_MIN_BLOCKS=3;"
    "all_off:RWKVC_CUDA_FOLD_LORA_UP=0,RWKVC_CUDA_WKV_PREFETCH=0;"
    "gemv_walk:RWKVC_CUDA_GEMV_PERSISTENT=1;"
    "gemv_walk_3_blocks:RWKVC_CUDA_GEMV_PERSISTENT=1,RWKVC_CUDA_GEMV_MIN_BLOCKS=3;"
    "gemv_walk_132_blocks:RWKVC_CUDA_GEMV_PERSISTENT=1,RWKVC_CUDA_GEMV_PERSISTENT_GRID=132;"
    "gemv_walk_ln_fold:RWKVC_CUDA_GEMV_PERSISTENT=1,RWKVC_CUDA_FOLD_LN=1;"
    "staged:RWKVC_CUDA_GEMV_STAGED=1;"
    "staged_2x32k:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_STAGES=2,RWKVC_CUDA_GEMV_STAGED_TILE_KB=32;"
    "staged_2x16k:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_STAGES=2;"
    "staged_walk_2sm_3x16k:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_PER_SM=2,RWKVC_CUDA_GEMV_STAGED_STAGES=3;"
    "staged_walk_1sm_4x32k:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_PER_SM=1,RWKVC_CUDA_GEMV_STAGED_TILE_KB=32;"
    "staged_split:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_LANES=256;"
    "staged_threads:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_COPY=threads;"
    "staged_no_head:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_GEMV_STAGED_HEAD=0;"
    "staged_carveout:RWKVC_CUDA_GEMV_STAGED=1,RWKVC_CUDA_SHARED_CARVEOUT=100";

void set_switches(const std::string& settings) {
  for (const char* name : kSwitches) ::unsetenv(name);
  std::stringstream list(settings);
  for (std::string setting; std::getline(list, setting, ',');) {
    auto equals = setting.find('=');
    REQUIRE(equals != std::string::npos);
    ::setenv(setting.substr(0, equals).c_str(), setting.substr(equals + 1).c_str(), 1);
  }
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream list(text);
  for (std::string part; std::getline(list, part, separator);)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

}  // namespace

TEST_CASE("CUDA decode speed with each decode tuning on and off", "[.decode_bench][cuda]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  const char* shapes = std::getenv("RWKVC_BENCH_SHAPES");
  const char* variants = std::getenv("RWKVC_DECODE_VARIANTS");
  double bandwidth = cuda::copy_bandwidth(0);
  for (const std::string& item : split(shapes != nullptr ? shapes : "L24xD2048", ',')) {
    BenchModel shaped = bench_model(item);
    std::int64_t table = shaped.config.vocab * shaped.config.embd * 2;
    for (const std::string& variant : split(variants != nullptr ? variants : kDefaultVariants, ';')) {
      auto colon = variant.find(':');
      std::string name = variant.substr(0, colon);
      set_switches(colon == std::string::npos ? "" : variant.substr(colon + 1));
      auto exe = cuda->compile(shaped.graph, shaped.weights);
      double bytes = static_cast<double>(exe->stats().weight_bytes - table + shaped.config.embd * 2);
      ForwardOptions timed;
      timed.time_on_device = true;
      State state = exe->new_state();
      std::vector<double> device;
      std::vector<float> first_logits;
      for (int i = 0; i < 210; ++i) {
        std::vector<std::int32_t> one{static_cast<std::int32_t>((i * 7919) % shaped.config.vocab)};
        HostTensor logits = exe->forward(one, state, timed);
        if (i == 0) first_logits = logits.to_f32();
        if (i >= 10) device.push_back(exe->stats().device_seconds);
      }
      std::sort(device.begin(), device.end());
      double median = device[device.size() / 2], best = device.front();
      // Every variant computes the same function: its first logits agree with the others'.
      double sum = 0;
      for (float v : first_logits) sum += std::fabs(v);
      fmt::print("{{\"model\": \"rwkv7 {} f16\", \"variant\": \"{}\", \"decode_tokens_per_s\": {:.1f}, "
                 "\"ms_per_token\": {:.4f}, \"best_ms\": {:.4f}, \"of_roofline\": {:.3f}, \"kernels\": {}, "
                 "\"first_logits_abs_sum\": {:.6e}}}\n",
                 item, name, 1.0 / median, median * 1e3, best * 1e3, bytes / bandwidth / median,
                 exe->stats().kernels_per_forward, sum);
      CHECK(std::isfinite(sum));
    }
    set_switches("");
  }
}

TEST_CASE("Eager one-token CUDA forwards for a kernel profiler", "[.decode_profile][cuda]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  const char* shapes = std::getenv("RWKVC_BENCH_SHAPES");
  BenchModel shaped = bench_model(split(shapes != nullptr ? shapes : "L24xD2048", ',').front());
  ::setenv("RWKVC_CUDA_GRAPHS", "0", 1);
  auto exe = cuda->compile(shaped.graph, shaped.weights);
  State state = exe->new_state();
  for (int i = 0; i < 5; ++i) {
    std::vector<std::int32_t> one{static_cast<std::int32_t>(17 + i)};
    exe->forward(one, state);
  }
  fmt::print("{} launches a forward\n", exe->stats().kernels_per_forward);
  ::unsetenv("RWKVC_CUDA_GRAPHS");
  CHECK(exe->stats().kernels_per_forward > 0);
}

}  // namespace rwkvc::test
