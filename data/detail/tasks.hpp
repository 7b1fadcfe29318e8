// The parts of make_task(), exposed for the tests: each task's example drawer and the one
// routine that turns a drawer into disjoint splits.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <xgrad/core/generator.hpp>
#include <xgrad/data/tasks.hpp>

namespace xgrad::data::detail {

/// Letter strings of reverse, sort and copy: lengths uniform in [min_letters, max_letters],
/// letters uniform in 'a'..'z'.
constexpr int min_letters = 4;
constexpr int max_letters = 12;
/// Operands of add: a digit count uniform in 1..max_add_digits, then a number uniform among
/// those with that many digits (no leading zeros; 0 is the one-digit zero).
constexpr int max_add_digits = 5;

/// Numbers of the numbers task: 0..max_number, written in English words.
constexpr std::uint64_t max_number = 999'999;
/// "three hundred forty-two thousand five hundred six" for 342506 (no "and", hyphenated tens).
std::string number_words(std::uint64_t n);

Example draw_reverse_example(Generator& generator);
Example draw_sort_example(Generator& generator);
Example draw_copy_example(Generator& generator);
Example draw_add_example(Generator& generator);
Example draw_numbers_example(Generator& generator);
/// How many distinct sources each can produce.
std::uint64_t letters_source_capacity();
std::uint64_t add_source_capacity();
std::uint64_t numbers_source_capacity();

using ExampleDrawer = std::function<Example(Generator&)>;

/// Draws examples from Generator(seed), keeps the first example of each source, and fills test,
/// then valid, then train (so that a seed's test split does not depend on the train size).
/// Throws xgrad::Error naming `task` when more examples are asked than `capacity` (an upper
/// bound on the distinct sources) or when 10 draws per example plus 1000 did not find enough.
Splits draw_disjoint_splits(const std::string& task, const ExampleDrawer& draw, std::uint64_t capacity,
                            std::uint64_t seed, const TaskSizes& sizes);

}  // namespace xgrad::data::detail
