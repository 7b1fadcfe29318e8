// Progress of long work: a redrawn one-line bar with rate and ETA when the stream is a terminal,
// plain log lines at a steady interval otherwise (logs, pipes, CI).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace xgrad::utils {

class ProgressBar {
 public:
  /// `total` steps (0: unknown, no ETA or bar). Draws on `stream` (stderr by default); a bar
  /// when isatty(stream), else one line every `log_every` seconds of wall time.
  ProgressBar(std::size_t total, std::string label, std::FILE* stream = stderr, double log_every = 10.0);
  ~ProgressBar();  ///< finishes the line

  /// Sets the current step and the text shown after the bar (e.g. "loss 2.31 lr 1.2e-4"), and
  /// redraws at most ~10 times a second. `units` done since the last call (e.g. tokens) feed the
  /// rate shown as "<rate> <unit_name>/s".
  void update(std::size_t step, const std::string& status, double units = 0.0);
  /// Prints a line of its own (e.g. a validation result) without breaking the bar.
  void message(const std::string& line);
  void set_unit_name(std::string name) { unit_name_ = std::move(name); }
  /// Ends the bar's line; later updates start a new one.
  void finish();

 private:
  void draw(bool force);
  using Clock = std::chrono::steady_clock;
  std::size_t total_, step_ = 0, start_step_ = 0;
  std::string label_, status_, unit_name_ = "it";
  std::FILE* stream_;
  bool terminal_;
  double log_every_;
  double units_ = 0.0;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace xgrad::utils
