// A small SVG writer for the benchmark charts: grouped bar panels (one scale each, stacked
// vertically) and line panels sharing an x axis. Plain SVG 1.1, no scripts or fonts to fetch,
// so a chart displays the same in a browser, on GitHub or in a paper.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rwkvc::cli {

// Bars: one group per label (e.g. a backend), one bar per series within it (e.g. -O0, -O2).
struct BarGroup {
  std::string label;
  std::vector<double> values;  // one per series; NaN for none
};

struct BarPanel {
  std::string title;  // "Decode tokens/s (higher is better)"
  std::vector<std::string> series;
  std::vector<BarGroup> groups;
  double reference_line = 0;  // drawn dashed at this value when > 0 (1.0 for ratios)
};

std::string bar_chart_svg(const std::string& title, const std::vector<BarPanel>& panels);

struct LineSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y) in increasing x
};

struct LinePanel {
  std::string title;  // "Per-token latency (µs)"
  std::vector<LineSeries> series;
};

std::string line_chart_svg(const std::string& title, const std::string& x_label, const std::vector<LinePanel>& panels);

// "1.2k", "3.4M": short numbers for axes and labels.
std::string short_number(double value);

}  // namespace rwkvc::cli
