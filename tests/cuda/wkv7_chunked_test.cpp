// The chunked WKV7: first its algebra on the host (wkv7_chunked_reference.h against the
// sequential recurrence of the CPU backend; no device needed), then the CUDA kernel against the
// CPU backend on a graph that feeds random vectors straight into one wkv7 op. Decays near 0
// (products that underflow), near 1 (long memory) and mixed; lengths shorter than a chunk, equal
// to it and not a multiple of it; a state that is not zero when the prompt starts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cpu/kernels.h"
#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/cuda_wkv7_prompt.h"
#include "backends/cuda/nvrtc_module.h"
#include "cuda_test_support.h"
#include "ir/builder.h"
#include "wkv7_chunked_reference.h"

namespace rwkvc::test {

namespace {

enum class Decays { realistic, near_zero, near_one, mixed };

const char* decay_name(Decays d) {
  switch (d) {
    case Decays::realistic: return "realistic";
    case Decays::near_zero: return "near 0";
    case Decays::near_one: return "near 1";
    case Decays::mixed: return "mixed";
  }
  return "?";
}

float random_decay(Decays decays, std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  switch (decays) {
    case Decays::realistic: {  // exp(-e^-0.5 sigmoid(x)), as RWKV-7 makes them
      float x = 6.0f * unit(rng) - 3.0f;
      return std::exp(-std::exp(-0.5f) / (1.0f + std::exp(-x)));
    }
    case Decays::near_zero: return 1e-7f + 0.02f * unit(rng);
    case Decays::near_one: return 1.0f - 1e-4f * unit(rng);
    case Decays::mixed: return random_decay(unit(rng) < 0.5f ? Decays::near_zero : Decays::near_one, rng);
  }
  return 0.5f;
}

// Rows of vectors as RWKV-7 feeds them: r, k, v in [-1, 1]; a = -kk and b = kk * gate with kk
// a unit vector per head (so the state stays bounded however long the prompt); w by `decays`.
struct Wkv7Vectors {
  std::vector<float> r, w, k, v, a, b;
};

Wkv7Vectors random_vectors(std::size_t rows, std::size_t heads, std::size_t n, Decays decays, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> signed_unit(-1.0f, 1.0f), gate(0.05f, 1.0f);
  std::size_t channels = heads * n, count = rows * channels;
  Wkv7Vectors x;
  for (auto* vec : {&x.r, &x.w, &x.k, &x.v, &x.a, &x.b}) vec->resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    x.r[i] = signed_unit(rng);
    x.k[i] = signed_unit(rng);
    x.v[i] = signed_unit(rng);
    x.w[i] = random_decay(decays, rng);
  }
  for (std::size_t row = 0; row < rows; ++row)
    for (std::size_t h = 0; h < heads; ++h) {
      std::vector<float> kk(n);
      float norm = 0.0f;
      for (float& value : kk) {
        value = signed_unit(rng);
        norm += value * value;
      }
      norm = std::sqrt(norm);
      for (std::size_t j = 0; j < n; ++j) {
        std::size_t at = row * channels + h * n + j;
        x.a[at] = -kk[j] / norm;
        x.b[at] = kk[j] / norm * gate(rng);
      }
    }
  return x;
}

std::vector<float> random_state(std::size_t heads, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> signed_unit(-1.0f, 1.0f);
  std::vector<float> state(heads * n * n);
  for (float& value : state) value = signed_unit(rng);
  return state;
}

// f32 throughout, sums of at most a head's 64 columns times a chunk's 16 tokens in another
// order than the recurrence: a few hundred roundings of 6e-8 each, relative to the largest value.
constexpr double kChunkedTolerance = 1e-4;

}  // namespace

TEST_CASE("The chunked WKV7 algebra matches the sequential recurrence on the host", "[cuda][wkv7_chunked]") {
  for (std::size_t n : {16, 32, 64})
    for (Decays decays : {Decays::realistic, Decays::near_zero, Decays::near_one, Decays::mixed})
      for (std::size_t T : {1, 7, 16, 45, 100}) {
        const std::size_t heads = 3, chunk = 16;
        unsigned seed = static_cast<unsigned>(n * 1000 + T * 10 + static_cast<unsigned>(decays));
        Wkv7Vectors x = random_vectors(T, heads, n, decays, seed);
        std::vector<float> start = random_state(heads, n, seed + 1);
        std::vector<float> state_seq = start, state_chunked = start;
        std::vector<float> y_seq(T * heads * n), y_chunked(T * heads * n, -7.0f);
        cpu::wkv7({x.r, x.w, x.k, x.v, x.a, x.b}, static_cast<std::int64_t>(n), state_seq, y_seq);
        wkv7_chunked_reference({x.r, x.w, x.k, x.v, x.a, x.b}, n, chunk, state_chunked, y_chunked);
        Error ey = compare(std::span<const float>(y_chunked), std::span<const float>(y_seq));
        Error es = compare(std::span<const float>(state_chunked), std::span<const float>(state_seq));
        INFO("N " << n << ", decays " << decay_name(decays) << ", T " << T << ": y max-abs " << ey.max_abs
                  << " relative " << ey.relative << "; state max-abs " << es.max_abs << " relative " << es.relative);
        CHECK(ey.relative <= kChunkedTolerance);
        CHECK(es.relative <= kChunkedTolerance);
        if (T == 100) WARN("host chunked vs sequential: " << decay_name(decays) << " N " << n << ": y " << ey.relative
                                                          << ", state " << es.relative);
      }
}

namespace {

constexpr std::int64_t kVocab = 211;

// tokens -> six embeddings (the random vectors as tables, one row per token id) -> wkv7; the
// logits are y, the state is the wkv state.
Graph wkv7_graph(std::size_t heads, std::size_t n, Decays decays, WeightMap& weights) {
  GraphBuilder b("wkv7_chunked");
  auto C = static_cast<std::int64_t>(heads * n);
  Wkv7Vectors x = random_vectors(static_cast<std::size_t>(kVocab), heads, n, decays, 29 + static_cast<unsigned>(n));
  std::vector<ValueId> inputs;
  ValueId tokens = b.tokens();
  const char* names[] = {"r", "w", "k", "v", "a", "b"};
  std::vector<float>* tables[] = {&x.r, &x.w, &x.k, &x.v, &x.a, &x.b};
  for (int i = 0; i < 6; ++i) {
    Shape shape{kVocab, C};
    weights.emplace(names[i], HostTensor::from_f32(shape, *tables[i]));
    inputs.push_back(b.op1(OpKind::embedding, {b.weight(names[i], {DType::f32, shape}), tokens}));
  }
  auto H = static_cast<std::int64_t>(heads), N = static_cast<std::int64_t>(n);
  inputs.push_back(b.state("att.wkv", {DType::f32, Shape{H, N, N}}));
  std::vector<ValueId> out = b.op(OpKind::wkv7, inputs);
  b.state_out("att.wkv", out[1]);
  b.set_logits(out[0]);
  return b.finish();
}

// Compiled with calls of `from` tokens and more on the chunked kernel.
std::unique_ptr<Executable> compile_with_chunked_from(Backend& backend, const Graph& graph, const WeightMap& weights,
                                                      const char* from) {
  ::setenv("RWKVC_WKV7_CHUNKED_FROM", from, 1);
  auto exe = backend.compile(graph, weights);
  ::unsetenv("RWKVC_WKV7_CHUNKED_FROM");
  return exe;
}

}  // namespace

TEST_CASE("Head sizes 32 and 64 build the chunked WKV7 kernel beside the sequential ones", "[cuda][wkv7_chunked]") {
  configure_cuda_for_tests();
  for (std::size_t n : {32, 64})
    for (const char* mma : {"0", "1", "2", static_cast<const char*>(nullptr)}) {
      INFO("N " << n << ", RWKVC_WKV7_CHUNKED_MMA=" << (mma != nullptr ? mma : "(unset)"));
      WeightMap weights;
      Graph graph = wkv7_graph(2, n, Decays::realistic, weights);
      ScopedEnv from("RWKVC_WKV7_CHUNKED_FROM", "64"), mma_env("RWKVC_WKV7_CHUNKED_MMA", mma);
      cuda::Program program = cuda::build_program(precompute_token_free(graph, weights).graph);
      std::size_t prepare = 0, rows = 0, rows_mma = 0, sequential = 0;
      for (const cuda::KernelHandle& handle : program.module.handles()) {
        prepare += handle.name.rfind("wkv7_chunked_prepare_", 0) == 0;  // the per-chunk records
        rows += handle.name.rfind("wkv7_chunked_rows_", 0) == 0;        // then the rows
        rows_mma += handle.name.rfind("wkv7_chunked_rows_mma_", 0) == 0;  // on tensor cores
        sequential += handle.name.rfind("wkv7_warp_rows_", 0) == 0;
      }
      CHECK(prepare == 1);
      CHECK(rows == 1);
      CHECK(rows_mma == (mma == nullptr || mma[0] != '0' ? 1u : 0u));  // on tensor cores by default
      CHECK(sequential == 1);
      // The kernel text compiles (NVRTC needs no device).
      CHECK(!cuda::compile_cubin(program.module.text(), "sm_90").empty());
      // The records' scratch buffers (full chunks, the last chunk, ready flags) are reserved: each
      // holds the record's shape and no region value's.
      std::size_t record_buffers = 0;
      for (const auto& [name, index] : program.reserved) {
        if (name.rfind("wkv7 ", 0) != 0) continue;
        ++record_buffers;
        CHECK(program.scratch[index].size() == 1);
      }
      CHECK(record_buffers == 3);
    }
  {
    WeightMap weights;
    Graph graph = wkv7_graph(2, 64, Decays::realistic, weights);
    ScopedEnv from("RWKVC_WKV7_CHUNKED_FROM", "64"), mma_env("RWKVC_WKV7_CHUNKED_MMA", "3");
    CHECK_THROWS_AS(cuda::build_program(precompute_token_free(graph, weights).graph), std::invalid_argument);
  }
  CHECK(cuda::wkv7_chunked_from() == cuda::kWkv7ChunkedDefaultFrom);
  ::setenv("RWKVC_WKV7_CHUNKED_FROM", "40", 1);
  CHECK(cuda::wkv7_chunked_from() == 40);
  ::setenv("RWKVC_WKV7_CHUNKED_FROM", "0", 1);
  CHECK(cuda::wkv7_chunked_from() == INT64_MAX);
  ::unsetenv("RWKVC_WKV7_CHUNKED_FROM");
}

TEST_CASE("CUDA's chunked WKV7 matches the CPU's recurrence", "[cuda][wkv7_chunked]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (std::size_t n : {32, 64})
    for (Decays decays : {Decays::realistic, Decays::near_zero, Decays::near_one, Decays::mixed}) {
      WeightMap weights;
      Graph graph = wkv7_graph(3, n, decays, weights);
      auto cpu = make_backend("cpu")->compile(graph, weights);
      // Every call chunked (from 1 token: shorter than a chunk too), and from 32 tokens (the
      // 5-token call goes through the sequential kernel between two chunked ones); "fused":
      // the records and the rows in one launch (RWKVC_WKV7_CHUNKED_FUSED); "mma1", "mma2": the
      // rows on tensor cores, operands split by cvt or by integer rounding (RWKVC_WKV7_CHUNKED_MMA).
      for (const char* from : {"1", "32", "1 fused", "1 mma1", "32 mma1", "1 mma2", "32 mma2"}) {
        std::string variant = from;
        bool fused = variant.find("fused") != std::string::npos;
        std::size_t mma = variant.find("mma");
        std::string mma_value = mma == std::string::npos ? "0" : variant.substr(mma + 3);
        ScopedEnv fused_env("RWKVC_WKV7_CHUNKED_FUSED", fused ? "1" : "0"),
            mma_env("RWKVC_WKV7_CHUNKED_MMA", mma_value.c_str());
        auto gpu = compile_with_chunked_from(*cuda, graph, weights, variant.substr(0, variant.find(' ')).c_str());
        State reference = cpu->new_state(), state = gpu->new_state();
        // Calls in a row: the later ones start from a state that is not zero. 37 and 100: full
        // chunks and a shorter last one; 5: the short one alone; 48: full chunks only.
        for (std::size_t length : {37, 5, 48, 100}) {
          auto tokens = random_tokens(length, kVocab, 7 + static_cast<unsigned>(length + n));
          HostTensor want = feed(*cpu, tokens, reference, FeedMode::gpt(), true);
          HostTensor got = feed(*gpu, tokens, state, FeedMode::gpt(), true);
          REQUIRE(got.shape() == want.shape());
          Error e = compare(got.f32(), want.f32());
          Error es = compare_states(state.to_host(), reference.to_host());
          INFO("N " << n << ", decays " << decay_name(decays) << ", chunked from '" << from << "', " << length
                    << " tokens: y max-abs " << e.max_abs << " relative " << e.relative << "; state relative "
                    << es.relative);
          CHECK(e.relative <= kChunkedTolerance);
          CHECK(es.relative <= kChunkedTolerance);
          if (length == 100) WARN("CUDA chunked vs CPU, N " << n << ", " << decay_name(decays) << ", from '" << from
                                                            << "': y " << e.relative << ", state " << es.relative);
        }
      }
    }
}

}  // namespace rwkvc::test

namespace rwkvc::test {

// Hidden: the WKV7 step alone at the shape of a 1.5B model (32 heads of 64), realistic decays,
// the sequential kernels against each chunked row shape (RWKVC_WKV7_CHUNKED_SHAPE), split in two
// launches or fused (RWKVC_WKV7_CHUNKED_FUSED): the median
// device time of a call (six embedding gathers, then the step) from 64 to 4096 tokens, and each
// chunked result against the sequential one. A per-kernel profile of one 4096-token call of
// each follows on stderr.
TEST_CASE("Chunked WKV7 against the sequential kernels at 32 heads of 64", "[.wkv7_chunked_bench]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  WeightMap weights;
  Graph graph = wkv7_graph(32, 64, Decays::realistic, weights);
  struct Variant {
    const char* name;
    const char* from;
    const char* shape;
    const char* fused;
    const char* mma = "0";
  };
  const Variant variants[] = {{"sequential", "0", "16x2", "0"},         {"chunked 16x2", "1", "16x2", "0"},
                              {"chunked 16x2 fused", "1", "16x2", "1"}, {"chunked 16x1", "1", "16x1", "0"},
                              {"chunked 16x1 fused", "1", "16x1", "1"}, {"chunked 8x1", "1", "8x1", "0"},
                              {"chunked 8x2", "1", "8x2", "0"},         {"chunked 16x4", "1", "16x4", "0"},
                              {"chunked mma cvt", "1", "16x2", "0", "1"}, {"chunked mma int", "1", "16x2", "0", "2"}};
  std::vector<std::size_t> lengths{64, 128, 256, 512, 1024, 4096};
  std::vector<Variant> chosen(std::begin(variants), std::end(variants));
  // RWKVC_WKV7_BENCH_QUICK=1: the sequential kernels, the 16x2 shape and the tensor-core rows,
  // three lengths.
  if (const char* quick = std::getenv("RWKVC_WKV7_BENCH_QUICK"); quick != nullptr && std::string(quick) == "1") {
    lengths = {256, 512, 4096};
    chosen = {variants[0], variants[1], variants[8], variants[9]};
  }
  ForwardOptions timed;
  timed.time_on_device = true;
  std::vector<HostState> sequential_states;
  std::vector<HostTensor> sequential_ys;
  for (const Variant& variant : chosen) {
    ::setenv("RWKVC_WKV7_CHUNKED_SHAPE", variant.shape, 1);
    ::setenv("RWKVC_WKV7_CHUNKED_FUSED", variant.fused, 1);
    ::setenv("RWKVC_WKV7_CHUNKED_MMA", variant.mma, 1);
    auto exe = compile_with_chunked_from(*cuda, graph, weights, variant.from);
    ::unsetenv("RWKVC_WKV7_CHUNKED_SHAPE");
    ::unsetenv("RWKVC_WKV7_CHUNKED_FUSED");
    ::unsetenv("RWKVC_WKV7_CHUNKED_MMA");
    for (std::size_t n = 0; n < lengths.size(); ++n) {
      auto tokens = random_tokens(lengths[n], kVocab, 11 + static_cast<unsigned>(lengths[n]));
      std::vector<double> times;
      HostTensor y;
      State state = exe->new_state();
      for (int i = 0; i < 12; ++i) {
        state = exe->new_state();
        y = exe->forward(tokens, state, timed);
        if (i >= 2) times.push_back(exe->stats().device_seconds);
      }
      std::sort(times.begin(), times.end());
      double median = times[times.size() / 2];
      std::string error;
      if (variant.from[0] == '0') {
        sequential_states.push_back(state.to_host());
        sequential_ys.push_back(y);
      } else {
        Error ey = compare(y.f32(), sequential_ys[n].f32());
        Error es = compare_states(state.to_host(), sequential_states[n]);
        error = fmt::format("; last y vs sequential: max-abs {:.3g} relative {:.3g}; state max-abs {:.3g} relative {:.3g}",
                            ey.max_abs, ey.relative, es.max_abs, es.relative);
        CHECK(ey.relative <= kChunkedTolerance);
        CHECK(es.relative <= kChunkedTolerance);
      }
      WARN(fmt::format("wkv7 bench: {} tokens, {}: {:.4f} ms a call{}", lengths[n], variant.name, median * 1e3, error));
    }
    ::setenv("RWKVC_CUDA_PROFILE", "1", 1);
    State fresh = exe->new_state();
    exe->forward(random_tokens(4096, kVocab, 5), fresh);
    ::unsetenv("RWKVC_CUDA_PROFILE");
  }
}

}  // namespace rwkvc::test
