// SVG line charts: panels with ticked axes, grid, legend and curves, written in one atomic step.
#include <xgrad/utils/plot.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/atomic_file.hpp>

namespace xgrad::utils {

namespace {

constexpr int kMinWidth = 200, kMinPanelHeight = 120;
// Panel margins in pixels: room for the title, tick labels, axis labels and the legend.
constexpr double kTop = 34, kBottom = 46, kLeft = 72, kRight = 16;
constexpr double kLegendLine = 18;         // height of a legend entry
constexpr double kCharWidth = 7;           // approximate width of a 12px character
constexpr double kMaxLegendWidth = 200;

// Distinct colours that stay apart for colour-blind readers (the Tableau 10 palette).
constexpr const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

/// A legend name cut to fit the legend column, at a UTF-8 character boundary.
std::string legend_name(const std::string& name) {
  const std::size_t max_bytes = static_cast<std::size_t>((kMaxLegendWidth - 34) / kCharWidth);
  if (name.size() <= max_bytes) return name;
  std::size_t cut = max_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return name.substr(0, cut) + "...";
}

/// 1, 2, 5 or 10 times a power of ten, near `x` (rounded) or at least `x` (not rounded).
double nice_number(double x, bool round) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  const double fraction = x / power;
  double nice;
  if (round) {
    nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  } else {
    nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  }
  return nice * power;
}

/// A tick label with as many digits as the tick spacing needs, and no "-0".
std::string tick_label(double value, double step) {
  if (std::abs(value) < step * 1e-9) value = 0.0;
  const double magnitude = std::max(std::abs(value), step);
  if (magnitude >= 1e5 || step < 1e-4) {
    const int digits = std::max(1, static_cast<int>(std::ceil(std::log10(magnitude / step))) + 1);
    return fmt::format("{:.{}g}", value, digits);
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return fmt::format("{:.{}f}", value, decimals);
}

/// The ticks of a log axis, as values: powers of ten (every k-th when there are many decades),
/// and 2 and 5 times them too when there are at most two decades.
std::vector<double> log_ticks(double lo, double hi, int max_ticks) {
  const double first = std::floor(std::log10(lo));
  const double last = std::max(first + 1, std::ceil(std::log10(hi)));
  const double decades = last - first;
  const double every = std::max(1.0, std::ceil(decades / std::max(1, max_ticks - 1)));
  std::vector<double> ticks;
  for (double e = first; e < last + every; e += every) {
    ticks.push_back(std::pow(10.0, e));
    if (decades <= 2 && e < last) {
      ticks.push_back(2 * std::pow(10.0, e));
      ticks.push_back(5 * std::pow(10.0, e));
    }
  }
  return ticks;
}

bool drawable(const std::pair<double, double>& point, bool log_y) {
  return std::isfinite(point.first) && std::isfinite(point.second) && (!log_y || point.second > 0);
}

/// One panel's geometry: where the data range lands on the page.
struct Frame {
  double left, top, width, height;  // the plot area, pixels
  double x_lo, x_hi, y_lo, y_hi;    // axis ranges (y in log10 units on a log axis)
  bool log_y;
  double x(double value) const { return left + (value - x_lo) / (x_hi - x_lo) * width; }
  double y(double value) const {
    const double v = log_y ? std::log10(value) : value;
    return top + height - (v - y_lo) / (y_hi - y_lo) * height;
  }
};

/// Width of the legend column: room for the longest name (within reason), or none.
double legend_width(const std::vector<Chart>& charts) {
  double width = 0;
  for (const Chart& chart : charts) {
    for (const Series& series : chart.series) {
      width = std::max(width, 34 + kCharWidth * static_cast<double>(series.name.size()));
    }
  }
  return std::min(width, kMaxLegendWidth);
}

void render_chart(std::string& svg, const Chart& chart, double width, double height, double legend_width) {
  // Data ranges over the drawable points.
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const Series& series : chart.series) {
    for (const auto& point : series.points) {
      if (!drawable(point, chart.log_y)) continue;
      x_min = std::min(x_min, point.first);
      x_max = std::max(x_max, point.first);
      y_min = std::min(y_min, point.second);
      y_max = std::max(y_max, point.second);
    }
  }
  const bool has_data = std::isfinite(x_min);
  if (!has_data) {
    x_min = 0, x_max = 1;
    y_min = chart.log_y ? 1 : 0, y_max = chart.log_y ? 10 : 1;
  }

  const std::vector<double> x_ticks = nice_ticks(x_min, x_max);
  const std::vector<double> y_ticks = chart.log_y ? log_ticks(y_min, y_max, 6) : nice_ticks(y_min, y_max);
  Frame frame;
  frame.left = kLeft;
  frame.top = kTop;
  frame.width = std::max(10.0, width - kLeft - kRight - legend_width);
  frame.height = std::max(10.0, height - kTop - kBottom);
  frame.x_lo = x_ticks.front(), frame.x_hi = x_ticks.back();
  frame.log_y = chart.log_y;
  frame.y_lo = chart.log_y ? std::log10(y_ticks.front()) : y_ticks.front();
  frame.y_hi = chart.log_y ? std::log10(y_ticks.back()) : y_ticks.back();
  // Values so large that their ticks coincide (spacing below the doubles' resolution).
  if (!(frame.x_hi > frame.x_lo)) frame.x_hi = frame.x_lo + 1;
  if (!(frame.y_hi > frame.y_lo)) frame.y_hi = frame.y_lo + 1;

  svg += fmt::format("<text x=\"{:.1f}\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
                     frame.left + frame.width / 2, escape_xml(chart.title));

  // Grid lines and tick labels, then the axes over them.
  const double bottom = frame.top + frame.height, right = frame.left + frame.width;
  const double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1.0;
  for (double tick : x_ticks) {
    const double x = frame.x(tick);
    svg += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#e0e0e0\"/>\n", x,
                       frame.top, bottom);
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}</text>\n", x, bottom + 16,
                       tick_label(tick, x_step));
  }
  const double y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1.0;
  for (double tick : y_ticks) {
    const double y = frame.y(tick);
    svg += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{2:.2f}\" y2=\"{1:.2f}\" stroke=\"#e0e0e0\"/>\n",
                       frame.left, y, right);
    const std::string label = chart.log_y ? fmt::format("{:g}", tick) : tick_label(tick, y_step);
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"end\">{}</text>\n", frame.left - 6, y + 4,
                       label);
  }
  svg += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" stroke=\"#333\"/>\n",
                     frame.left, frame.top, frame.width, frame.height);
  svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}</text>\n",
                     frame.left + frame.width / 2, bottom + 36, escape_xml(chart.x_label));
  svg += fmt::format(
      "<text x=\"16\" y=\"{0:.2f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.2f})\">{1}</text>\n",
      frame.top + frame.height / 2, escape_xml(chart.y_label));
  if (!has_data) {
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\" fill=\"#999\">no data</text>\n",
                       frame.left + frame.width / 2, frame.top + frame.height / 2);
  }

  // Curves: a path per series, broken where points are skipped; lone points as dots.
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    const char* colour = kColours[s % std::size(kColours)];
    std::string path, dots;
    std::vector<std::pair<double, double>> run;
    const auto flush_run = [&] {
      if (run.size() == 1) {
        dots += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"2.5\" fill=\"{}\"/>\n", run[0].first,
                            run[0].second, colour);
      }
      for (std::size_t i = 0; i < run.size(); ++i) {
        path += fmt::format("{}{:.2f} {:.2f} ", i == 0 ? "M" : "L", run[i].first, run[i].second);
      }
      run.clear();
    };
    for (const auto& point : series.points) {
      if (drawable(point, chart.log_y)) {
        run.emplace_back(frame.x(point.first), frame.y(point.second));
      } else {
        flush_run();
      }
    }
    flush_run();
    if (!path.empty()) {
      path.pop_back();
      svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", path, colour);
    }
    svg += dots;

    const double legend_x = right + 12, legend_y = frame.top + 8 + kLegendLine * static_cast<double>(s);
    svg += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" stroke-width=\"3\"/>\n",
                       legend_x, legend_y, legend_x + 20, legend_y, colour);
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\">{}</text>\n", legend_x + 26, legend_y + 4,
                       escape_xml(legend_name(series.name)));
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    throw Error(fmt::format("nice_ticks: range [{}, {}]; expected finite ends", lo, hi));
  }
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    const double pad = lo != 0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  if (!std::isfinite(hi - lo)) throw Error(fmt::format("nice_ticks: range [{}, {}] is too wide to tick", lo, hi));
  const int intervals = std::max(1, max_ticks - 1);
  const double step = nice_number(nice_number(hi - lo, false) / intervals, true);
  const double first = std::floor(lo / step), count = std::ceil(hi / step) - first;
  std::vector<double> ticks;
  for (int i = 0; i <= count && i <= 2 * intervals + 2; ++i) ticks.push_back((first + i) * step);
  return ticks;
}

std::string render_svg(const std::vector<Chart>& charts, int width, int panel_height) {
  if (charts.empty()) throw Error("render_svg: no charts to draw; expected at least one");
  if (width < kMinWidth || panel_height < kMinPanelHeight) {
    throw Error(fmt::format("render_svg: size {} x {} pixels per panel; expected at least {} x {}", width, panel_height,
                            kMinWidth, kMinPanelHeight));
  }
  const int height = panel_height * static_cast<int>(charts.size());
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  // One legend column for all panels keeps their plot areas aligned.
  const double legend = legend_width(charts);
  for (std::size_t c = 0; c < charts.size(); ++c) {
    svg += fmt::format("<g transform=\"translate(0 {})\">\n", static_cast<int>(c) * panel_height);
    render_chart(svg, charts[c], width, panel_height, legend);
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_svg(const std::string& path, const std::vector<Chart>& charts, int width, int panel_height) {
  std::string svg;
  try {
    svg = render_svg(charts, width, panel_height);
  } catch (const Error& e) {
    throw Error(fmt::format("write_svg: '{}': {}", path, e.what()));
  }
  write_file_atomically(path, svg, "write_svg");
}

}  // namespace xgrad::utils
