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
/// Empty series are allowed (drawn as legend entries only). Throws xgrad::Error naming the file
/// when it cannot be written.
void write_svg(const std::string& path, const std::vector<Chart>& charts, int width = 800, int panel_height = 300);

}  // namespace xgrad::utils
