#include "tools/bench_summary.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "tools/bench_svg.h"

namespace rwkvc::cli {

namespace {

using nlohmann::json;

// The model's name in tables: its shape, or the file's short label.
std::string model_name(const json& run) {
  const json& model = run["model"];
  if (model["shape"].is_string()) return model["shape"].get<std::string>();
  return model.value("label", model["description"].get<std::string>());
}

double number_or_nan(const json& value) { return value.is_number() ? value.get<double>() : NAN; }

std::string percent(const json& fraction) {
  return fraction.is_number() ? fmt::format("{:.1f}%", 100 * fraction.get<double>()) : "-";
}

std::string combo_name(const json& result) {
  return fmt::format("{} {}", result["backend"].get<std::string>(), result["pipeline"].get<std::string>());
}

std::string ratio_name(const json& ratio) {
  return fmt::format("{} {}/{}", ratio["backend"].get<std::string>(), ratio["numerator"].get<std::string>(),
                     ratio["denominator"].get<std::string>());
}

// Where `name` is in `names`, appended when new.
std::size_t index_of(std::vector<std::string>& names, const std::string& name) {
  auto found = std::find(names.begin(), names.end(), name);
  if (found != names.end()) return static_cast<std::size_t>(found - names.begin());
  names.push_back(name);
  return names.size() - 1;
}

std::string times(double ratio) { return std::isfinite(ratio) ? fmt::format("{:.2f}", ratio) : "-"; }

// Every measured result of every run, in the runs' order.
template <typename F>
void for_each_result(const std::vector<BenchRecord>& records, F visit) {
  for (const BenchRecord& record : records)
    for (const json& result : record.run["results"])
      if (!result.contains("skipped")) visit(record, result);
}

void require(bool ok, const std::string& path, const std::string& what) {
  if (!ok) throw std::invalid_argument(fmt::format("{}: not an rwkvc bench record: {}", path, what));
}

}  // namespace

std::vector<BenchRecord> read_bench_records(const std::vector<std::string>& paths) {
  if (paths.empty()) throw std::invalid_argument("--summarize needs at least one bench --json file");
  std::vector<BenchRecord> records;
  for (const std::string& path : paths) {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument(fmt::format("{}: cannot open the bench record", path));
    std::stringstream text;
    text << in.rdbuf();
    json run = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    require(!run.is_discarded() && run.is_object(), path, "the file is not JSON");
    require(run.value("format", "") == "rwkvc-bench/1", path, "format is not rwkvc-bench/1 (a --long-run record?)");
    require(run.contains("results") && run["results"].is_array(), path, "no results");
    require(run.contains("model") && run["model"].contains("description"), path, "no model");
    require(run.contains("ratios") && run["ratios"].contains("fusion") && run["ratios"].contains("fraction_of_cuda"), path,
            "no ratios");
    for (const json& result : run["results"]) {
      require(result.contains("backend") && result.contains("pipeline"), path, "a result names no backend or pipeline");
      if (result.contains("skipped")) continue;
      require(result.contains("decode") && result.contains("prefill") && result.contains("roofline") &&
                  result.contains("kernels"),
              path, fmt::format("result {} {} lacks figures", result["backend"].dump(), result["pipeline"].dump()));
    }
    records.push_back({path, std::move(run)});
  }
  return records;
}

std::string summary_table(const std::vector<BenchRecord>& records) {
  std::string out = fmt::format("{:<24} {:<8} {:<10} {:>11} {:>10} {:>8} {:>8} {:>8}\n", "model", "backend", "pipeline",
                                "prefill/s", "decode/s", "roof d", "roof p", "kernels");
  for_each_result(records, [&](const BenchRecord& record, const json& r) {
    out += fmt::format("{:<24} {:<8} {:<10} {:>11.1f} {:>10.2f} {:>8} {:>8} {:>8}\n", model_name(record.run),
                       r["backend"].get<std::string>(), r["pipeline"].get<std::string>(),
                       r["prefill"]["tokens_per_s"].get<double>(), r["decode"]["tokens_per_s"].get<double>(),
                       percent(r["roofline"]["decode_fraction"]), percent(r["roofline"]["prefill_fraction"]),
                       r["kernels"]["per_token"].dump());
  });
  return out;
}

std::string summary_markdown(const std::vector<BenchRecord>& records, const std::string& chart) {
  std::string md = fmt::format("# rwkvc bench: {} runs side by side\n\n", records.size());
  md += "Each run's command (its own report and JSON hold every figure):\n\n";
  for (const BenchRecord& record : records)
    md += fmt::format("- {}: `{}`\n", model_name(record.run), record.run.value("command", std::string("?")));
  const json& machine = records.front().run["machine"];
  md += fmt::format("\nMachine: {} ({} hardware threads); devices:", machine.value("cpu", std::string("?")),
                    machine.value("hardware_threads", 0));
  std::set<std::string> devices;
  for_each_result(records, [&](const BenchRecord&, const json& r) { devices.insert(r.value("device", std::string("?"))); });
  for (const std::string& device : devices) md += fmt::format(" {};", device);
  md += "\n\n## Speed\n\n";
  md += "| model | backend | pipeline | prefill tok/s | decode tok/s | decode p50 ms | kernels/token | decode roofline | "
        "prefill roofline | clock |\n";
  md += "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for_each_result(records, [&](const BenchRecord& record, const json& r) {
    md += fmt::format("| {} | {} | {} | {:.1f} | {:.2f} | {:.3f} | {} | {} | {} | {} |\n", model_name(record.run),
                      r["backend"].get<std::string>(), r["pipeline"].get<std::string>(),
                      r["prefill"]["tokens_per_s"].get<double>(), r["decode"]["tokens_per_s"].get<double>(),
                      r["decode"]["latency_p50_ms"].get<double>(), r["kernels"]["per_token"].dump(),
                      percent(r["roofline"]["decode_fraction"]), percent(r["roofline"]["prefill_fraction"]),
                      r.value("clock", std::string("?")));
  });
  auto ratio_table = [&](const char* title, const char* key) {
    std::string rows;
    for (const BenchRecord& record : records)
      for (const json& s : record.run["ratios"][key])
        rows += fmt::format("| {} | {} | {} | {} | {} | {} |\n", model_name(record.run), s["backend"].get<std::string>(),
                            s["numerator"].get<std::string>(), s["denominator"].get<std::string>(),
                            times(number_or_nan(s["decode"])), times(number_or_nan(s["prefill"])));
    if (rows.empty()) return;
    md += fmt::format("\n## {}\n\n| model | backend | speed of | over | decode | prefill |\n"
                      "| --- | --- | --- | --- | ---: | ---: |\n{}",
                      title, rows);
  };
  ratio_table("Fusion: each level over the lowest", "fusion");
  ratio_table("Speed as a fraction of CUDA's", "fraction_of_cuda");
  if (!chart.empty()) md += fmt::format("\n## Chart\n\n![decode speed, fusion gain and Vulkan over CUDA per model]({})\n", chart);
  md += "\nRoofline fractions: decode = weight bytes a token reads x tokens/s over the memory bandwidth; prefill = matmul "
        "FLOPs x tokens/s over the peak rate; each run's report states its ceilings and where they came from.\n";
  return md;
}

std::string summary_svg(const std::vector<BenchRecord>& records) {
  // Decode speed and its roofline fraction: one group per model, one bar per backend and pipeline.
  std::vector<std::string> combos;
  for_each_result(records, [&](const BenchRecord&, const json& r) { index_of(combos, combo_name(r)); });
  BarPanel decode{"Decode tokens/s (higher is better)", combos, {}, 0};
  BarPanel roofline{"Decode: fraction of the memory roofline", combos, {}, 0};
  BarPanel prefill{"Prefill tokens/s (higher is better)", combos, {}, 0};
  for (const BenchRecord& record : records) {
    BarGroup d{model_name(record.run), std::vector<double>(combos.size(), NAN)};
    BarGroup f = d, p = d;
    for (const json& r : record.run["results"]) {
      if (r.contains("skipped")) continue;
      std::size_t at = index_of(combos, combo_name(r));
      d.values[at] = r["decode"]["tokens_per_s"].get<double>();
      f.values[at] = number_or_nan(r["roofline"]["decode_fraction"]);
      p.values[at] = r["prefill"]["tokens_per_s"].get<double>();
    }
    decode.groups.push_back(d);
    roofline.groups.push_back(f);
    prefill.groups.push_back(p);
  }
  std::vector<BarPanel> panels{decode, roofline, prefill};
  // Ratios: one group per model, one bar per (backend, numerator/denominator), decode speed.
  auto ratio_panel = [&](const std::string& title, const char* key) {
    std::vector<std::string> series;
    for (const BenchRecord& record : records)
      for (const json& s : record.run["ratios"][key]) index_of(series, ratio_name(s));
    if (series.empty()) return;
    BarPanel panel{title, series, {}, 1.0};
    for (const BenchRecord& record : records) {
      BarGroup group{model_name(record.run), std::vector<double>(series.size(), NAN)};
      for (const json& s : record.run["ratios"][key]) {
        group.values[index_of(series, ratio_name(s))] = number_or_nan(s["decode"]);
      }
      panel.groups.push_back(group);
    }
    panels.push_back(panel);
  };
  ratio_panel("Fusion gain in decode speed (1 = none)", "fusion");
  ratio_panel("Decode speed as a fraction of CUDA's (1 = as fast)", "fraction_of_cuda");
  return bar_chart_svg(fmt::format("rwkvc bench: {} runs", records.size()), panels);
}

}  // namespace rwkvc::cli
