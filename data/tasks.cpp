// The task registry and the routine that turns a task's example drawer into disjoint splits.
#include <xgrad/data/tasks.hpp>

#include <cstdint>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <xgrad/core/error.hpp>
#include <xgrad/data/detail/date_formats.hpp>
#include <xgrad/data/detail/tasks.hpp>

namespace xgrad::data {

namespace {

struct TaskEntry {
  const char* name;
  Example (*draw)(Generator&);
  std::uint64_t (*capacity)();
};

const std::vector<TaskEntry>& task_entries() {
  static const std::vector<TaskEntry> entries = {
      {"dates", detail::draw_date_example, detail::date_source_capacity},
      {"reverse", detail::draw_reverse_example, detail::letters_source_capacity},
      {"sort", detail::draw_sort_example, detail::letters_source_capacity},
      {"copy", detail::draw_copy_example, detail::letters_source_capacity},
      {"add", detail::draw_add_example, detail::add_source_capacity},
      {"numbers", detail::draw_numbers_example, detail::numbers_source_capacity},
  };
  return entries;
}

}  // namespace

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const TaskEntry& entry : task_entries()) out.emplace_back(entry.name);
    return out;
  }();
  return names;
}

Splits make_task(const std::string& name, std::uint64_t seed, const TaskSizes& sizes) {
  for (const TaskEntry& entry : task_entries()) {
    if (name == entry.name) return detail::draw_disjoint_splits(name, entry.draw, entry.capacity(), seed, sizes);
  }
  throw Error(fmt::format("make_task: unknown task '{}'; the tasks are {}", name, fmt::join(task_names(), ", ")));
}

namespace detail {

Splits draw_disjoint_splits(const std::string& task, const ExampleDrawer& draw, std::uint64_t capacity,
                            std::uint64_t seed, const TaskSizes& sizes) {
  const std::string asked = fmt::format("train {} + valid {} + test {}", sizes.train, sizes.valid, sizes.test);
  const std::uint64_t most = UINT64_MAX;
  const bool overflow = sizes.valid > most - sizes.train || sizes.test > most - sizes.train - sizes.valid;
  const std::uint64_t total = std::uint64_t{sizes.train} + sizes.valid + sizes.test;
  if (overflow) throw Error(fmt::format("make_task: task '{}': the split sizes ({}) overflow", task, asked));
  if (total > capacity) {
    throw Error(fmt::format("make_task: task '{}' has at most {} distinct sources, fewer than the {} examples asked ({})",
                            task, capacity, total, asked));
  }
  // Each new source costs one draw while the space is far from exhausted; a budget keeps a
  // request near the capacity from drawing for ever.
  const std::uint64_t budget = 10 * total + 1000;
  Generator generator(seed);
  std::unordered_set<std::string> seen;
  seen.reserve(total);
  std::uint64_t draws = 0;
  auto fill = [&](std::vector<Example>& split, std::size_t size) {
    split.reserve(size);
    while (split.size() < size) {
      if (draws == budget) {
        throw Error(fmt::format("make_task: task '{}' found only {} distinct sources in {} draws, fewer than the {} "
                                "examples asked ({})",
                                task, seen.size(), draws, total, asked));
      }
      ++draws;
      Example example = draw(generator);
      if (seen.insert(example.source).second) split.push_back(std::move(example));
    }
  };
  Splits splits;
  fill(splits.test, sizes.test);
  fill(splits.valid, sizes.valid);
  fill(splits.train, sizes.train);
  return splits;
}

}  // namespace detail

}  // namespace xgrad::data
