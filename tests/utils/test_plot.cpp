// SVG charts: the document's structure, escaping, awkward data, nice ticks, and errors that name
// the file.
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/plot.hpp>

using namespace xgrad;
using namespace xgrad::utils;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t count(const std::string& text, const std::string& piece) {
  std::size_t n = 0;
  for (std::size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1)) ++n;
  return n;
}

Series line(const std::string& name, std::vector<std::pair<double, double>> points) {
  return Series{name, std::move(points)};
}

/// Ticks are evenly spaced by 1, 2 or 5 times a power of ten and cover [lo, hi].
void check_nice(double lo, double hi) {
  CAPTURE(lo);
  CAPTURE(hi);
  const std::vector<double> ticks = nice_ticks(lo, hi);
  REQUIRE(ticks.size() >= 2);
  CHECK(ticks.size() <= 8);
  CHECK(ticks.front() <= std::min(lo, hi));
  CHECK(ticks.back() >= std::max(lo, hi));
  const double step = ticks[1] - ticks[0];
  const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  CHECK((mantissa == doctest::Approx(1) || mantissa == doctest::Approx(2) || mantissa == doctest::Approx(5)));
  for (std::size_t i = 1; i < ticks.size(); ++i) CHECK(ticks[i] - ticks[i - 1] == doctest::Approx(step));
  CHECK(std::remainder(ticks[0], step) == doctest::Approx(0).scale(step));
}

}  // namespace

TEST_CASE("nice_ticks on a few ranges") {
  CHECK(nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  CHECK(nice_ticks(0, 97) == std::vector<double>{0, 20, 40, 60, 80, 100});
  CHECK(nice_ticks(-3.2, 7.9) == std::vector<double>{-5, 0, 5, 10});
  CHECK(nice_ticks(0, 0) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
  CHECK(nice_ticks(7.9, -3.2) == nice_ticks(-3.2, 7.9));
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{
           {0, 1}, {0.001, 0.003}, {1.5, 1.6}, {-250, 30}, {5, 5}, {12345, 98765}, {1e-9, 3e-9}, {2.3, 1e6}}) {
    check_nice(lo, hi);
  }
}

TEST_CASE("nice_ticks rejects a non-finite range") {
  CHECK_THROWS_WITH_AS(nice_ticks(0, kNaN), doctest::Contains("nice_ticks: range [0, nan]; expected finite ends"),
                       Error);
  CHECK_THROWS_WITH_AS(nice_ticks(-kInf, 1), doctest::Contains("nice_ticks: range [-inf, 1]"), Error);
  CHECK_THROWS_WITH_AS(nice_ticks(-1e308, 1e308), doctest::Contains("too wide"), Error);
}

TEST_CASE("write_svg writes one SVG with titles, labels, a path and a legend entry per curve") {
  const TempDir scratch("plot_basic");
  const fs::path& folder = scratch.path();
  const std::string path = (folder / "curves.svg").string();
  Chart loss{"Training loss", "step", "loss", {}, false};
  loss.series.push_back(line("train", {{0, 3.2}, {100, 2.1}, {200, 1.7}, {300, 1.5}}));
  loss.series.push_back(line("valid", {{0, 3.3}, {150, 2.4}, {300, 2.0}}));
  Chart bleu{"BLEU", "epoch", "score", {line("bleu", {{1, 5.0}, {2, 12.5}, {3, 18.0}})}, false};
  write_svg(path, {loss, bleu}, 800, 300);

  const std::string svg = read_text(path);
  CHECK(svg.rfind("<svg ", 0) == 0);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  CHECK(svg.find("height=\"600\"") != std::string::npos);  // two panels of 300
  CHECK(count(svg, "<g transform=") == 2);
  for (const char* text : {">Training loss<", ">BLEU<", ">step<", ">loss<", ">epoch<", ">score<", ">train<", ">valid<",
                           ">bleu<"}) {
    CAPTURE(text);
    CHECK(svg.find(text) != std::string::npos);
  }
  CHECK(count(svg, "<path ") == 3);
  CHECK(count(svg, "<g") == count(svg, "</g>"));
  // Colours by position in the panel, on each curve and its legend line.
  CHECK(count(svg, "stroke=\"#1f77b4\"") == 4);  // train and bleu
  CHECK(count(svg, "stroke=\"#ff7f0e\"") == 2);
  // Tick labels of the loss panel's axes.
  CHECK(svg.find(">300<") != std::string::npos);
  CHECK(svg.find(">1.5<") != std::string::npos);
  // Written in one step: no temporary file is left beside it.
  CHECK(std::distance(fs::directory_iterator(folder), fs::directory_iterator()) == 1);
}

TEST_CASE("write_svg escapes & < > and quotes in titles, labels and names") {
  const std::string svg =
      render_svg({Chart{"A & B <test>", "x \"quoted\"", "y's", {line("loss<i> & more", {{0, 1}, {1, 2}})}, false}});
  CHECK(svg.find(">A &amp; B &lt;test&gt;<") != std::string::npos);
  CHECK(svg.find(">x &quot;quoted&quot;<") != std::string::npos);
  CHECK(svg.find(">y&apos;s<") != std::string::npos);
  CHECK(svg.find(">loss&lt;i&gt; &amp; more<") != std::string::npos);
  CHECK(svg.find("<test>") == std::string::npos);
  CHECK(svg.find("<i>") == std::string::npos);
}

TEST_CASE("render_svg copes with a single point, equal values, NaN and inf, and empty series") {
  Chart chart{"awkward", "x", "y", {}, false};
  chart.series.push_back(line("single", {{5, 2}}));
  chart.series.push_back(line("flat", {{0, 2}, {10, 2}}));
  chart.series.push_back(line("holes", {{0, 1}, {1, kNaN}, {2, 3}, {kInf, 1}, {4, 2}, {5, -kInf}}));
  chart.series.push_back(line("empty", {}));
  chart.series.push_back(line("all bad", {{kNaN, 1}, {1, kInf}}));
  const std::string svg = render_svg({chart});
  CHECK(count(svg, "<path ") == 3);  // single, flat, holes
  CHECK(svg.find(">empty<") != std::string::npos);
  CHECK(svg.find(">all bad<") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  // The NaN and inf points break "holes" into three runs of one point: lone points are dots.
  CHECK(count(svg, "<circle ") == 4);
  CHECK(count(svg, " M") == 2);

  // Only equal values, and one point alone: the axes still get a range.
  const std::string flat = render_svg({Chart{"flat", "x", "y", {line("c", {{3, 7}, {3, 7}})}, false}});
  CHECK(flat.find("nan") == std::string::npos);
  CHECK(count(flat, "<path ") == 1);
  CHECK(render_svg({Chart{"one", "x", "y", {line("p", {{1, 1}})}, true}}).find("nan") == std::string::npos);

  // No data at all: axes and a note.
  const std::string none = render_svg({Chart{"nothing", "x", "y", {line("e", {})}, false}, Chart{"no series", "", "", {}, true}});
  CHECK(none.find("no data") != std::string::npos);
  CHECK(count(none, "<path ") == 0);
  CHECK(none.find("nan") == std::string::npos);
}

TEST_CASE("render_svg with a log y axis: decades as ticks, non-positive values skipped") {
  Chart chart{"perplexity", "step", "ppl", {line("ppl", {{0, 900}, {1, 120}, {2, 0}, {3, -5}, {4, 8.5}})}, true};
  const std::string svg = render_svg({chart});
  for (const char* tick : {">1<", ">10<", ">100<", ">1000<"}) {
    CAPTURE(tick);
    CHECK(svg.find(tick) != std::string::npos);
  }
  CHECK(count(svg, "<path ") == 1);
  CHECK(count(svg, " L") == 1);  // 900 -> 120, then a gap, then 8.5 alone
  CHECK(count(svg, "<circle ") == 1);
  CHECK(svg.find("nan") == std::string::npos);

  // Within two decades, 2 and 5 times the powers of ten are ticks too.
  const std::string narrow = render_svg({Chart{"loss", "", "", {line("l", {{0, 1.2}, {1, 7.5}})}, true}});
  for (const char* tick : {">1<", ">2<", ">5<", ">10<"}) {
    CAPTURE(tick);
    CHECK(narrow.find(tick) != std::string::npos);
  }
}

TEST_CASE("render_svg cuts long legend names at a character boundary") {
  const std::string name = "a very long series name that would leave the picture, ünïcödé";
  const std::string svg = render_svg({Chart{"t", "x", "y", {line(name, {{0, 1}, {1, 2}})}, false}});
  CHECK(svg.find(">a very long series n...<") != std::string::npos);
  CHECK(svg.find(name) == std::string::npos);
  const std::string accents = render_svg({Chart{"t", "x", "y", {line("ééééééééééééééééééééé", {{0, 1}})}, false}});
  CHECK(accents.find(">éééééééééé...<") != std::string::npos);
}

TEST_CASE("write_svg names the file when it cannot be written or the request is bad") {
  const TempDir scratch("plot_errors");
  const fs::path& folder = scratch.path();
  const std::string missing = (folder / "no_such_folder" / "plot.svg").string();
  const Chart chart{"t", "x", "y", {line("a", {{0, 1}, {1, 2}})}, false};
  CHECK_THROWS_WITH_AS(write_svg(missing, {chart}), doctest::Contains(("write_svg: '" + missing + "'").c_str()), Error);
  const std::string path = (folder / "plot.svg").string();
  CHECK_THROWS_WITH_AS(write_svg(path, {}), doctest::Contains(("write_svg: '" + path + "': render_svg: no charts").c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(write_svg(path, {chart}, 100, 300),
                       doctest::Contains("size 100 x 300 pixels per panel; expected at least 200 x 120"), Error);
  CHECK_FALSE(fs::exists(path));
}
