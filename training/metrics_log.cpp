// metrics.jsonl: appended and flushed line by line, cut back to the resumed step on resume.
#include <xgrad/training/metrics_log.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/atomic_file.hpp>
#include <xgrad/utils/plot.hpp>

namespace xgrad::training {

namespace {

using Json = nlohmann::json;

/// Means over windows of the points, so that at most about `most` remain.
std::vector<std::pair<double, double>> thin(const std::vector<std::pair<double, double>>& points, std::size_t most) {
  const std::size_t window = std::max<std::size_t>(1, points.size() / most);
  std::vector<std::pair<double, double>> out;
  for (std::size_t begin = 0; begin < points.size(); begin += window) {
    const std::size_t end = std::min(points.size(), begin + window);
    double x = 0, y = 0;
    for (std::size_t i = begin; i < end; ++i) x += points[i].first, y += points[i].second;
    out.emplace_back(x / double(end - begin), y / double(end - begin));
  }
  return out;
}

}  // namespace

MetricsLog::MetricsLog(std::string path) : path_(std::move(path)) {}

void MetricsLog::Series::add(double step, double value) {
  step_sum += step;
  value_sum += value;
  if (++pending < weight) return;
  points.emplace_back(step_sum / double(weight), value_sum / double(weight));
  step_sum = value_sum = 0;
  pending = 0;
  if (points.size() < 2 * kKept) return;
  // Full: every two neighbours become their mean, and each point stands for twice as many.
  for (std::size_t i = 0; i < kKept; ++i) {
    points[i] = {(points[2 * i].first + points[2 * i + 1].first) / 2,
                 (points[2 * i].second + points[2 * i + 1].second) / 2};
  }
  points.resize(kKept);
  weight *= 2;
}

void MetricsLog::remember(const std::string& kind, std::int64_t step,
                          const std::vector<std::pair<std::string, double>>& numbers) {
  last_step_[kind] = step;
  for (const auto& [name, value] : numbers) series_[{kind, name}].add(double(step), value);
}

void MetricsLog::start() {
  utils::write_file_atomically(path_, "", "MetricsLog");
  series_.clear();
  last_step_.clear();
}

std::size_t MetricsLog::resume_at(std::int64_t step) {
  series_.clear();
  last_step_.clear();
  std::ifstream in(path_);
  std::string text, kept;
  std::size_t dropped = 0;
  while (std::getline(in, text)) {
    if (text.empty()) continue;
    const Json j = Json::parse(text, nullptr, false);
    const bool whole = !j.is_discarded() && j.is_object() && j.contains("kind") && j.at("kind").is_string() &&
                       j.contains("step") && j.at("step").is_number_integer();
    if (!whole || j.at("step").get<std::int64_t>() > step) {
      ++dropped;
      continue;
    }
    std::vector<std::pair<std::string, double>> numbers;
    for (const auto& [name, value] : j.items()) {
      if (value.is_number() && name != "step") numbers.emplace_back(name, value.get<double>());
    }
    remember(j.at("kind").get<std::string>(), j.at("step").get<std::int64_t>(), numbers);
    kept += text + "\n";
  }
  utils::write_file_atomically(path_, kept, "MetricsLog");
  return dropped;
}

bool MetricsLog::latest_is(const std::string& kind, std::int64_t step) const {
  const auto it = last_step_.find(kind);
  return it != last_step_.end() && it->second == step;
}

void MetricsLog::log(const std::string& kind, std::int64_t step, const Metrics& values) {
  Json j = Json::object();
  std::vector<std::pair<std::string, double>> numbers;
  for (const auto& [name, value] : values) {
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
      j[name] = *i;
      numbers.emplace_back(name, double(*i));
    } else if (const auto* d = std::get_if<double>(&value)) {
      j[name] = std::isfinite(*d) ? Json(*d) : Json(nullptr);
      if (std::isfinite(*d)) numbers.emplace_back(name, *d);
    } else {
      j[name] = std::get<std::string>(value);
    }
  }
  j["kind"] = kind;
  j["step"] = step;
  append(j.dump() + "\n");
  remember(kind, step, numbers);
}

void MetricsLog::append(const std::string& text) {
  std::ofstream out(path_, std::ios::app | std::ios::binary);
  out << text;
  out.flush();
  if (!out) throw Error(fmt::format("MetricsLog: cannot append to '{}'", path_));
}

std::vector<std::pair<double, double>> MetricsLog::series(const std::string& kind, const std::string& name) const {
  const auto it = series_.find({kind, name});
  if (it == series_.end()) return {};
  const Series& s = it->second;
  std::vector<std::pair<double, double>> points = s.points;
  if (s.pending > 0) points.emplace_back(s.step_sum / double(s.pending), s.value_sum / double(s.pending));
  return points;
}

void draw_curves(const MetricsLog& log, const std::string& svg_path, const std::vector<CurveChart>& charts) {
  std::vector<utils::Chart> panels;
  for (const CurveChart& chart : charts) {
    utils::Chart panel{chart.title, "step", chart.y_label, {}, chart.log_y};
    for (const Curve& curve : chart.curves) {
      std::vector<std::pair<double, double>> points = thin(log.series(curve.kind, curve.name), 400);
      for (auto& point : points) point.second *= curve.scale;
      panel.series.push_back({curve.label, std::move(points)});
    }
    panels.push_back(std::move(panel));
  }
  utils::write_svg(svg_path, panels);
}

}  // namespace xgrad::training
