// Line charts written as self-contained SVG files, for loss and metric curves.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace xgrad::utils {

/// One curve: its name in the legend and its (x, y) points in order of x.
struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

/// One panel: a title, axis labels, and its curves drawn on shared, labelled axes with ticks.
struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  bool log_y = false;  ///< logarithmic y axis (non-positive values are skipped)
};

/// Writes the charts stacked vertically into one SVG file, atomically (temp file, then rename).
/// Empty series are allowed (drawn as legend entries only); points with a non-finite coordinate
/// (or y <= 0 on a log axis) are skipped, leaving a gap in their curve. Throws xgrad::Error
/// naming the file when it cannot be written, when `charts` is empty, or when the size is below
/// 200 x 120 pixels.
void write_svg(const std::string& path, const std::vector<Chart>& charts, int width = 800, int panel_height = 300);

/// The SVG document write_svg writes.
std::string render_svg(const std::vector<Chart>& charts, int width = 800, int panel_height = 300);

/// Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, at most about
/// `max_ticks` of them, the first at or below lo and the last at or above hi. A range of zero
/// width is widened around its value. lo and hi must be finite.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks = 6);

}  // namespace xgrad::utils
