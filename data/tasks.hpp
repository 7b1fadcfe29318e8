// Built-in sequence-to-sequence tasks, generated from a seed: each gives train, valid and test
// splits whose source strings are disjoint, so a score on test is a score on unseen inputs.
//
//   dates    a date of 1950..2049 written in one of 18 human ways -> ISO "YYYY-MM-DD"
//            ("3rd of March 2021", "Wed, Mar 3 '21", "03/03/2021",
//             "March the third, twenty twenty-one" -> "2021-03-03"); slashes are
//            month/day/year, dots day.month.year, two-digit years '50..'49 -> 1950..2049
//   reverse  a string of 4..12 lower-case letters -> the same letters reversed
//   sort     a string of 4..12 lower-case letters -> its letters in ascending order
//   copy     a string of 4..12 lower-case letters -> itself
//   add      two numbers of 1..5 digits: "123+4567" -> "4690"
//   numbers  a number below a million in English words -> its digits
//            ("three hundred forty-two thousand five hundred six" -> "342506")
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xgrad::data {

/// One parallel sentence pair.
struct Example {
  std::string source;
  std::string target;
};

/// Disjoint train / validation / test splits of one corpus.
struct Splits {
  std::vector<Example> train;
  std::vector<Example> valid;
  std::vector<Example> test;
};

/// Sizes of the splits a task generates.
struct TaskSizes {
  std::size_t train = 20000;
  std::size_t valid = 500;
  std::size_t test = 1000;
};

/// The names make_task() accepts: "dates", "reverse", "sort", "copy", "add", "numbers".
const std::vector<std::string>& task_names();

/// Generates a task's splits from `seed`: the same seed gives the same splits on every machine
/// (xgrad::Generator, no std distributions). No source string occurs twice. The test split is
/// drawn first, then valid, then train: a seed's test split does not depend on the other sizes,
/// nor its valid split on the train size. Throws xgrad::Error naming the task and the valid names
/// when `name` is unknown, or when the task cannot produce that many distinct examples.
Splits make_task(const std::string& name, std::uint64_t seed, const TaskSizes& sizes = {});

}  // namespace xgrad::data
