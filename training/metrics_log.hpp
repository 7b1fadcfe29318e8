// A run's metrics, one JSON object per line in RUN/metrics.jsonl, and its curves drawn from them
// to an SVG file: for any training loop (the seq2seq program's, a user's own).
//
//   {"kind":"train","loss":2.31,"lr":0.0007,"step":400,"tokens":2011}
//   {"bleu":41.2,"chrf":63.0,"kind":"valid","loss":1.9,"step":400}
//
// Every line carries its kind and step. A resumed run keeps the lines up to the step it resumes
// from and redoes the rest, so the file never holds a step twice, nor a torn last line.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace xgrad::training {

/// A logged value: an integer (counts, steps), a number, or a text.
using MetricValue = std::variant<std::int64_t, double, std::string>;
/// The values of one line, by name (written with the names in alphabetical order).
using Metrics = std::vector<std::pair<std::string, MetricValue>>;

class MetricsLog {
 public:
  /// The log at `path` (RUN/metrics.jsonl); nothing is read or written until start() or resume_at().
  explicit MetricsLog(std::string path);
  const std::string& path() const { return path_; }

  /// A new run: the file is created empty (atomically, replacing any earlier one).
  void start();
  /// A run resumed at `step`: keeps the lines of steps <= step, drops later ones and any line
  /// that is not a whole JSON object with a kind and a step (a write cut short), rewrites the
  /// file atomically and remembers what it kept for series(). Returns the lines dropped.
  std::size_t resume_at(std::int64_t step);
  /// Appends {"kind": kind, "step": step, values...} and flushes it to the file. Non-finite
  /// numbers are written as null. Throws xgrad::Error naming the file if it cannot be written.
  void log(const std::string& kind, std::int64_t step, const Metrics& values);

  /// Whether the latest line of `kind` (kept by resume_at() or logged since) is at `step`.
  bool latest_is(const std::string& kind, std::int64_t step) const;

  /// The (step, value) points of the lines of `kind` that have a number named `name`, in order:
  /// each one line's, up to 2048 of them; beyond, means of 2, 4, 8... consecutive lines, so that
  /// the log's memory stays flat however long the run (the file keeps every line).
  std::vector<std::pair<double, double>> series(const std::string& kind, const std::string& name) const;

 private:
  /// One metric's points: at most 2 * kKept, each the mean of `weight` consecutive values.
  struct Series {
    static constexpr std::size_t kKept = 1024;
    std::vector<std::pair<double, double>> points;
    std::size_t weight = 1;
    double step_sum = 0, value_sum = 0;  // the values not yet making a whole point
    std::size_t pending = 0;
    void add(double step, double value);
  };
  void append(const std::string& text);
  void remember(const std::string& kind, std::int64_t step, const std::vector<std::pair<std::string, double>>& numbers);
  std::string path_;
  std::map<std::pair<std::string, std::string>, Series> series_;  // by (kind, name)
  std::map<std::string, std::int64_t> last_step_;                // by kind
};

/// One curve of a chart: the values named `name` of the lines of `kind`, times `scale`.
struct Curve {
  std::string label;  ///< in the legend
  std::string kind;
  std::string name;
  double scale = 1.0;
};

/// One panel of curves over the step axis.
struct CurveChart {
  std::string title;
  std::string y_label;
  std::vector<Curve> curves;
  bool log_y = false;
};

/// Draws the charts from the log into an SVG file (atomically). Curves of more than 400 points
/// are thinned to means over windows, so a long run still draws a few hundred.
void draw_curves(const MetricsLog& log, const std::string& svg_path, const std::vector<CurveChart>& charts);

}  // namespace xgrad::training
