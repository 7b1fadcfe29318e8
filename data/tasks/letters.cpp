// The letter-string tasks: reverse, sort and copy a random lower-case word.
#include <xgrad/data/detail/tasks.hpp>

#include <algorithm>

namespace xgrad::data::detail {

namespace {

std::string draw_letters(Generator& generator) {
  const auto length = min_letters + static_cast<int>(generator.integer(max_letters - min_letters + 1));
  std::string letters(static_cast<std::size_t>(length), 'a');
  for (char& c : letters) c = static_cast<char>('a' + generator.integer(26));
  return letters;
}

}  // namespace

Example draw_reverse_example(Generator& generator) {
  std::string source = draw_letters(generator);
  return {source, std::string(source.rbegin(), source.rend())};
}

Example draw_sort_example(Generator& generator) {
  std::string source = draw_letters(generator);
  std::string target = source;
  std::sort(target.begin(), target.end());
  return {source, target};
}

Example draw_copy_example(Generator& generator) {
  std::string source = draw_letters(generator);
  return {source, source};
}

std::uint64_t letters_source_capacity() {
  std::uint64_t total = 0, words = 1;
  for (int length = 1; length <= max_letters; ++length) {
    words *= 26;
    if (length >= min_letters) total += words;
  }
  return total;
}

}  // namespace xgrad::data::detail
