// ProgressBar: the line layouts, log lines on a file, the redrawn bar on a pseudo-terminal, and
// format_duration.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/progress.hpp>

using namespace xgrad;
using namespace xgrad::utils;

namespace {

/// Columns of UTF-8 text: one per code point.
std::size_t columns(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

ProgressView example_view() {
  ProgressView view;
  view.label = "train";
  view.step = 450;
  view.total = 1000;
  view.status = "loss 2.31";
  view.unit_name = "tok";
  view.elapsed = 185;
  view.rate = 1234.4;
  view.eta = 226;
  return view;
}

/// Everything written so far to a tmpfile().
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c; (c = std::fgetc(file)) != EOF;) text += static_cast<char>(c);
  return text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  CHECK(start == text.size());  // every line ends with a newline
  return lines;
}

std::size_t count(const std::string& text, const std::string& piece) {
  std::size_t n = 0;
  for (std::size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1)) ++n;
  return n;
}

/// A pseudo-terminal of `width` columns in raw mode: the bar's stream is its terminal side,
/// read back from the other side.
class PseudoTerminal {
 public:
  explicit PseudoTerminal(unsigned short width) {
    controller_ = ::posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(controller_ >= 0);
    REQUIRE(::grantpt(controller_) == 0);
    REQUIRE(::unlockpt(controller_) == 0);
    const int terminal = ::open(::ptsname(controller_), O_RDWR | O_NOCTTY);
    REQUIRE(terminal >= 0);
    termios mode{};
    REQUIRE(::tcgetattr(terminal, &mode) == 0);
    ::cfmakeraw(&mode);  // no "\n" -> "\r\n": what is read is what was written
    REQUIRE(::tcsetattr(terminal, TCSANOW, &mode) == 0);
    winsize size{};
    size.ws_col = width;
    size.ws_row = 24;
    REQUIRE(::ioctl(terminal, TIOCSWINSZ, &size) == 0);
    stream_ = ::fdopen(terminal, "w");
    REQUIRE(stream_ != nullptr);
    ::fcntl(controller_, F_SETFL, O_NONBLOCK);
  }
  ~PseudoTerminal() {
    std::fclose(stream_);
    ::close(controller_);
  }
  std::FILE* stream() const { return stream_; }
  /// What was written since the last call.
  std::string read() {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(controller_, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    return text;
  }

 private:
  int controller_ = -1;
  std::FILE* stream_ = nullptr;
};

}  // namespace

TEST_CASE("format_duration: seconds, minutes and seconds, hours and minutes") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(12.4) == "12s");
  CHECK(format_duration(59.6) == "1m00s");
  CHECK(format_duration(185) == "3m05s");
  CHECK(format_duration(3599) == "59m59s");
  CHECK(format_duration(3720) == "1h02m");
  CHECK(format_duration(90000) == "25h00m");
  CHECK(format_duration(-1) == "?");
  CHECK(format_duration(std::nan("")) == "?");
  CHECK(format_duration(INFINITY) == "?");
}

TEST_CASE("render_bar lays out label, percentage, bar, counts, times, rate and status") {
  const std::string line = render_bar(example_view(), 120);
  CHECK(line == "train  45% [=============>                ] 450/1000 3m05s<3m46s 1234 tok/s | loss 2.31");
  CHECK(columns(line) <= 119);
}

TEST_CASE("render_bar fits the width: the bar shrinks, then goes, then the status is cut") {
  const ProgressView view = example_view();
  const std::string wide = render_bar(view, 120), medium = render_bar(view, 80);
  CHECK(columns(medium) == 79);  // the bar takes what is left
  CHECK(medium.find("[") != std::string::npos);
  CHECK(medium.find("| loss 2.31") != std::string::npos);

  const std::string narrow = render_bar(view, 60);
  CHECK(narrow.find("[") == std::string::npos);
  CHECK(narrow == "train  45% 450/1000 3m05s<3m46s 1234 tok/s | loss 2.31");

  const std::string cut = render_bar(view, 52);
  CHECK(cut == "train  45% 450/1000 3m05s<3m46s 1234 tok/s | los...");
  CHECK(columns(cut) == 51);
  for (std::size_t width : {0, 1, 5, 20, 40}) {
    CAPTURE(width);
    CHECK(columns(render_bar(view, width)) <= (width > 0 ? width - 1 : 0));
  }
}

TEST_CASE("render_bar: a full bar at the end, none without a total, multi-byte text cut whole") {
  ProgressView view = example_view();
  view.step = 1000;
  view.eta = 0;
  CHECK(render_bar(view, 120).find("100% [==============================] 1000/1000 3m05s<0s") != std::string::npos);

  view.total = 0;
  view.eta = NAN;
  const std::string unknown = render_bar(view, 120);
  CHECK(unknown == "train 1000 3m05s 1234 tok/s | loss 2.31");

  view.rate = NAN;
  view.status = "Größe\nnächste Zeile ✓✓✓✓✓✓✓✓";
  const std::string text = render_bar(view, 120);
  CHECK(text == "train 1000 3m05s ? tok/s | Größe nächste Zeile ✓✓✓✓✓✓✓✓");
  const std::string cut = render_bar(view, columns(text) - 2);
  CHECK(cut == "train 1000 3m05s ? tok/s | Größe nächste Zeile ✓✓...");
}

TEST_CASE("render_log_line") {
  CHECK(render_log_line(example_view()) == "train 450/1000 (45%) 1234 tok/s elapsed 3m05s eta 3m46s | loss 2.31");
  ProgressView view = example_view();
  view.total = 0;
  view.status.clear();
  view.rate = 5.4321;
  view.unit_name = "it";
  CHECK(render_log_line(view) == "train 450 5.43 it/s elapsed 3m05s");
}

TEST_CASE("ProgressBar on a file writes log lines, messages and a last line on finish") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    ProgressBar bar(4, "epoch", file, 0.0);  // a line at every update
    bar.set_unit_name("tok");
    bar.update(1, "loss 3.0", 100);
    bar.update(2, "loss 2.5", 100);
    bar.message("validation bleu 12.3");
    bar.update(4, "loss 2.0", 100);
    bar.finish();
  }
  const std::vector<std::string> lines = lines_of(contents(file));
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].rfind("epoch 1/4 (25%) ? tok/s elapsed 0s eta ? | loss 3.0", 0) == 0);
  CHECK(lines[1].rfind("epoch 2/4 (50%) ", 0) == 0);
  CHECK(lines[1].find("? tok/s") == std::string::npos);  // measured from the first update on
  CHECK(lines[1].find(" tok/s elapsed 0s eta 0s | loss 2.5") != std::string::npos);
  CHECK(lines[2] == "validation bleu 12.3");
  CHECK(lines[3].rfind("epoch 4/4 (100%) ", 0) == 0);
  CHECK(lines[4].rfind("epoch 4/4 (100%) ", 0) == 0);  // finish() repeats the last state
  CHECK(contents(file).find('\r') == std::string::npos);
  CHECK(contents(file).find('\x1b') == std::string::npos);
  std::fclose(file);
}

TEST_CASE("ProgressBar on a file logs at most every log_every seconds, and finishes when destroyed") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    ProgressBar bar(0, "", file, 3600.0);
    for (std::size_t step = 1; step <= 50; ++step) bar.update(step, "running");
    CHECK(contents(file).empty());
  }
  const std::vector<std::string> lines = lines_of(contents(file));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("50 ", 0) == 0);
  CHECK(lines[0].find(" it/s elapsed 0s | running") != std::string::npos);
  CHECK(lines[0].find("eta") == std::string::npos);
  std::fclose(file);
}

TEST_CASE("ProgressBar::set_total moves the end the percentage and bar count towards") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    ProgressBar bar(100, "train", file, 0.0);
    bar.update(10, "");
    bar.set_total(20);  // a time limit ends the run at about step 20
    bar.update(15, "");
  }
  const std::vector<std::string> lines = lines_of(contents(file));
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0].rfind("train 10/100 (10%)", 0) == 0);
  CHECK(lines[1].rfind("train 15/20 (75%)", 0) == 0);
  std::fclose(file);
}

TEST_CASE("ProgressBar without updates writes nothing but its messages") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    ProgressBar bar(10, "idle", file);
    bar.message("hello");
    bar.finish();
  }
  CHECK(contents(file) == "hello\n");
  std::fclose(file);
}

TEST_CASE("ProgressBar on a terminal redraws one line, throttled, fitted to its width") {
  PseudoTerminal terminal(60);
  ProgressBar bar(10, "job", terminal.stream());
  bar.update(1, "first");
  const std::string first = terminal.read();
  REQUIRE(first.size() > 4);
  CHECK(first.rfind("\rjob  10% [", 0) == 0);
  CHECK(first.substr(first.size() - 3) == "\x1b[K");
  CHECK(columns(first.substr(1, first.size() - 4)) <= 59);
  CHECK(first.find("| first") != std::string::npos);

  // At most ~10 draws a second: of five quick updates, one or two at most are drawn (the
  // machine might pause between two of them), never all.
  for (std::size_t step = 2; step <= 6; ++step) bar.update(step, "second");
  CHECK(count(terminal.read(), "\r") <= 2);

  bar.message("a line of its own");
  const std::string message = terminal.read();
  CHECK(message.rfind("\r\x1b[Ka line of its own\n\rjob  60% ", 0) == 0);
  CHECK(message.find("| second\x1b[K") != std::string::npos);

  bar.update(10, "done");  // the last step is always drawn
  CHECK(terminal.read().find(" 100% [") != std::string::npos);
  bar.finish();
  const std::string end = terminal.read();
  CHECK(end.substr(end.size() - 1) == "\n");
  CHECK(count(end, "\r") == 1);
}

TEST_CASE("ProgressBar rejects a null stream and a negative or NaN log_every") {
  CHECK_THROWS_WITH_AS(ProgressBar(1, "x", nullptr), doctest::Contains("ProgressBar 'x': the stream is null"), Error);
  CHECK_THROWS_WITH_AS(ProgressBar(1, "x", stderr, -1.0),
                       doctest::Contains("ProgressBar 'x': log_every is -1; expected seconds >= 0"), Error);
  CHECK_THROWS_WITH_AS(ProgressBar(1, "x", stderr, std::nan("")), doctest::Contains("log_every is nan"), Error);
}
