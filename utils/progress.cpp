// ProgressBar: a redrawn bar on terminals, periodic log lines elsewhere; the line layouts.
#include <xgrad/utils/progress.hpp>

#include <algorithm>
#include <cmath>

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::utils {

namespace {

constexpr double kRedrawInterval = 0.1;  // seconds: at most ~10 redraws a second
constexpr std::size_t kMaxBarWidth = 30, kMinBarWidth = 10;
constexpr std::size_t kFallbackWidth = 80;

/// Columns `text` takes: one per code point (UTF-8 continuation bytes take none).
std::size_t columns(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

/// The first `n` columns of `text`, cut at a code point boundary.
std::string first_columns(const std::string& text, std::size_t n) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && seen++ == n) return text.substr(0, i);
  }
  return text;
}

/// Label or status text on one line: control characters (newlines, tabs, escapes) become spaces.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return text;
}

std::string format_rate(double rate, const std::string& unit) {
  if (!std::isfinite(rate)) return fmt::format("? {}/s", unit);
  const int decimals = rate >= 100 ? 0 : rate >= 10 ? 1 : 2;
  return fmt::format("{:.{}f} {}/s", rate, decimals, unit);
}

std::size_t percent(const ProgressView& view) {
  return std::min<std::size_t>(100, static_cast<std::size_t>(100.0 * static_cast<double>(view.step) /
                                                             static_cast<double>(view.total)));
}

std::size_t terminal_width(std::FILE* stream) {
  winsize size{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return kFallbackWidth;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long total = std::llround(std::min(seconds, 1e15));
  const long long hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
  if (hours > 0) return fmt::format("{}h{:02d}m", hours, minutes);
  if (minutes > 0) return fmt::format("{}m{:02d}s", minutes, secs);
  return fmt::format("{}s", secs);
}

std::string render_bar(const ProgressView& view, std::size_t width) {
  const std::size_t limit = width > 0 ? width - 1 : 0;
  const bool known_total = view.total > 0;
  const std::string head = view.label.empty() ? "" : one_line(view.label) + " ";
  const std::string share = known_total ? fmt::format("{:3d}%", percent(view)) : "";
  std::string tail = known_total ? fmt::format(" {}/{}", view.step, view.total) : fmt::format("{}", view.step);
  tail += " " + format_duration(view.elapsed);
  if (known_total) tail += "<" + format_duration(view.eta);
  tail += " " + format_rate(view.rate, view.unit_name);
  const std::string status = view.status.empty() ? "" : " | " + one_line(view.status);

  // The bar takes what the other fields leave, up to its widest; below its narrowest it goes.
  const std::size_t others = columns(head) + columns(share) + columns(tail) + columns(status);
  const std::size_t room = limit > others + 3 ? limit - others - 3 : 0;  // 3: " [" and "]"
  std::string bar;
  if (known_total && room >= kMinBarWidth) {
    const std::size_t bar_width = std::min(room, kMaxBarWidth);
    const double done = static_cast<double>(view.step) / static_cast<double>(view.total);
    const std::size_t filled = std::min(bar_width, static_cast<std::size_t>(done * static_cast<double>(bar_width)));
    bar = " [" + std::string(filled, '=');
    if (filled < bar_width) bar += ">" + std::string(bar_width - filled - 1, ' ');
    bar += "]";
  }
  std::string line = head + share + bar + tail;
  const std::size_t used = columns(line);
  if (used + columns(status) <= limit) return line + status;
  // Then the status is cut, marked with "...".
  if (used + 6 <= limit) return line + first_columns(status, limit - used - 3) + "...";
  return first_columns(line, limit);
}

std::string render_log_line(const ProgressView& view) {
  std::string line = view.label.empty() ? "" : one_line(view.label) + " ";
  if (view.total > 0) {
    line += fmt::format("{}/{} ({}%)", view.step, view.total, percent(view));
  } else {
    line += fmt::format("{}", view.step);
  }
  line += " " + format_rate(view.rate, view.unit_name) + " elapsed " + format_duration(view.elapsed);
  if (view.total > 0) line += " eta " + format_duration(view.eta);
  if (!view.status.empty()) line += " | " + one_line(view.status);
  return line;
}

ProgressBar::ProgressBar(std::size_t total, std::string label, std::FILE* stream, double log_every)
    : total_(total), label_(std::move(label)), stream_(stream), log_every_(log_every) {
  if (stream_ == nullptr) throw Error(fmt::format("ProgressBar '{}': the stream is null", label_));
  if (!(log_every_ >= 0.0)) {
    throw Error(fmt::format("ProgressBar '{}': log_every is {}; expected seconds >= 0", label_, log_every_));
  }
  terminal_ = ::isatty(::fileno(stream_)) == 1;
  start_ = first_update_ = last_draw_ = Clock::now();
}

ProgressBar::~ProgressBar() {
  try {
    if (updated_) finish();
  } catch (...) {
    // A destructor must not throw; the line stays as it was.
  }
}

double ProgressBar::seconds_since(Clock::time_point t) const {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void ProgressBar::update(std::size_t step, const std::string& status, double units) {
  if (!updated_) {
    // The first update (of this bar or since finish()): rate and ETA are measured from here.
    start_step_ = step;
    first_update_ = Clock::now();
    units_ = 0.0;
    updated_ = true;
  } else if (std::isfinite(units) && units > 0) {
    units_ += units;
  }
  step_ = step;
  status_ = status;
  // A terminal shows the last step at once; in a log, finish() writes the last line.
  draw(terminal_ && total_ > 0 && step >= total_);
}

ProgressView ProgressBar::view() const {
  ProgressView view;
  view.label = label_;
  view.step = step_;
  view.total = total_;
  view.status = status_;
  view.unit_name = unit_name_;
  view.elapsed = seconds_since(start_);
  const double measured = seconds_since(first_update_);
  const double steps = step_ > start_step_ ? static_cast<double>(step_ - start_step_) : 0.0;
  if (updated_ && measured > 0 && steps > 0) {
    view.rate = (units_ > 0 ? units_ : steps) / measured;
    if (total_ > 0) view.eta = step_ >= total_ ? 0.0 : static_cast<double>(total_ - step_) * measured / steps;
  }
  return view;
}

void ProgressBar::draw(bool force) {
  const auto now = Clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (terminal_) {
    if (!force && drawn_ && since_draw < kRedrawInterval) return;
    std::fprintf(stream_, "\r%s\x1b[K", render_bar(view(), terminal_width(stream_)).c_str());
    drawn_ = true;
  } else {
    if (!force && since_draw < log_every_) return;
    std::fprintf(stream_, "%s\n", render_log_line(view()).c_str());
  }
  std::fflush(stream_);
  last_draw_ = now;
}

void ProgressBar::message(const std::string& line) {
  if (terminal_ && drawn_) {
    // Clear the bar, print the line in its place, draw the bar again below it.
    std::fprintf(stream_, "\r\x1b[K%s\n", line.c_str());
    drawn_ = false;
    draw(true);
  } else {
    std::fprintf(stream_, "%s\n", line.c_str());
    std::fflush(stream_);
  }
}

void ProgressBar::finish() {
  if (updated_) {
    draw(true);
    if (terminal_) std::fputc('\n', stream_);
    std::fflush(stream_);
  }
  drawn_ = false;
  updated_ = false;
}

}  // namespace xgrad::utils
