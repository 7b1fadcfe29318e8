// Progress of long work: a redrawn one-line bar with rate and ETA when the stream is a terminal,
// plain log lines at a steady interval otherwise (log files, pipes, batch jobs).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <string>

namespace xgrad::utils {

/// What one progress line shows. Unknown quantities are NaN (rate, eta) or 0 (total).
struct ProgressView {
  std::string label;
  std::size_t step = 0;
  std::size_t total = 0;  ///< 0: unknown, no percentage, bar or ETA
  std::string status;
  std::string unit_name = "it";
  double elapsed = 0.0;                                     ///< seconds
  double rate = std::numeric_limits<double>::quiet_NaN();  ///< units per second
  double eta = std::numeric_limits<double>::quiet_NaN();   ///< seconds left
};

/// The terminal line: "label  45% [=====>    ] 450/1000 3m05s<1m10s 1234 tok/s | status", at
/// most `width` - 1 columns (the last column would wrap): the bar shrinks or goes, then the
/// status is cut.
std::string render_bar(const ProgressView& view, std::size_t width);
/// The log line: "label 450/1000 (45%) 1234 tok/s elapsed 3m05s eta 1m10s | status".
std::string render_log_line(const ProgressView& view);

class ProgressBar {
 public:
  /// `total` steps (0: unknown, no ETA or bar). Draws on `stream` (stderr by default); a bar
  /// when isatty(stream), else one line every `log_every` seconds of wall time.
  ProgressBar(std::size_t total, std::string label, std::FILE* stream = stderr, double log_every = 10.0);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar();  ///< finishes the line

  /// Sets the current step and the text shown after the bar (e.g. "loss 2.31 lr 1.2e-4"), and
  /// redraws at most ~10 times a second. `units` done since the last call (e.g. tokens) feed the
  /// rate shown as "<rate> <unit_name>/s"; while no units were given the rate counts steps.
  /// Rate and ETA are measured from the first update, so a resumed run's earlier steps do not
  /// count as done in this run's time.
  void update(std::size_t step, const std::string& status, double units = 0.0);
  /// Prints a line of its own (e.g. a validation result) without breaking the bar.
  void message(const std::string& line);
  void set_unit_name(std::string name) { unit_name_ = std::move(name); }
  /// Changes the number of steps expected (e.g. as a time limit comes into view); 0: unknown.
  void set_total(std::size_t total) { total_ = total; }
  /// Ends the bar's line (a last log line when not a terminal); later updates start a new one.
  void finish();
  /// The current state as drawn.
  ProgressView view() const;

 private:
  using Clock = std::chrono::steady_clock;
  void draw(bool force);
  double seconds_since(Clock::time_point t) const;
  std::size_t total_, step_ = 0, start_step_ = 0;
  std::string label_, status_, unit_name_ = "it";
  std::FILE* stream_;
  bool terminal_;
  double log_every_;
  double units_ = 0.0;  ///< units done since the first update
  Clock::time_point start_, first_update_, last_draw_;
  bool updated_ = false;  ///< an update came since construction or the last finish()
  bool drawn_ = false;    ///< the terminal line holds a bar
};

/// "1h02m", "3m05s", "12s" (seconds rounded; "?" when not finite or negative).
std::string format_duration(double seconds);

}  // namespace xgrad::utils
