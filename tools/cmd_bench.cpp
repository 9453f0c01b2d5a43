// rwkvc bench: compares backends and pipelines on one model: compile time, prefill and decode
// speed, latency, kernels, memory and the fraction of the roofline, as a terminal table, JSON,
// a Markdown report and an SVG chart. With --long-run N it streams N tokens instead and plots
// latency and memory against the context length; with --summarize it puts earlier runs' JSON
// records side by side.
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/backend.h"
#include "frontend/atomic_file.h"
#include "tools/bench_long_run.h"
#include "tools/bench_report.h"
#include "tools/bench_runner.h"
#include "tools/bench_spec.h"
#include "tools/bench_summary.h"
#include "tools/commands.h"

namespace rwkvc::cli {

namespace {

struct BenchCliOptions {
  std::string model;
  std::string shape;
  std::uint64_t seed = 0;
  std::string backends;
  std::string device = "0";
  std::vector<std::string> levels;  // from -O and --levels
  PipelineOptions pipeline;
  std::int64_t prompt = 512;
  std::int64_t gen = 128;
  int repeat = 3;
  int warmup = 1;
  std::string bandwidth_gbs;
  std::string peak_tflops;
  std::string json;
  std::string markdown;
  std::string svg;
  std::string csv;
  LongRunOptions long_run;
  std::vector<std::string> summarize;  // bench --json records to put side by side
};

BenchSpec make_spec(const BenchCliOptions& o) {
  if (o.model.empty() == o.shape.empty())
    throw std::invalid_argument("bench needs one model: --model FILE or --shape rwkv7:L24:D2048:V65536");
  BenchSpec spec;
  spec.model_path = o.model;
  spec.shape_text = o.shape;
  if (!o.shape.empty()) spec.shape = parse_shape(o.shape);
  spec.seed = o.seed;
  spec.backends = parse_backends(o.backends.empty() ? fmt::format("{}", fmt::join(backend_names(), ",")) : o.backends);
  spec.device = parse_device_indices(o.device);
  spec.pipelines = bench_pipelines(o.pipeline, parse_levels(o.levels));
  if (o.prompt < 0 || o.gen < 0 || o.prompt + o.gen == 0)
    throw std::invalid_argument(fmt::format("--prompt {} and --gen {}: each must be at least 0, and one more than 0", o.prompt, o.gen));
  if (o.repeat < 1) throw std::invalid_argument(fmt::format("--repeat {} must be at least 1", o.repeat));
  if (o.warmup < 0) throw std::invalid_argument(fmt::format("--warmup {} must be at least 0", o.warmup));
  spec.prompt = o.prompt;
  spec.gen = o.gen;
  spec.repeat = o.repeat;
  spec.warmup = o.warmup;
  spec.bandwidth_gbs = parse_per_backend("--bandwidth-gbs", o.bandwidth_gbs);
  spec.peak_tflops = parse_per_backend("--peak-tflops", o.peak_tflops);
  spec.command_line = this_command_line();
  return spec;
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
  fmt::print("wrote {}\n", path);
}

// The chart's path as the Markdown file links it: relative to the Markdown's folder.
std::string link_from(const std::string& markdown, const std::string& target) {
  namespace fs = std::filesystem;
  fs::path base = fs::absolute(markdown).parent_path();
  return fs::absolute(target).lexically_proximate(base).generic_string();
}

// --svg, or next to the Markdown report when only that is asked for.
std::string chart_path(const BenchCliOptions& o) {
  if (!o.svg.empty() || o.markdown.empty()) return o.svg;
  return std::filesystem::path(o.markdown).replace_extension(".svg").string();
}

// A backend without a device is skipped so the others still run; with every one skipped there
// is nothing to report, which is an error.
template <typename Results>
void refuse_if_nothing_ran(const Results& results) {
  std::string why;
  for (const auto& r : results) {
    if (r.skipped.empty()) return;
    why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", r.backend, r.skipped);
  }
  throw std::runtime_error(fmt::format("nothing was measured: {}", why));
}

void progress(const std::string& line) { fmt::print(stderr, "bench: {}\n", line); }

void run_comparison(const BenchCliOptions& o, const BenchSpec& spec) {
  BenchRun run = run_bench(spec, progress);
  refuse_if_nothing_ran(run.results);
  fmt::print("model: {}\n", run.model);
  fmt::print("{}", terminal_table(run));
  std::string svg = chart_path(o);
  if (!o.json.empty()) write_text(o.json, bench_json(run).dump(2) + "\n");
  if (!svg.empty()) write_text(svg, bench_chart_svg(run));
  if (!o.markdown.empty()) write_text(o.markdown, bench_markdown(run, svg.empty() ? "" : link_from(o.markdown, svg)));
}

void run_long_run(const BenchCliOptions& o, const BenchSpec& spec) {
  LongRun run = run_long(spec, o.long_run, progress);
  refuse_if_nothing_ran(run.series);
  fmt::print("model: {}\n", run.model);
  fmt::print("{}", long_run_summary(run));
  std::string svg = chart_path(o);
  if (!o.csv.empty()) write_text(o.csv, long_run_csv(run));
  if (!o.json.empty()) write_text(o.json, long_run_json(run).dump(2) + "\n");
  if (!svg.empty()) write_text(svg, long_run_svg(run));
  if (!o.markdown.empty())
    write_text(o.markdown, long_run_markdown(run, svg.empty() ? "" : link_from(o.markdown, svg),
                                             o.csv.empty() ? "" : link_from(o.markdown, o.csv)));
}

void run_summary(const BenchCliOptions& o) {
  std::vector<BenchRecord> records = read_bench_records(o.summarize);
  fmt::print("{}", summary_table(records));
  std::string svg = chart_path(o);
  if (!svg.empty()) write_text(svg, summary_svg(records));
  if (!o.markdown.empty()) write_text(o.markdown, summary_markdown(records, svg.empty() ? "" : link_from(o.markdown, svg)));
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchCliOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Compare backends and optimisation levels: speed, latency, memory, roofline");
  CLI::Option* model = cmd->add_option("--model", o->model, "Model file");
  CLI::Option* shape =
      cmd->add_option("--shape", o->shape, "Random model of this shape instead: rwkv7:L24:D2048:V65536 (rwkv4 too; N<head size>)")
          ->excludes(model);
  cmd->add_option("--seed", o->seed, "Seed of the random weights of --shape")->capture_default_str();
  cmd->add_option("--backends", o->backends, fmt::format("Comma-separated backends (default: all of this build: {})",
                                                         fmt::join(backend_names(), ",")));
  cmd->add_option("--device", o->device,
                  "Device index for every backend, or per backend: cuda=1,vulkan=0 (rwkvc devices lists them)")
      ->capture_default_str();
  add_pipeline_options(*cmd, o->pipeline);
  // bench compares levels, so -O takes a list (-O0,-O2) where the other commands take one.
  cmd->remove_option(cmd->get_option("-O"));
  cmd->add_option("-O,--levels", o->levels, "Optimisation levels to compare: -O0,-O2 or --levels 0,2 (default: 2)")
      ->delimiter(',');
  cmd->add_option("--prompt", o->prompt, "Prefill: tokens in one forward call")->capture_default_str();
  cmd->add_option("--gen", o->gen, "Decode: single-token forward calls per round")->capture_default_str();
  cmd->add_option("--repeat", o->repeat, "Measured rounds (medians are reported)")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Rounds run first and not measured")->capture_default_str();
  cmd->add_option("--bandwidth-gbs", o->bandwidth_gbs,
                  "Memory bandwidth for the decode roofline: GB/s for every backend, or cuda=3350,vulkan=3350 "
                  "(the CPU's is measured when not given)");
  cmd->add_option("--peak-tflops", o->peak_tflops,
                  "Peak TFLOP/s for the prefill roofline, likewise (the CPU's is measured when not given)");
  cmd->add_option("--json", o->json, "Write the results as JSON");
  cmd->add_option("--markdown", o->markdown, "Write a Markdown report (with the chart, next to it unless --svg)");
  cmd->add_option("--svg", o->svg, "Write the chart as SVG");
  CLI::Option* long_run = cmd->add_option("--long-run", o->long_run.tokens,
                                          "Stream this many tokens through one state instead, sampling latency and memory");
  cmd->add_option("--sample-every", o->long_run.every, "Long run: a sample every this many tokens")
      ->capture_default_str()
      ->needs(long_run);
  cmd->add_option("--chunk", o->long_run.chunk, "Long run: tokens per forward call")->capture_default_str()->needs(long_run);
  cmd->add_option("--csv", o->csv, "Long run: write the samples as CSV")->needs(long_run);
  cmd->add_option("--summarize", o->summarize,
                  "Put earlier runs' --json records side by side (one per model shape) in one table, --markdown "
                  "report and --svg chart, instead of measuring")
      ->delimiter(',')
      ->excludes(model)
      ->excludes(shape)
      ->excludes(long_run);
  cmd->callback([o, long_run] {
    if (!o->summarize.empty()) return run_summary(*o);
    BenchSpec spec = make_spec(*o);
    if (long_run->count() > 0) return run_long_run(*o, spec);
    run_comparison(*o, spec);
  });
}

}  // namespace rwkvc::cli
