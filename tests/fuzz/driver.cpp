// A seeded mutation fuzzer for the targets in this folder, for builds without libFuzzer (any
// compiler; with XGRAD_SANITIZE, AddressSanitizer and UBSan catch what the inputs break). It
// starts from seed files, stacks random mutations on them (bit flips, interesting bytes and
// numbers, dictionary tokens, inserted, deleted, repeated and spliced ranges), and keeps every
// mutant that gave a new outcome (accepted, or an error message not seen before) as a seed.
//
//   fuzz_safetensors --seconds 60 --seed 7 --dict safetensors.dict seeds/ file.safetensors
//   fuzz_safetensors --replay crash-file              (runs one input, e.g. a finding)
//
// Deterministic for a seed and a number of runs (--runs); --seconds bounds it in time. On a
// crash the input is written to ./fuzz-crash-<target>-<hash>.bin first.
#include "fuzz.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <cctype>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <xgrad/core/error.hpp>

namespace {

using Bytes = std::vector<std::uint8_t>;

// --- the input being run, saved if it crashes --------------------------------------------------

const Bytes* current = nullptr;
char crash_path[512] = "fuzz-crash.bin";

extern "C" void save_current_input() {
  if (current == nullptr) return;
  const int fd = ::open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  const ssize_t written = ::write(fd, current->data(), current->size());
  static_cast<void>(written);
  ::close(fd);
  const char note[] = "\nfuzz: the input that crashed is in ";
  static_cast<void>(::write(2, note, sizeof(note) - 1));
  static_cast<void>(::write(2, crash_path, std::strlen(crash_path)));
  static_cast<void>(::write(2, "\n", 1));
  current = nullptr;
}

extern "C" void on_fatal_signal(int signal) {
  save_current_input();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

void on_terminate() {  // an exception other than xgrad::Error left the target
  std::fprintf(stderr, "fuzz: the target let an exception other than xgrad::Error escape\n");
  if (auto error = std::current_exception()) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz: %s\n", xgrad::printable(e.what()).c_str());
    } catch (...) {
    }
  }
  save_current_input();
  std::abort();
}

}  // namespace

// AddressSanitizer and UBSan call this (when linked in) before they end the process.
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace {

// --- mutations ---------------------------------------------------------------------------------

const std::uint8_t kInterestingBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, '"', '\\', '{', '}', '[', ']',
                                         ',',  ':',  '\t', '\n', '\r', '0',  '9',  '-',  '.', 'e', 0xc3, 0xe2};
const char* const kInterestingNumbers[] = {"0",          "-1",         "1",   "255",   "65536",   "2147483648",
                                           "4294967296", "-2147483649", "1e309", "-0",   "NaN",     "0.5",
                                           "18446744073709551615",      "18446744073709551616", "9223372036854775807",
                                           "1e-320",     "99999999999999999999"};
const std::uint64_t kInterestingWords[] = {0, 1, 7, 8, 0x7fffffff, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
                                           0xffffffffffffffffull, 100000000, 100000001};

class Mutator {
 public:
  Mutator(std::uint64_t seed, std::vector<Bytes> dictionary) : random_(seed), dictionary_(std::move(dictionary)) {}

  std::size_t below(std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(random_); }

  /// One to eight stacked mutations of `input`; `other` is a second seed for splicing.
  Bytes mutate(Bytes input, const Bytes& other) {
    const std::size_t count = 1 + below(8);
    for (std::size_t i = 0; i < count; ++i) once(input, other);
    if (input.size() > kMaxBytes) input.resize(kMaxBytes);
    return input;
  }

 private:
  static constexpr std::size_t kMaxBytes = 1 << 20;

  void once(Bytes& b, const Bytes& other) {
    switch (below(12)) {
      case 0:  // flip a bit
        if (!b.empty()) b[below(b.size())] ^= static_cast<std::uint8_t>(1u << below(8));
        break;
      case 1:  // a random byte
        if (!b.empty()) b[below(b.size())] = static_cast<std::uint8_t>(below(256));
        break;
      case 2:  // an interesting byte
        if (!b.empty()) b[below(b.size())] = kInterestingBytes[below(sizeof(kInterestingBytes))];
        break;
      case 3: {  // delete a range
        if (b.empty()) break;
        const std::size_t at = below(b.size()), n = 1 + below(std::min<std::size_t>(b.size() - at, 64));
        b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n));
        break;
      }
      case 4: {  // insert random bytes
        const std::size_t at = below(b.size() + 1), n = 1 + below(16);
        Bytes noise(n);
        for (auto& x : noise) x = static_cast<std::uint8_t>(below(256));
        b.insert(b.begin() + static_cast<long>(at), noise.begin(), noise.end());
        break;
      }
      case 5: {  // repeat a range
        if (b.empty()) break;
        const std::size_t at = below(b.size()), n = 1 + below(std::min<std::size_t>(b.size() - at, 256));
        const Bytes piece(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n));
        const std::size_t times = 1 + below(4);
        for (std::size_t t = 0; t < times; ++t) b.insert(b.begin() + static_cast<long>(at), piece.begin(), piece.end());
        break;
      }
      case 6:  // truncate
        if (!b.empty()) b.resize(below(b.size()));
        break;
      case 7: {  // splice in a piece of the other seed
        if (other.empty()) break;
        const std::size_t from = below(other.size()), n = 1 + below(std::min<std::size_t>(other.size() - from, 512));
        const std::size_t at = below(b.size() + 1);
        b.insert(b.begin() + static_cast<long>(at), other.begin() + static_cast<long>(from),
                 other.begin() + static_cast<long>(from + n));
        break;
      }
      case 8: {  // replace a run of digits by an interesting number
        std::vector<std::size_t> starts;
        for (std::size_t i = 0; i < b.size(); ++i) {
          if (std::isdigit(b[i]) && (i == 0 || !std::isdigit(b[i - 1]))) starts.push_back(i);
        }
        if (starts.empty()) break;
        const std::size_t at = starts[below(starts.size())];
        std::size_t end = at;
        while (end < b.size() && std::isdigit(b[end])) ++end;
        const std::string number = kInterestingNumbers[below(std::size(kInterestingNumbers))];
        b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(end));
        b.insert(b.begin() + static_cast<long>(at), number.begin(), number.end());
        break;
      }
      case 9: {  // a dictionary token, inserted or written over
        if (dictionary_.empty()) break;
        const Bytes& token = dictionary_[below(dictionary_.size())];
        const std::size_t at = below(b.size() + 1);
        if (below(2) == 0 || at + token.size() > b.size()) {
          b.insert(b.begin() + static_cast<long>(at), token.begin(), token.end());
        } else {
          std::copy(token.begin(), token.end(), b.begin() + static_cast<long>(at));
        }
        break;
      }
      case 10: {  // an interesting little-endian 64-bit word (a length or an offset)
        if (b.size() < 8) break;
        const std::size_t at = below(2) == 0 ? 0 : below(b.size() - 7);
        const std::uint64_t word = kInterestingWords[below(std::size(kInterestingWords))] + below(3) - 1;
        std::memcpy(b.data() + at, &word, 8);
        break;
      }
      default: {  // swap two bytes
        if (b.size() < 2) break;
        std::swap(b[below(b.size())], b[below(b.size())]);
        break;
      }
    }
  }

  std::mt19937_64 random_;
  std::vector<Bytes> dictionary_;
};

// --- files ---------------------------------------------------------------------------------------

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read '%s'\n", path.c_str());
    std::exit(2);
  }
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// libFuzzer's dictionary format: one token per line, `name="value"` or `"value"`, with \\, \"
/// and \xNN escapes; # starts a comment.
std::vector<Bytes> read_dictionary(const std::string& path) {
  std::vector<Bytes> tokens;
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read the dictionary '%s'\n", path.c_str());
    std::exit(2);
  }
  for (std::string line; std::getline(in, line);) {
    const std::size_t open = line.find('"'), close = line.rfind('"');
    if (line.empty() || line[0] == '#' || open == std::string::npos || close <= open) continue;
    Bytes token;
    for (std::size_t i = open + 1; i < close; ++i) {
      if (line[i] == '\\' && i + 1 < close && line[i + 1] == 'x' && i + 3 < close) {
        token.push_back(static_cast<std::uint8_t>(std::stoi(line.substr(i + 2, 2), nullptr, 16)));
        i += 3;
      } else if (line[i] == '\\' && i + 1 < close) {
        token.push_back(static_cast<std::uint8_t>(line[++i]));
      } else {
        token.push_back(static_cast<std::uint8_t>(line[i]));
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

std::uint64_t hash_of(const Bytes& b) {
  std::uint64_t h = 1469598103934665603ull;
  for (const std::uint8_t x : b) h = (h ^ x) * 1099511628211ull;
  return h;
}

/// Runs the target on one input; returns its outcome (see xgrad::fuzz::outcome).
std::string run_one(const Bytes& input, const std::string& target) {
  current = &input;
  std::snprintf(crash_path, sizeof(crash_path), "fuzz-crash-%s-%016llx.bin", target.c_str(),
                static_cast<unsigned long long>(hash_of(input)));
  const std::uint8_t* data = input.empty() ? nullptr : input.data();
  LLVMFuzzerTestOneInput(data, input.size());
  current = nullptr;
  return xgrad::fuzz::take_outcome();
}

/// Mutants kept as seeds, at most.
constexpr std::size_t kMaxSeeds = 4096;

int usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--seconds S] [--runs N] [--seed K] [--dict FILE] SEED_FILE_OR_FOLDER...\n"
               "       %s --replay FILE...\n",
               program, program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  std::uint64_t runs = 0, seed = 1;
  bool replay = false;
  std::vector<std::string> paths;
  std::vector<Bytes> dictionary;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--seconds" && has_value) seconds = std::atof(argv[++i]);
    else if (arg == "--runs" && has_value) runs = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--seed" && has_value) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--dict" && has_value) dictionary = read_dictionary(argv[++i]);
    else if (arg == "--replay") replay = true;
    else if (arg.rfind("--", 0) == 0) return usage(argv[0]);
    else paths.push_back(arg);
  }
  const std::string target = std::filesystem::path(argv[0]).filename().string();
  std::set_terminate(on_terminate);
  for (const int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(signal, on_fatal_signal);
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_current_input);

  std::vector<Bytes> seeds;
  for (const std::string& path : paths) {
    if (std::filesystem::is_directory(path)) {
      std::vector<std::string> files;
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path().string());
      }
      std::sort(files.begin(), files.end());  // the same order on every machine
      for (const std::string& file : files) seeds.push_back(read_file(file));
    } else {
      seeds.push_back(read_file(path));
    }
  }
  if (replay) {
    for (const Bytes& input : seeds) run_one(input, target);
    std::printf("%s: %zu inputs replayed, no crash\n", target.c_str(), seeds.size());
    return 0;
  }
  if (seeds.empty()) seeds.push_back({});

  Mutator mutator(seed, dictionary);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  std::uint64_t executions = 0;
  std::set<std::string> outcomes;
  for (const Bytes& input : seeds) outcomes.insert(run_one(input, target)), ++executions;
  const std::size_t initial_seeds = seeds.size();
  std::size_t next_report = 1;
  for (;;) {
    if (runs > 0 && executions >= runs) break;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (runs == 0 && elapsed >= seconds) break;
    if (elapsed >= static_cast<double>(next_report) * 10.0) {
      std::printf("%s: %llu executions in %.0f s\n", target.c_str(), static_cast<unsigned long long>(executions),
                  elapsed);
      std::fflush(stdout);
      ++next_report;
    }
    const Bytes& base = seeds[mutator.below(seeds.size())];
    const Bytes& other = seeds[mutator.below(seeds.size())];
    Bytes mutant = mutator.mutate(base, other);
    if (outcomes.insert(run_one(mutant, target)).second && seeds.size() < kMaxSeeds) seeds.push_back(std::move(mutant));
    ++executions;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%s: %llu executions in %.1f s (%.0f/s) from %zu seeds, %zu outcomes, random seed %llu: no crash\n",
              target.c_str(), static_cast<unsigned long long>(executions), elapsed,
              double(executions) / std::max(elapsed, 1e-9), initial_seeds, outcomes.size(),
              static_cast<unsigned long long>(seed));
  return 0;
}
