#include "tools/bench_long_run.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/backend.h"
#include "frontend/graph_builders.h"
#include "frontend/random.h"
#include "tools/bench_runner.h"
#include "tools/bench_svg.h"
#include "tools/model_source.h"

namespace rwkvc::cli {

namespace {

using Clock = std::chrono::steady_clock;

LongRunSeries stream(Executable& exe, const LongRunOptions& o, std::int64_t vocab) {
  LongRunSeries series;
  State state = exe.new_state();
  Rng rng(3);
  std::vector<std::int32_t> chunk(static_cast<std::size_t>(o.chunk));
  std::vector<double> window;  // per-token microseconds of the calls since the last sample
  bool all_device = true;
  ForwardOptions options;
  options.time_on_device = true;
  auto begin = Clock::now();
  for (std::int64_t done = 0; done < o.tokens;) {
    const std::size_t count = static_cast<std::size_t>(std::min(o.chunk, o.tokens - done));
    for (std::size_t i = 0; i < count; ++i) chunk[i] = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(vocab));
    auto start = Clock::now();
    HostTensor logits = exe.forward(std::span(chunk.data(), count), state, options);
    double host = std::chrono::duration<double>(Clock::now() - start).count();
    double device = exe.stats().device_seconds;
    all_device = all_device && device >= 0;
    window.push_back((device >= 0 ? device : host) * 1e6 / static_cast<double>(count));
    const std::int64_t before = done;
    done += static_cast<std::int64_t>(count);
    if (done / o.every != before / o.every || done == o.tokens) {
      LongRunSample s;
      s.tokens = done;
      s.p50_us = quantile(window, 0.5);
      double total = 0;
      for (double w : window) total += w, s.max_us = std::max(s.max_us, w);
      s.mean_us = total / static_cast<double>(window.size());
      s.rss_bytes = current_rss_bytes();
      s.device_bytes = exe.stats().device_bytes;
      series.samples.push_back(s);
      window.clear();
    }
  }
  series.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  series.clock = all_device ? "device" : "host";
  return series;
}

std::string series_name(const LongRunSeries& s) { return fmt::format("{} {}", s.backend, s.pipeline); }

}  // namespace

namespace {

std::size_t tenth(std::size_t samples) { return std::max<std::size_t>(1, samples / 10); }

double median_p50(std::span<const LongRunSample> samples) {
  std::vector<double> medians;
  for (const LongRunSample& s : samples) medians.push_back(s.p50_us);
  return quantile(medians, 0.5);
}

}  // namespace

double LongRunSeries::early_latency_us() const {
  return median_p50(std::span(samples).first(std::min(tenth(samples.size()), samples.size())));
}

double LongRunSeries::late_latency_us() const {
  return median_p50(std::span(samples).last(std::min(tenth(samples.size()), samples.size())));
}

double LongRunSeries::latency_drift() const {
  double early = early_latency_us();
  return early > 0 ? late_latency_us() / early : 1.0;
}

std::int64_t LongRunSeries::rss_growth_bytes() const {
  return samples.empty() ? 0 : samples.back().rss_bytes - samples.front().rss_bytes;
}

LongRun run_long(const BenchSpec& spec, const LongRunOptions& options,
                 const std::function<void(const std::string&)>& progress) {
  if (options.tokens < 1) throw std::invalid_argument(fmt::format("--long-run {} must be at least 1 token", options.tokens));
  if (options.every < 1) throw std::invalid_argument(fmt::format("--sample-every {} must be at least 1", options.every));
  if (options.chunk < 1) throw std::invalid_argument(fmt::format("--chunk {} must be at least 1", options.chunk));
  LongRun run;
  run.spec = spec;
  run.options = options;
  run.machine = describe_machine();
  run.load_before = load_average();
  Model model = load_bench_model(spec);
  run.model = describe(model);
  run.model_label = model_label(spec, model.config);
  const Graph built = build_graph(model.config);
  for (const std::string& backend_name : spec.backends)
    for (const BenchPipeline& pipeline : spec.pipelines) {
      const std::string label = fmt::format("{} {}", backend_name, pipeline.label);
      std::unique_ptr<Backend> backend;
      try {
        backend = make_backend(backend_name, BackendOptions{spec.device_for(backend_name)});
      } catch (const std::runtime_error& e) {
        run.series.push_back({backend_name, pipeline.label, "", "", e.what(), 0, {}});
        progress(fmt::format("{}: skipped: {}", label, e.what()));
        continue;
      }
      auto exe = backend->compile(apply_pipeline(built, pipeline.options), model.weights);
      progress(fmt::format("{}: streaming {} tokens, {} per call, a sample every {}", label, options.tokens, options.chunk,
                           options.every));
      LongRunSeries series = stream(*exe, options, model.config.vocab);
      series.backend = backend_name;
      series.pipeline = pipeline.label;
      series.device = backend->device_name();
      run.series.push_back(std::move(series));
    }
  run.load_after = load_average();
  return run;
}

std::string long_run_csv(const LongRun& run) {
  std::string csv = "backend,pipeline,tokens,latency_p50_us,latency_mean_us,latency_max_us,rss_bytes,device_bytes\n";
  for (const LongRunSeries& s : run.series)
    for (const LongRunSample& p : s.samples)
      csv += fmt::format("{},{},{},{:.3f},{:.3f},{:.3f},{},{}\n", s.backend, s.pipeline, p.tokens, p.p50_us, p.mean_us,
                         p.max_us, p.rss_bytes, p.device_bytes);
  return csv;
}

nlohmann::json long_run_json(const LongRun& run) {
  nlohmann::json series = nlohmann::json::array();
  for (const LongRunSeries& s : run.series) {
    nlohmann::json j = {{"backend", s.backend}, {"pipeline", s.pipeline}};
    if (!s.skipped.empty()) {
      j["skipped"] = s.skipped;
      series.push_back(j);
      continue;
    }
    nlohmann::json samples = nlohmann::json::array();
    for (const LongRunSample& p : s.samples)
      samples.push_back({{"tokens", p.tokens}, {"latency_p50_us", p.p50_us}, {"latency_mean_us", p.mean_us},
                         {"latency_max_us", p.max_us}, {"rss_bytes", p.rss_bytes}, {"device_bytes", p.device_bytes}});
    j.update({{"device", s.device}, {"clock", s.clock}, {"seconds", s.seconds},
              {"tokens_per_s", static_cast<double>(run.options.tokens) / s.seconds},
              {"latency_early_us", s.early_latency_us()}, {"latency_late_us", s.late_latency_us()},
              {"latency_drift", s.latency_drift()}, {"rss_growth_bytes", s.rss_growth_bytes()}, {"samples", samples}});
    series.push_back(j);
  }
  return {{"format", "rwkvc-bench-long-run/1"},
          {"command", run.spec.command_line},
          {"machine",
           {{"cpu", run.machine.cpu_model},
            {"hardware_threads", run.machine.hardware_threads},
            {"load_average_before", run.load_before},
            {"load_average_after", run.load_after}}},
          {"model", run.model},
          {"tokens", run.options.tokens},
          {"sample_every", run.options.every},
          {"chunk", run.options.chunk},
          {"series", series}};
}

std::string long_run_svg(const LongRun& run) {
  LinePanel latency{"Per-token latency, median of each sample window (µs)", {}};
  LinePanel memory{"Resident memory of the process (MiB)", {}};
  for (const LongRunSeries& s : run.series) {
    if (!s.skipped.empty()) continue;
    LineSeries l{series_name(s), {}}, m{series_name(s), {}};
    for (const LongRunSample& p : s.samples) {
      l.points.emplace_back(static_cast<double>(p.tokens), p.p50_us);
      m.points.emplace_back(static_cast<double>(p.tokens), static_cast<double>(p.rss_bytes) / (1 << 20));
    }
    latency.series.push_back(l);
    memory.series.push_back(m);
  }
  return line_chart_svg(fmt::format("rwkvc long run: {} tokens, {}", run.options.tokens, run.model_label),
                        "tokens streamed through one state", {latency, memory});
}

std::string long_run_summary(const LongRun& run) {
  std::string out;
  for (const LongRunSeries& s : run.series) {
    if (!s.skipped.empty()) {
      out += fmt::format("{}: skipped: {}\n", series_name(s), s.skipped);
      continue;
    }
    const LongRunSample& first = s.samples.front();
    const LongRunSample& last = s.samples.back();
    out += fmt::format(
        "{}: {} tokens in {:.1f} s ({:.0f} tokens/s, {} clock); median latency {:.1f} us over the first tenth, "
        "{:.1f} us over the last (x{:.3f}); RSS {:.1f} MiB at {} tokens, {:.1f} MiB at {} ({:+.1f} KiB)\n",
        series_name(s), run.options.tokens, s.seconds, static_cast<double>(run.options.tokens) / s.seconds, s.clock,
        s.early_latency_us(), s.late_latency_us(), s.latency_drift(), static_cast<double>(first.rss_bytes) / (1 << 20),
        first.tokens, static_cast<double>(last.rss_bytes) / (1 << 20), last.tokens,
        static_cast<double>(s.rss_growth_bytes()) / 1024);
  }
  return out;
}

std::string long_run_markdown(const LongRun& run, const std::string& chart, const std::string& csv) {
  std::string md = fmt::format("# rwkvc long run: {} tokens\n\nCommand:\n\n```\n{}\n```\n\n", run.options.tokens, run.spec.command_line);
  md += fmt::format("- Machine: {} ({} hardware threads); load average {:.2f} before, {:.2f} after\n- Model: {}\n",
                    run.machine.cpu_model, run.machine.hardware_threads, run.load_before, run.load_after, run.model);
  md += fmt::format("- {} tokens streamed through one state, {} per forward call; a sample every {} tokens: the median, "
                    "mean and largest per-token latency of the calls since the previous sample, and the process's "
                    "resident memory (VmRSS) at the sample.\n",
                    run.options.tokens, run.options.chunk, run.options.every);
  if (!csv.empty()) md += fmt::format("- Data: [{}]({})\n", csv, csv);
  md += "- Latency early and late: the median of the sample medians over the first and the last tenth of the run.\n";
  md += "\n| backend | pipeline | tokens/s | early median µs | late median µs | late/early | RSS first MiB | RSS last MiB | RSS growth KiB | clock |\n";
  md += "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for (const LongRunSeries& s : run.series) {
    if (!s.skipped.empty() || s.samples.empty()) continue;
    md += fmt::format("| {} | {} | {:.0f} | {:.1f} | {:.1f} | {:.3f} | {:.1f} | {:.1f} | {:+.1f} | {} |\n", s.backend, s.pipeline,
                      static_cast<double>(run.options.tokens) / s.seconds, s.early_latency_us(), s.late_latency_us(),
                      s.latency_drift(), static_cast<double>(s.samples.front().rss_bytes) / (1 << 20),
                      static_cast<double>(s.samples.back().rss_bytes) / (1 << 20), static_cast<double>(s.rss_growth_bytes()) / 1024,
                      s.clock);
  }
  if (!chart.empty()) md += fmt::format("\n![per-token latency and resident memory against tokens streamed]({})\n", chart);
  return md;
}

}  // namespace rwkvc::cli
