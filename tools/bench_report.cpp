#include "tools/bench_report.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "tools/bench_svg.h"

namespace rwkvc::cli {

namespace {

using nlohmann::json;

const ComboResult* find_result(const BenchRun& run, const std::string& backend, const std::string& pipeline) {
  for (const ComboResult& r : run.results)
    if (r.backend == backend && r.pipeline == pipeline && r.skipped.empty()) return &r;
  return nullptr;
}

std::vector<std::string> pipeline_labels(const BenchRun& run) {
  std::vector<std::string> labels;
  for (const BenchPipeline& p : run.spec.pipelines) labels.push_back(p.label);
  return labels;
}

double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

std::string mib(std::int64_t bytes) { return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20)); }

std::string percent(const std::optional<double>& fraction) {
  return fraction ? fmt::format("{:.1f}%", *fraction * 100) : "n/a";
}

json optional_number(const std::optional<double>& value) { return value ? json(*value) : json(nullptr); }

json ratio_json(const std::vector<SpeedRatio>& ratios) {
  json list = json::array();
  for (const SpeedRatio& r : ratios)
    list.push_back({{"backend", r.backend}, {"numerator", r.numerator}, {"denominator", r.denominator},
                    {"decode", std::isfinite(r.decode) ? json(r.decode) : json(nullptr)},
                    {"prefill", std::isfinite(r.prefill) ? json(r.prefill) : json(nullptr)}});
  return list;
}

json result_json(const ComboResult& r, const BenchSpec& spec) {
  json j = {{"backend", r.backend}, {"pipeline", r.pipeline}, {"level", r.level >= 0 ? json(r.level) : json(nullptr)}};
  if (!r.skipped.empty()) {
    j["skipped"] = r.skipped;
    return j;
  }
  json prefill_samples = json::array(), decode_samples = json::array();
  for (const Timing& t : r.prefill) prefill_samples.push_back(r.clock == "device" ? t.device_seconds : t.host_seconds);
  j["device"] = r.device;
  j["clock"] = r.clock;
  j["pipeline_seconds"] = r.pipeline_seconds;
  j["compile_seconds"] = r.compile_seconds;
  j["prefill"] = {{"tokens", spec.prompt},
                  {"tokens_per_s", r.prefill_tokens_per_s},
                  {"host_tokens_per_s", r.host_prefill_tokens_per_s},
                  {"seconds", prefill_samples}};
  j["decode"] = {{"tokens", spec.gen},
                 {"tokens_per_s", r.decode_tokens_per_s},
                 {"host_tokens_per_s", r.host_decode_tokens_per_s},
                 {"latency_p50_ms", r.decode_p50_ms},
                 {"latency_p99_ms", r.decode_p99_ms},
                 {"samples", r.decode.size()}};
  j["kernels"] = {{"per_token", r.kernels_per_token}, {"per_prefill", r.kernels_per_prefill}, {"source", r.kernels_source}};
  j["memory"] = {{"device_bytes", r.device_bytes},
                 {"weight_bytes", r.weight_bytes},
                 {"state_bytes", r.state_bytes},
                 {"peak_rss_bytes", r.peak_rss_bytes},
                 {"peak_rss_scope", r.rss_peak_is_per_combination ? "this combination" : "the process"}};
  j["roofline"] = {{"decode_bytes_per_token", r.work.decode_bytes_per_token},
                   {"weight_dtypes", r.work.weight_dtypes},
                   {"prefill_flops", r.work.prefill_flops(spec.prompt)},
                   {"bandwidth_gbs", r.bandwidth ? json(r.bandwidth->value) : json(nullptr)},
                   {"bandwidth_source", r.bandwidth ? json(r.bandwidth->source) : json(nullptr)},
                   {"peak_tflops", r.peak ? json(r.peak->value) : json(nullptr)},
                   {"peak_source", r.peak ? json(r.peak->source) : json(nullptr)},
                   {"decode_fraction", optional_number(r.decode_roofline)},
                   {"prefill_fraction", optional_number(r.prefill_roofline)}};
  return j;
}

// The largest of a backend's roofline fractions of one kind (0 when none was measured).
double largest_fraction(const BenchRun& run, const std::string& backend,
                        std::optional<double> ComboResult::*fraction) {
  double largest = 0;
  for (const ComboResult& r : run.results)
    if (r.backend == backend && r.skipped.empty() && (r.*fraction)) largest = std::max(largest, *(r.*fraction));
  return largest;
}

// Per backend: the ceilings its roofline fractions divide by, and where they came from. A
// ceiling that a measured rate exceeds is no ceiling (a shared or virtualised CPU can make a
// peak measurement come out low): the line says so, so that no one reads 400% as a result.
std::map<std::string, std::string> ceiling_lines(const BenchRun& run) {
  std::map<std::string, std::string> lines;
  for (const ComboResult& r : run.results) {
    if (!r.skipped.empty() || lines.contains(r.backend)) continue;
    std::string bandwidth = r.bandwidth ? fmt::format("{:.1f} GB/s ({})", r.bandwidth->value, r.bandwidth->source)
                                        : "not given (--bandwidth-gbs)";
    std::string peak = r.peak ? fmt::format("{:.3f} TFLOP/s ({})", r.peak->value, r.peak->source) : "not given (--peak-tflops)";
    std::string line = fmt::format("bandwidth {}; peak {}", bandwidth, peak);
    const std::pair<const char*, std::optional<double> ComboResult::*> kinds[] = {
        {"bandwidth", &ComboResult::decode_roofline}, {"peak", &ComboResult::prefill_roofline}};
    for (const auto& [name, fraction] : kinds)
      if (double largest = largest_fraction(run, r.backend, fraction); largest > 1.0)
        line += fmt::format("; WARNING: a measured rate is {:.1f}x the {}, so the {} is not a ceiling on this machine "
                            "and those fractions mean nothing",
                            largest, name, name);
    lines.emplace(r.backend, line);
  }
  return lines;
}

}  // namespace

std::vector<SpeedRatio> fusion_ratios(const BenchRun& run) {
  std::vector<SpeedRatio> ratios;
  for (const std::string& backend : run.spec.backends) {
    const ComboResult* base = nullptr;
    for (const BenchPipeline& p : run.spec.pipelines) {
      const ComboResult* r = find_result(run, backend, p.label);
      if (!r || p.level < 0) continue;
      if (!base || r->level < base->level) base = r;
    }
    if (!base) continue;
    for (const BenchPipeline& p : run.spec.pipelines) {
      const ComboResult* r = find_result(run, backend, p.label);
      if (!r || r == base || p.level < 0) continue;
      ratios.push_back({backend, r->pipeline, base->pipeline, ratio(r->decode_tokens_per_s, base->decode_tokens_per_s),
                        ratio(r->prefill_tokens_per_s, base->prefill_tokens_per_s)});
    }
  }
  return ratios;
}

std::vector<SpeedRatio> cuda_fractions(const BenchRun& run) {
  std::vector<SpeedRatio> ratios;
  for (const std::string& backend : run.spec.backends) {
    if (backend == "cuda" || backend == "cpu") continue;
    for (const std::string& pipeline : pipeline_labels(run)) {
      const ComboResult* r = find_result(run, backend, pipeline);
      const ComboResult* cuda = find_result(run, "cuda", pipeline);
      if (!r || !cuda) continue;
      ratios.push_back({backend, fmt::format("{} {}", backend, pipeline), fmt::format("cuda {}", pipeline),
                        ratio(r->decode_tokens_per_s, cuda->decode_tokens_per_s),
                        ratio(r->prefill_tokens_per_s, cuda->prefill_tokens_per_s)});
    }
  }
  return ratios;
}

std::string terminal_table(const BenchRun& run) {
  std::string out = fmt::format("{:<8} {:<10} {:>9} {:>11} {:>10} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:<6}\n",
                                "backend", "pipeline", "compile", "prefill", "decode", "p50", "p99", "kernels",
                                "device", "peak RSS", "state", "roof", "roof", "clock");
  out += fmt::format("{:<8} {:<10} {:>9} {:>11} {:>10} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:<6}\n", "", "",
                     "s", "tok/s", "tok/s", "ms", "ms", "/token", "MiB", "MiB", "KiB", "decode", "prefill", "");
  for (const ComboResult& r : run.results) {
    if (!r.skipped.empty()) {
      out += fmt::format("{:<8} {:<10} skipped: {}\n", r.backend, r.pipeline, r.skipped);
      continue;
    }
    out += fmt::format("{:<8} {:<10} {:>9.2f} {:>11.1f} {:>10.2f} {:>9.3f} {:>9.3f} {:>8} {:>9} {:>9} {:>9.1f} {:>8} {:>8} {:<6}\n",
                       r.backend, r.pipeline, r.pipeline_seconds + r.compile_seconds, r.prefill_tokens_per_s,
                       r.decode_tokens_per_s, r.decode_p50_ms, r.decode_p99_ms, r.kernels_per_token, mib(r.device_bytes),
                       mib(r.peak_rss_bytes), static_cast<double>(r.state_bytes) / 1024, percent(r.decode_roofline),
                       percent(r.prefill_roofline), r.clock);
  }
  std::map<std::string, std::string> ceilings = ceiling_lines(run);
  for (const auto& [backend, text] : ceilings) out += fmt::format("{} roofline: {}\n", backend, text);
  for (const SpeedRatio& s : fusion_ratios(run))
    out += fmt::format("{}: {}/{} decode x{:.2f}, prefill x{:.2f}\n", s.backend, s.numerator, s.denominator, s.decode, s.prefill);
  for (const SpeedRatio& s : cuda_fractions(run))
    out += fmt::format("{} as a fraction of {}: decode {:.2f}, prefill {:.2f}\n", s.numerator, s.denominator, s.decode, s.prefill);
  return out;
}

json bench_json(const BenchRun& run) {
  const BenchSpec& spec = run.spec;
  const ModelConfig& c = run.config;
  json results = json::array();
  for (const ComboResult& r : run.results) results.push_back(result_json(r, spec));
  json pipelines = json::array();
  for (const BenchPipeline& p : spec.pipelines) pipelines.push_back(p.label);
  return {
      {"format", "rwkvc-bench/1"},
      {"command", spec.command_line},
      {"machine",
       {{"cpu", run.machine.cpu_model},
        {"hardware_threads", run.machine.hardware_threads},
        {"memory_bytes", run.machine.memory_bytes},
        {"kernel", run.machine.kernel},
        {"compiler", run.machine.compiler},
        {"load_average_before", run.load_before},
        {"load_average_after", run.load_after}}},
      {"model",
       {{"description", run.model},
        {"label", run.model_label},
        {"source", run.model_source},
        {"shape", spec.shape ? json(spec.shape_text) : json(nullptr)},
        {"arch", arch_name(c.arch)},
        {"layers", c.layers},
        {"embd", c.embd},
        {"vocab", c.vocab},
        {"ffn", c.ffn},
        {"load_seconds", run.model_load_seconds}}},
      {"settings",
       {{"prompt", spec.prompt},
        {"gen", spec.gen},
        {"repeat", spec.repeat},
        {"warmup", spec.warmup},
        {"device", spec.device.all ? json(*spec.device.all) : json(spec.device.by_backend)},
        {"dtype", spec.pipelines.empty() ? "f32" : spec.pipelines.front().options.dtype},
        {"backends", spec.backends},
        {"pipelines", pipelines}}},
      {"results", results},
      {"ratios", {{"fusion", ratio_json(fusion_ratios(run))}, {"fraction_of_cuda", ratio_json(cuda_fractions(run))}}},
  };
}

std::string bench_chart_svg(const BenchRun& run) {
  std::vector<std::string> pipelines = pipeline_labels(run);
  BarPanel decode{"Decode tokens/s (higher is better)", pipelines, {}, 0};
  BarPanel prefill{fmt::format("Prefill tokens/s, {}-token prompt (higher is better)", run.spec.prompt), pipelines, {}, 0};
  for (const std::string& backend : run.spec.backends) {
    BarGroup d{backend, {}}, p{backend, {}};
    bool ran = false;
    for (const std::string& pipeline : pipelines) {
      const ComboResult* r = find_result(run, backend, pipeline);
      d.values.push_back(r ? r->decode_tokens_per_s : NAN);
      p.values.push_back(r ? r->prefill_tokens_per_s : NAN);
      ran = ran || r;
    }
    if (!ran) continue;
    decode.groups.push_back(d);
    prefill.groups.push_back(p);
  }
  std::vector<BarPanel> panels{decode, prefill};
  auto ratio_panel = [&](const std::string& title, const std::vector<SpeedRatio>& ratios, bool by_pipeline) {
    BarPanel panel{title, {"decode", "prefill"}, {}, 1.0};
    for (const SpeedRatio& s : ratios)
      panel.groups.push_back({by_pipeline ? s.numerator : fmt::format("{} {}/{}", s.backend, s.numerator, s.denominator),
                              {s.decode, s.prefill}});
    if (!panel.groups.empty()) panels.push_back(panel);
  };
  ratio_panel("Fusion: speed over the lowest level (1 = no gain)", fusion_ratios(run), false);
  ratio_panel("Speed as a fraction of CUDA's (1 = as fast)", cuda_fractions(run), true);
  std::string title = fmt::format("rwkvc bench: {}, {}", run.model_label, run.spec.pipelines.front().options.dtype);
  return bar_chart_svg(title, panels);
}

std::string bench_markdown(const BenchRun& run, const std::string& chart) {
  const BenchSpec& spec = run.spec;
  std::string md = fmt::format("# rwkvc bench: {}\n\n", run.model_label);
  md += fmt::format("Command:\n\n```\n{}\n```\n\n", spec.command_line);
  md += "## Machine\n\n";
  md += fmt::format("- CPU: {} ({} hardware threads), {:.1f} GiB memory\n", run.machine.cpu_model, run.machine.hardware_threads,
                    static_cast<double>(run.machine.memory_bytes) / (1 << 30));
  md += fmt::format("- System: {}; rwkvc built with {}\n", run.machine.kernel, run.machine.compiler);
  md += fmt::format("- Load average (1 min) {:.2f} before the run and {:.2f} after{}\n", run.load_before, run.load_after,
                    std::max(run.load_before, run.load_after) > 0.5
                        ? ": other processes shared the CPU, so host timings carry their noise"
                        : "");
  std::map<std::string, std::string> devices;
  for (const ComboResult& r : run.results) devices.emplace(r.backend, r.skipped.empty() ? r.device : "skipped: " + r.skipped);
  for (const auto& [backend, device] : devices) md += fmt::format("- Backend {}: {}\n", backend, device);
  md += "\n## Model and workload\n\n";
  md += fmt::format("- Model: {}; weights: {}, {} in {:.2f} s\n", run.model, run.model_source,
                    spec.shape ? "made" : "loaded", run.model_load_seconds);
  md += fmt::format("- Prefill: one forward call over {} tokens, last position's logits only. Decode: {} single-token calls.\n",
                    spec.prompt, spec.gen);
  md += fmt::format("- {} warm-up round(s) excluded, then {} measured round(s); rates are medians over rounds, latencies "
                    "percentiles over every measured decode call.\n",
                    spec.warmup, spec.repeat);
  for (const BenchPipeline& p : spec.pipelines)
    for (const ComboResult& r : run.results)
      if (r.pipeline == p.label && r.skipped.empty()) {
        md += fmt::format("- {}: a decode call reads {:.2f} MiB of weights ({}); a prefill is {:.3f} GFLOP of matmuls\n",
                          p.label, static_cast<double>(r.work.decode_bytes_per_token) / (1 << 20), r.work.weight_dtypes,
                          r.work.prefill_flops(spec.prompt) / 1e9);
        break;
      }
  md += "\n## Results\n\n";
  md += "| backend | pipeline | compile s | prefill tok/s | decode tok/s | p50 ms | p99 ms | kernels/token | device MiB | "
        "peak RSS MiB | state KiB | weights | decode roofline | prefill roofline | clock |\n";
  md += "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |\n";
  for (const ComboResult& r : run.results) {
    if (!r.skipped.empty()) {
      md += fmt::format("| {} | {} | skipped: {} |||||||||||||\n", r.backend, r.pipeline, r.skipped);
      continue;
    }
    md += fmt::format("| {} | {} | {:.2f} | {:.1f} | {:.2f} | {:.3f} | {:.3f} | {} | {} | {} | {:.1f} | {} | {} | {} | {} |\n",
                      r.backend, r.pipeline, r.pipeline_seconds + r.compile_seconds, r.prefill_tokens_per_s,
                      r.decode_tokens_per_s, r.decode_p50_ms, r.decode_p99_ms, r.kernels_per_token, mib(r.device_bytes),
                      mib(r.peak_rss_bytes), static_cast<double>(r.state_bytes) / 1024, r.work.weight_dtypes,
                      percent(r.decode_roofline), percent(r.prefill_roofline), r.clock);
  }
  std::vector<SpeedRatio> fusion = fusion_ratios(run), cuda = cuda_fractions(run);
  if (!fusion.empty() || !cuda.empty()) {
    md += "\n## Ratios\n\n| backend | speed of | over | decode | prefill |\n| --- | --- | --- | ---: | ---: |\n";
    for (const auto* list : {&fusion, &cuda})
      for (const SpeedRatio& s : *list)
        md += fmt::format("| {} | {} | {} | {:.2f} | {:.2f} |\n", s.backend, s.numerator, s.denominator, s.decode, s.prefill);
  }
  if (!chart.empty()) md += fmt::format("\n## Chart\n\n![decode and prefill tokens/s per backend and pipeline]({})\n", chart);

  md += "\n## How the figures are made\n\n";
  md += "- Clock: `device` when the backend timed every call with device events (ForwardOptions::time_on_device), "
        "else `host`: wall-clock around forward(), which returns the logits in host memory and so includes their "
        "download.\n";
  md += "- Kernels per token: the backend's count of launches in a decode call; `graph` in the JSON's kernels.source "
        "means the backend reports none and the count is the graph's.\n";
  md += "- Peak RSS: the process's resident peak from compile to the last call (it includes the host copy of the "
        "weights). Device MiB: the executable's device memory as the backend reports it (0 on the CPU).\n";
  md += "- Decode roofline: bytes of token-free tensors a call reads (every matrix once, one embedding row, in the dtype "
        "the graph declares after the passes) x decode tokens/s, over the memory bandwidth. Prefill roofline: 2 x matmul "
        "parameters x prompt tokens (the head once, for the last position) per second, over the peak f32 rate. "
        "Attention-free RWKV does little else, but WKV and norms are not counted.\n";
  for (const auto& [backend, text] : ceiling_lines(run)) md += fmt::format("- Ceilings for {}: {}.\n", backend, text);
  return md;
}

}  // namespace rwkvc::cli
