#include "tools/bench_svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace rwkvc::cli {

namespace {

constexpr double kWidth = 900;
constexpr double kLeft = 80, kRight = 170;  // the right margin holds the legend
constexpr double kPanelHeight = 250, kPanelTop = 34, kPanelBottom = 46;
constexpr const char* kColours[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f"};

const char* colour(std::size_t i) { return kColours[i % std::size(kColours)]; }

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// An axis from 0 (or `low`) to a round number at or above `high`, in about five steps.
struct Axis {
  double low = 0, high = 1, step = 0.2;
  double at(double value, double top, double bottom) const { return bottom - (value - low) / (high - low) * (bottom - top); }
};

Axis round_axis(double low, double high) {
  if (!(high > low)) high = low + 1;
  double raw = (high - low) / 5;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  return {std::floor(low / step) * step, std::ceil(high / step) * step, step};
}

std::string svg_open(double height, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{3}</text>\n",
      kWidth, height, kWidth / 2, escape(title));
}

// Grid lines and labels of a y axis over the plot area.
std::string y_grid(const Axis& axis, double top, double bottom) {
  std::string out;
  for (double v = axis.low; v <= axis.high + axis.step / 2; v += axis.step) {
    double y = axis.at(v, top, bottom);
    out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, y, kWidth - kRight, y);
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", kLeft - 6, y + 4, short_number(v));
  }
  return out;
}

std::string legend(const std::vector<std::string>& names, double top) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    double y = top + 8 + 18 * static_cast<double>(i);
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", kWidth - kRight + 16, y, colour(i));
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", kWidth - kRight + 34, y + 10, escape(names[i]));
  }
  return out;
}

std::string bar_panel(const BarPanel& panel, double offset) {
  const double top = offset + kPanelTop, bottom = offset + kPanelHeight - kPanelBottom;
  double high = panel.reference_line;
  for (const BarGroup& g : panel.groups)
    for (double v : g.values)
      if (std::isfinite(v)) high = std::max(high, v);
  Axis axis = round_axis(0, high * 1.08);
  std::string out = fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", kLeft,
                                offset + 22, escape(panel.title));
  out += y_grid(axis, top, bottom);
  const double plot = kWidth - kRight - kLeft;
  const double group_width = plot / static_cast<double>(std::max<std::size_t>(panel.groups.size(), 1));
  const double bar_width = std::min(60.0, group_width * 0.8 / static_cast<double>(std::max<std::size_t>(panel.series.size(), 1)));
  for (std::size_t g = 0; g < panel.groups.size(); ++g) {
    const BarGroup& group = panel.groups[g];
    double centre = kLeft + group_width * (static_cast<double>(g) + 0.5);
    double first = centre - bar_width * static_cast<double>(group.values.size()) / 2;
    for (std::size_t s = 0; s < group.values.size(); ++s) {
      double v = group.values[s];
      if (!std::isfinite(v)) continue;
      double x = first + bar_width * static_cast<double>(s), y = axis.at(v, top, bottom);
      out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {}: {}</title></rect>\n",
                         x + 1, y, bar_width - 2, bottom - y, colour(s), escape(group.label),
                         escape(s < panel.series.size() ? panel.series[s] : ""), fmt::format("{:.4g}", v));
      out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"10\">{}</text>\n",
                         x + bar_width / 2, y - 3, short_number(v));
    }
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", centre, bottom + 18, escape(group.label));
  }
  if (panel.reference_line > 0) {
    double y = axis.at(panel.reference_line, top, bottom);
    out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#333\" stroke-dasharray=\"5,4\"/>\n", kLeft,
                       y, kWidth - kRight, y);
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#333\"/>\n", kLeft, bottom, kWidth - kRight);
  return out + legend(panel.series, top);
}

std::string line_panel(const LinePanel& panel, double offset, double x_low, double x_high, const std::string& x_label) {
  const double top = offset + kPanelTop, bottom = offset + kPanelHeight - kPanelBottom;
  double high = 0;
  for (const LineSeries& s : panel.series)
    for (auto [x, y] : s.points) high = std::max(high, y);
  Axis axis = round_axis(0, high * 1.1);
  Axis xs = round_axis(x_low, x_high);
  xs.low = x_low;  // the data's own start: a run starts at its first sample
  auto x_at = [&](double x) { return kLeft + (x - xs.low) / (xs.high - xs.low) * (kWidth - kRight - kLeft); };

  std::string out = fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", kLeft,
                                offset + 22, escape(panel.title));
  out += y_grid(axis, top, bottom);
  for (double x = std::ceil(xs.low / xs.step) * xs.step; x <= xs.high + xs.step / 2; x += xs.step)
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x_at(x), bottom + 16, short_number(x));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (kLeft + kWidth - kRight) / 2, bottom + 34,
                     escape(x_label));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < panel.series.size(); ++i) {
    const LineSeries& s = panel.series[i];
    names.push_back(s.name);
    std::string points;
    for (auto [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", x_at(x), axis.at(y, top, bottom));
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", colour(i), points);
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#333\"/>\n", kLeft, bottom, kWidth - kRight);
  return out + legend(names, top);
}

}  // namespace

std::string short_number(double value) {
  double magnitude = std::abs(value);
  if (magnitude >= 1e9) return fmt::format("{:.3g}G", value / 1e9);
  if (magnitude >= 1e6) return fmt::format("{:.3g}M", value / 1e6);
  if (magnitude >= 1e3) return fmt::format("{:.3g}k", value / 1e3);
  return fmt::format("{:.4g}", value);
}

std::string bar_chart_svg(const std::string& title, const std::vector<BarPanel>& panels) {
  double height = 30 + kPanelHeight * static_cast<double>(panels.size());
  std::string out = svg_open(height, title);
  for (std::size_t i = 0; i < panels.size(); ++i) out += bar_panel(panels[i], 30 + kPanelHeight * static_cast<double>(i));
  return out + "</svg>\n";
}

std::string line_chart_svg(const std::string& title, const std::string& x_label, const std::vector<LinePanel>& panels) {
  double x_low = INFINITY, x_high = -INFINITY;
  for (const LinePanel& p : panels)
    for (const LineSeries& s : p.series)
      for (auto [x, y] : s.points) x_low = std::min(x_low, x), x_high = std::max(x_high, x);
  if (!std::isfinite(x_low)) x_low = 0, x_high = 1;
  double height = 30 + kPanelHeight * static_cast<double>(panels.size());
  std::string out = svg_open(height, title);
  for (std::size_t i = 0; i < panels.size(); ++i)
    out += line_panel(panels[i], 30 + kPanelHeight * static_cast<double>(i), x_low, x_high, x_label);
  return out + "</svg>\n";
}

}  // namespace rwkvc::cli
