#include "tools/bench_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/backend.h"
#include "frontend/graph_builders.h"
#include "frontend/random.h"
#include "frontend/random_model.h"
#include "tools/model_source.h"

namespace rwkvc::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One forward, timed on the host and, when the backend measures it, on the device. forward
// returns the logits in host memory, so the call has finished on the device when it returns.
Timing timed_forward(Executable& exe, std::span<const std::int32_t> tokens, State& state) {
  ForwardOptions options;
  options.time_on_device = true;
  auto start = Clock::now();
  HostTensor logits = exe.forward(tokens, state, options);
  Timing t{seconds_since(start), exe.stats().device_seconds};
  if (logits.numel() == 0) throw std::runtime_error("forward returned no logits");
  return t;
}

double seconds_on(const Timing& t, bool device) { return device ? t.device_seconds : t.host_seconds; }

// The flag's value for `backend`, else what was measured (the CPU's by this tool, a GPU's by its
// backend), else none.
std::optional<Ceiling> ceiling_for(const std::string& backend, const PerBackend& flag, const std::string& flag_name,
                                   const std::optional<Ceiling>& measured) {
  if (std::optional<double> value = flag.get(backend)) return Ceiling{*value, flag_name};
  return measured;
}

// Fills the rates, percentiles and roofline fractions from the raw timings.
void summarise(ComboResult& r, const BenchSpec& spec) {
  bool device = !r.prefill.empty() || !r.decode.empty();
  for (const auto* timings : {&r.prefill, &r.decode})
    for (const Timing& t : *timings) device = device && t.device_seconds >= 0;
  r.clock = device ? "device" : "host";

  auto prefill_rate = [&](bool on_device) {
    std::vector<double> seconds;
    for (const Timing& t : r.prefill) seconds.push_back(seconds_on(t, on_device));
    return seconds.empty() ? 0.0 : static_cast<double>(spec.prompt) / quantile(seconds, 0.5);
  };
  // Median over the rounds of each round's decode rate.
  auto decode_rate = [&](bool on_device) {
    if (r.decode.empty()) return 0.0;
    std::vector<double> rates;
    const auto gen = static_cast<std::size_t>(spec.gen);
    for (std::size_t begin = 0; begin + gen <= r.decode.size(); begin += gen) {
      double total = 0;
      for (std::size_t i = begin; i < begin + gen; ++i) total += seconds_on(r.decode[i], on_device);
      rates.push_back(static_cast<double>(gen) / total);
    }
    return quantile(rates, 0.5);
  };
  r.prefill_tokens_per_s = prefill_rate(device);
  r.decode_tokens_per_s = decode_rate(device);
  r.host_prefill_tokens_per_s = prefill_rate(false);
  r.host_decode_tokens_per_s = decode_rate(false);
  std::vector<double> latencies;
  for (const Timing& t : r.decode) latencies.push_back(seconds_on(t, device) * 1e3);
  r.decode_p50_ms = quantile(latencies, 0.5);
  r.decode_p99_ms = quantile(latencies, 0.99);

  if (r.bandwidth && r.decode_tokens_per_s > 0)
    r.decode_roofline = static_cast<double>(r.work.decode_bytes_per_token) * r.decode_tokens_per_s / (r.bandwidth->value * 1e9);
  if (r.peak && r.prefill_tokens_per_s > 0) {
    double seconds = static_cast<double>(spec.prompt) / r.prefill_tokens_per_s;
    r.prefill_roofline = r.work.prefill_flops(spec.prompt) / seconds / (r.peak->value * 1e12);
  }
}

void measure(ComboResult& r, Executable& exe, const BenchSpec& spec, std::int64_t vocab) {
  const std::vector<std::int32_t> prompt = bench_tokens(static_cast<std::size_t>(spec.prompt), vocab, 1);
  const std::vector<std::int32_t> generated = bench_tokens(static_cast<std::size_t>(spec.gen), vocab, 2);
  auto note_device_bytes = [&] { r.device_bytes = std::max(r.device_bytes, exe.stats().device_bytes); };
  note_device_bytes();
  for (int round = 0; round < spec.warmup + spec.repeat; ++round) {
    const bool measured = round >= spec.warmup;
    State state = exe.new_state();
    if (!prompt.empty()) {
      Timing t = timed_forward(exe, prompt, state);
      if (measured) r.prefill.push_back(t);
      r.kernels_per_prefill = exe.stats().kernels_per_forward;
      note_device_bytes();
    }
    for (std::int32_t token : generated) {
      Timing t = timed_forward(exe, std::span(&token, 1), state);
      if (measured) r.decode.push_back(t);
    }
    if (!generated.empty()) {
      r.kernels_per_token = exe.stats().kernels_per_forward;
      note_device_bytes();
    }
  }
  ExecutionStats stats = exe.stats();
  r.weight_bytes = stats.weight_bytes;
  r.state_bytes = stats.state_bytes > 0 ? stats.state_bytes
                                        : static_cast<std::int64_t>(4 * exe.state_layout().total_floats());
  r.kernels_source = "backend stats";
  if (r.kernels_per_token == 0 && r.kernels_per_prefill == 0) {
    r.kernels_source = "graph";
    r.kernels_per_token = r.kernels_per_prefill = r.work.kernels;
  }
}

}  // namespace

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double position = q * static_cast<double>(values.size() - 1);
  auto below = static_cast<std::size_t>(std::floor(position));
  std::size_t above = std::min(below + 1, values.size() - 1);
  double fraction = position - static_cast<double>(below);
  return values[below] + (values[above] - values[below]) * fraction;
}

std::vector<std::int32_t> bench_tokens(std::size_t count, std::int64_t vocab, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> tokens(count);
  for (auto& t : tokens) t = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(vocab));
  return tokens;
}

std::string model_label(const BenchSpec& spec, const ModelConfig& c) {
  std::string shape = fmt::format("{}:L{}:D{}:V{}", arch_name(c.arch), c.layers, c.embd, c.vocab);
  if (spec.shape) return spec.shape_text;
  return fmt::format("{} ({})", std::filesystem::path(spec.model_path).filename().string(), shape);
}

Model load_bench_model(const BenchSpec& spec) {
  if (!spec.shape) return load_model(spec.model_path);
  Model model;
  model.path = fmt::format("random {}", spec.shape_text);
  model.config = *spec.shape;
  model.weights = make_random_model(model.config, spec.seed);
  return model;
}

BenchRun run_bench(const BenchSpec& spec, const std::function<void(const std::string&)>& progress) {
  BenchRun run;
  run.spec = spec;
  run.machine = describe_machine();
  run.load_before = load_average();

  // The CPU's ceilings are measured before the model takes memory and cache.
  std::optional<Ceiling> cpu_bandwidth, cpu_peak;
  if (std::find(spec.backends.begin(), spec.backends.end(), "cpu") != spec.backends.end()) {
    if (!spec.bandwidth_gbs.get("cpu")) {
      progress("cpu: measuring memory bandwidth (memcpy)");
      cpu_bandwidth = Ceiling{measure_memcpy_gbs(),
                              fmt::format("measured: memcpy of 256 MiB in {} slices at once, read + write, median of 11",
                                          run.machine.hardware_threads)};
    }
    if (!spec.peak_tflops.get("cpu")) {
      progress("cpu: measuring peak f32 multiply-add rate");
      cpu_peak = Ceiling{measure_cpu_peak_tflops(),
                         fmt::format("measured: f32 multiply-adds as this build vectorises them, {} threads, "
                                     "each timed by its CPU time, best of 5",
                                     run.machine.hardware_threads)};
    }
  }

  progress(spec.shape ? fmt::format("making random weights for {}", spec.shape_text)
                      : fmt::format("loading {}", spec.model_path));
  auto start = Clock::now();
  Model model = load_bench_model(spec);
  run.model_load_seconds = seconds_since(start);
  run.model = describe(model);
  run.config = model.config;
  run.model_label = model_label(spec, model.config);
  run.model_source = spec.shape ? fmt::format("random weights (--shape {}, seed {})", spec.shape_text, spec.seed) : "file";
  const Graph built = build_graph(model.config);
  std::map<std::string, std::optional<DeviceCeilings>> device_ceilings;  // by backend, measured once

  for (const std::string& backend_name : spec.backends) {
    for (const BenchPipeline& pipeline : spec.pipelines) {
      ComboResult r;
      r.backend = backend_name;
      r.pipeline = pipeline.label;
      r.level = pipeline.level;
      const std::string label = fmt::format("{} {}", backend_name, pipeline.label);
      std::unique_ptr<Backend> backend;
      try {
        backend = make_backend(backend_name, BackendOptions{spec.device_for(backend_name)});
      } catch (const std::runtime_error& e) {
        // No usable device: the other backends still run, and the report says why.
        r.skipped = e.what();
        progress(fmt::format("{}: skipped: {}", label, r.skipped));
        run.results.push_back(std::move(r));
        continue;
      }
      r.device = backend->device_name();
      r.rss_peak_is_per_combination = reset_peak_rss();

      progress(fmt::format("{}: passes", label));
      start = Clock::now();
      Graph graph = apply_pipeline(built, pipeline.options);
      r.pipeline_seconds = seconds_since(start);
      r.work = analyse_workload(graph);
      if (backend_name != "cpu" && !device_ceilings.contains(backend_name) &&
          !(spec.bandwidth_gbs.get(backend_name) && spec.peak_tflops.get(backend_name))) {
        progress(fmt::format("{}: measuring the device's bandwidth and peak", backend_name));
        device_ceilings[backend_name] = backend->measure_ceilings();
      }
      const std::optional<DeviceCeilings>& device = device_ceilings[backend_name];
      auto measured = [&](double value, const std::optional<Ceiling>& cpu) -> std::optional<Ceiling> {
        if (backend_name == "cpu") return cpu;
        if (!device || value <= 0) return std::nullopt;
        return Ceiling{value, "measured: " + device->how};
      };
      r.bandwidth = ceiling_for(backend_name, spec.bandwidth_gbs, "--bandwidth-gbs",
                                measured(device ? device->bandwidth_bytes_per_s / 1e9 : 0, cpu_bandwidth));
      r.peak = ceiling_for(backend_name, spec.peak_tflops, "--peak-tflops",
                           measured(device ? device->peak_flops / 1e12 : 0, cpu_peak));

      progress(fmt::format("{}: compiling", label));
      start = Clock::now();
      std::unique_ptr<Executable> exe;
      try {
        exe = backend->compile(graph, model.weights);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fmt::format("{}: {}", model.path, e.what()));
      }
      r.compile_seconds = seconds_since(start);

      progress(fmt::format("{}: {} warm-up + {} measured rounds of prefill ({} tokens) and decode ({} tokens)", label,
                           spec.warmup, spec.repeat, spec.prompt, spec.gen));
      measure(r, *exe, spec, model.config.vocab);
      r.peak_rss_bytes = peak_rss_bytes();
      summarise(r, spec);
      run.results.push_back(std::move(r));
    }
  }
  run.load_after = load_average();
  return run;
}

}  // namespace rwkvc::cli
