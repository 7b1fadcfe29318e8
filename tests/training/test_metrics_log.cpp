// training::MetricsLog: one JSON line per call, flushed; a resume keeps the lines up to its step
// and drops later and torn ones; curves drawn from what was kept.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/training/metrics_log.hpp>

#include "temp_dir.hpp"

using namespace xgrad;

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("MetricsLog writes one whole JSON line per call, with its kind and step") {
  const TempDir scratch("metrics_log");
  training::MetricsLog log(scratch.file("metrics.jsonl"));
  log.start();
  log.log("train", 1, {{"loss", 2.5}, {"tokens", std::int64_t{2000}}});
  log.log("valid", 1, {{"bleu", 12.0}, {"note", std::string("a \"quoted\" word")}, {"bad", std::nan("")}});
  const std::vector<std::string> lines = lines_of(log.path());  // on disk at once: flushed
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == R"({"kind":"train","loss":2.5,"step":1,"tokens":2000})");
  const nlohmann::json valid = nlohmann::json::parse(lines[1]);
  CHECK(valid.at("note") == "a \"quoted\" word");
  CHECK(valid.at("bad").is_null());
  CHECK(log.series("train", "loss") == std::vector<std::pair<double, double>>{{1.0, 2.5}});
  CHECK(log.series("valid", "loss").empty());
}

TEST_CASE("MetricsLog::resume_at keeps the steps up to the checkpoint and drops later and torn lines") {
  const TempDir scratch("metrics_log_resume");
  training::MetricsLog log(scratch.file("metrics.jsonl"));
  log.start();
  for (std::int64_t step = 1; step <= 6; ++step) log.log("train", step, {{"loss", 1.0 / double(step)}});
  log.log("valid", 4, {{"loss", 0.3}});
  { std::ofstream(log.path(), std::ios::app) << R"({"kind":"train","loss":0.1,"st)"; }  // killed mid-write

  training::MetricsLog resumed(log.path());
  CHECK(resumed.resume_at(4) == 3);  // steps 5 and 6, and the torn line
  const std::vector<std::string> lines = lines_of(log.path());
  REQUIRE(lines.size() == 5);
  CHECK(lines.back() == R"({"kind":"valid","loss":0.3,"step":4})");
  CHECK(resumed.series("train", "loss").size() == 4);
  resumed.log("train", 5, {{"loss", 0.2}});  // the run goes on: step 5 once
  CHECK(lines_of(log.path()).size() == 6);
  CHECK(resumed.series("train", "loss").back() == std::pair<double, double>{5.0, 0.2});
}

TEST_CASE("draw_curves draws the log's series into an SVG file, and names a file it cannot write") {
  const TempDir scratch("metrics_log_curves");
  training::MetricsLog log(scratch.file("metrics.jsonl"));
  log.start();
  for (std::int64_t step = 1; step <= 1000; ++step) log.log("train", step, {{"loss", 3.0 / std::sqrt(double(step))}});
  log.log("valid", 1000, {{"exact_match", 0.5}});
  const std::string svg = scratch.file("curves.svg");
  training::draw_curves(log, svg,
                        {{"Loss", "nats/token", {{"train loss", "train", "loss"}}, true},
                         {"Validation", "%", {{"exact match %", "valid", "exact_match", 100.0}}, false}});
  std::stringstream text;
  text << std::ifstream(svg).rdbuf();
  CHECK(text.str().find("train loss") != std::string::npos);
  CHECK(text.str().find("exact match %") != std::string::npos);
  CHECK_THROWS_AS(training::draw_curves(log, scratch.file("missing/dir/curves.svg"), {{"Loss", "", {}, false}}), Error);
}

TEST_CASE("MetricsLog keeps a bounded summary of a long run: means of consecutive lines, in order") {
  const TempDir scratch("metrics_log");
  training::MetricsLog log(scratch.file("metrics.jsonl"));
  log.start();
  const int steps = 10000;
  for (int step = 1; step <= steps; ++step) log.log("train", step, {{"loss", 2.0 * step}});
  CHECK(lines_of(log.path()).size() == steps);  // the file keeps every line
  const auto points = log.series("train", "loss");
  CHECK(points.size() <= 2048);
  CHECK(points.size() >= 1024);
  // Each point is the mean of a window of consecutive lines: value = 2 * step still holds, the
  // windows follow each other, and together they cover steps 1..10000.
  for (std::size_t i = 0; i < points.size(); ++i) {
    CAPTURE(i);
    CHECK(points[i].second == doctest::Approx(2.0 * points[i].first));
    if (i > 0) CHECK(points[i].first > points[i - 1].first);
  }
  CHECK(points.front().first < 10);
  CHECK(points.back().first > steps - 10);
  CHECK(log.latest_is("train", steps));
  CHECK_FALSE(log.latest_is("train", steps - 1));
  CHECK_FALSE(log.latest_is("valid", steps));

  // A resume rebuilds the same summary from the file.
  training::MetricsLog resumed(log.path());
  resumed.resume_at(steps);
  CHECK(resumed.series("train", "loss") == points);
}
