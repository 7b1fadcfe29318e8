// Batching: the exact tensors of make_batch, and the sampler's promises: every pair once per
// epoch, the token budget, length buckets, per-epoch order from the seed, exact resume by seek,
// the evaluation pass, and every bad-input message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/data/batching.hpp>

using namespace xgrad;
using namespace xgrad::data;

namespace {

using Rows = std::vector<std::size_t>;

/// Pairs of lengths 1..max_length (seeded), ids above the specials.
std::vector<EncodedPair> random_pairs(std::size_t count, std::size_t max_length, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::vector<EncodedPair> data(count);
  for (EncodedPair& pair : data) {
    pair.source.resize(1 + engine() % max_length);
    pair.target.resize(1 + engine() % max_length);
    for (auto& id : pair.source) id = 4 + engine() % 50;
    for (auto& id : pair.target) id = 4 + engine() % 50;
  }
  return data;
}

std::size_t width(const EncodedPair& pair) { return std::max(pair.source.size(), pair.target.size()) + 1; }

/// The rows of the next `count` batches.
std::vector<Rows> take(BatchSampler& sampler, std::size_t count) {
  std::vector<Rows> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(sampler.next().rows);
  return out;
}

/// The rows of all batches, concatenated and sorted.
Rows all_rows(const std::vector<Rows>& batches) {
  Rows rows;
  for (const Rows& batch : batches) rows.insert(rows.end(), batch.begin(), batch.end());
  std::sort(rows.begin(), rows.end());
  return rows;
}

Rows identity(std::size_t n) {
  Rows rows(n);
  for (std::size_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

/// Each batch is what make_batch gives for its rows, and within the budget unless alone.
void check_batch(const Batch& batch, const std::vector<EncodedPair>& data, const BatchSamplerOptions& options) {
  const Batch expected = make_batch(data, batch.rows, options.pad_id, options.bos_id, options.eos_id);
  CHECK(batch.src == expected.src);
  CHECK(batch.tgt_in == expected.tgt_in);
  CHECK(batch.tgt_out == expected.tgt_out);
  const std::size_t R = batch.rows.size();
  const std::size_t widest = std::max(batch.src.shape()[1], batch.tgt_in.shape()[1]);
  CHECK((R == 1 || R * widest <= options.batch_tokens));
}

}  // namespace

TEST_CASE("make_batch: source + EOS, BOS + target, target + EOS, padded, with counts") {
  const std::vector<EncodedPair> data = {
      {{5, 6, 7}, {8}},
      {{9}, {10, 11}},
      {{12, 13}, {14, 15, 16, 17}},
  };
  const Batch batch = make_batch(data, {1, 0}, /*pad*/ 0, /*bos*/ 1, /*eos*/ 2);
  const Indices src = {{9, 2, 0, 0}, {5, 6, 7, 2}};
  const Indices tgt_in = {{1, 10, 11}, {1, 8, 0}};
  const Indices tgt_out = {{10, 11, 2}, {8, 2, 0}};
  CHECK(batch.src == src);
  CHECK(batch.tgt_in == tgt_in);
  CHECK(batch.tgt_out == tgt_out);
  CHECK(batch.rows == Rows{1, 0});
  CHECK(batch.source_tokens == 6);
  CHECK(batch.target_tokens == 5);

  // Other special ids go where the ids above went.
  const Batch other = make_batch(data, {2, 0}, 99, 98, 97);
  const Indices other_src = {{12, 13, 97, 99}, {5, 6, 7, 97}};
  const Indices other_in = {{98, 14, 15, 16, 17}, {98, 8, 99, 99, 99}};
  const Indices other_out = {{14, 15, 16, 17, 97}, {8, 97, 99, 99, 99}};
  CHECK(other.src == other_src);
  CHECK(other.tgt_in == other_in);
  CHECK(other.tgt_out == other_out);
  CHECK(other.source_tokens == 7);
  CHECK(other.target_tokens == 7);
}

TEST_CASE("make_batch: bad rows and empty sides are rejected") {
  const std::vector<EncodedPair> data = {{{5}, {6}}, {{}, {6}}, {{5}, {}}};
  CHECK_THROWS_WITH_AS(make_batch(data, {}, 0, 1, 2), doctest::Contains("make_batch: no rows"), Error);
  CHECK_THROWS_WITH_AS(make_batch(data, {0, 3}, 0, 1, 2),
                       doctest::Contains("make_batch: row index 3 is out of range for 3 pairs"), Error);
  CHECK_THROWS_WITH_AS(make_batch(data, {0, 1}, 0, 1, 2),
                       doctest::Contains("make_batch: pair 1 has an empty source (source length 0, target length 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(make_batch(data, {2}, 0, 1, 2),
                       doctest::Contains("make_batch: pair 2 has an empty target (source length 1, target length 0)"),
                       Error);
}

TEST_CASE("BatchSampler: every pair exactly once per epoch, each batch within the budget") {
  std::vector<EncodedPair> data = random_pairs(300, 40, 1);
  data[17].source.assign(300, 5);  // wider than the budget: a batch of its own
  BatchSamplerOptions options;
  options.batch_tokens = 256;
  options.seed = 3;
  BatchSampler sampler(data, options);
  const std::size_t per_epoch = sampler.batches_in_epoch();
  CHECK(per_epoch > 10);
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    Rows seen;
    bool alone = false;
    for (std::size_t b = 0; b < per_epoch; ++b) {
      const Batch batch = sampler.next();
      CHECK(sampler.epoch() == epoch);
      CHECK(sampler.position() == b + 1);
      check_batch(batch, data, options);
      if (std::find(batch.rows.begin(), batch.rows.end(), 17) != batch.rows.end()) alone = batch.rows.size() == 1;
      seen.insert(seen.end(), batch.rows.begin(), batch.rows.end());
    }
    CHECK(alone);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == identity(data.size()));
    CHECK(sampler.batches_in_epoch() == per_epoch);
  }
}

TEST_CASE("BatchSampler: batches are length buckets: their width ranges do not overlap") {
  const std::vector<EncodedPair> data = random_pairs(400, 50, 2);
  BatchSamplerOptions options;
  options.batch_tokens = 300;
  BatchSampler sampler(data, options);
  std::vector<std::pair<std::size_t, std::size_t>> ranges;  // (narrowest, widest) of each batch
  std::size_t cells = 0, tokens = 0;
  for (const Rows& rows : take(sampler, sampler.batches_in_epoch())) {
    std::size_t narrowest = SIZE_MAX, widest = 0;
    for (const std::size_t r : rows) {
      narrowest = std::min(narrowest, width(data[r]));
      widest = std::max(widest, width(data[r]));
      tokens += width(data[r]);
    }
    ranges.emplace_back(narrowest, widest);
    cells += rows.size() * widest;
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].second <= ranges[i].first);
  CHECK(cells < tokens * 11 / 10);  // little padding
}

TEST_CASE("BatchSampler: the order changes with the epoch and the seed, and only with them") {
  const std::vector<EncodedPair> data = random_pairs(200, 30, 4);
  BatchSamplerOptions options;
  options.batch_tokens = 200;
  options.seed = 11;
  BatchSampler a(data, options), b(data, options);
  const std::size_t n = a.batches_in_epoch();
  const std::vector<Rows> a0 = take(a, n), a1 = take(a, n);
  CHECK(a0 != a1);
  CHECK(take(b, n) == a0);
  CHECK(take(b, n) == a1);

  options.seed = 12;
  BatchSampler c(data, options);
  CHECK(take(c, n) != a0);
}

TEST_CASE("BatchSampler: equal lengths are mixed differently each epoch; no shuffle keeps data order") {
  std::vector<EncodedPair> data(40, EncodedPair{{5, 6}, {7, 8}});  // all of width 3
  BatchSamplerOptions options;
  options.batch_tokens = 12;  // 4 rows per batch
  BatchSampler shuffled(data, options);
  REQUIRE(shuffled.batches_in_epoch() == 10);
  auto sorted_batches = [](std::vector<Rows> batches) {
    for (Rows& rows : batches) std::sort(rows.begin(), rows.end());
    std::sort(batches.begin(), batches.end());
    return batches;
  };
  const std::vector<Rows> e0 = take(shuffled, 10), e1 = take(shuffled, 10);
  CHECK(sorted_batches(e0) != sorted_batches(e1));  // other groups, not just another order

  options.shuffle = false;
  BatchSampler plain(data, options);
  std::vector<Rows> expected;
  for (std::size_t b = 0; b < 10; ++b) expected.push_back({4 * b, 4 * b + 1, 4 * b + 2, 4 * b + 3});
  CHECK(take(plain, 10) == expected);
  CHECK(take(plain, 10) == expected);
}

TEST_CASE("BatchSampler: no shuffle gives the batches shortest first") {
  const std::vector<EncodedPair> data = random_pairs(100, 20, 5);
  BatchSamplerOptions options;
  options.batch_tokens = 64;
  options.shuffle = false;
  BatchSampler sampler(data, options);
  std::size_t previous = 0;
  for (const Rows& rows : take(sampler, sampler.batches_in_epoch())) {
    for (const std::size_t r : rows) {
      CHECK(width(data[r]) >= previous);
      previous = width(data[r]);
    }
  }
}

TEST_CASE("BatchSampler: seek(epoch, position) continues exactly as next() would") {
  const std::vector<EncodedPair> data = random_pairs(150, 25, 6);
  BatchSamplerOptions options;
  options.batch_tokens = 128;
  options.seed = 21;
  BatchSampler original(data, options);
  const std::size_t n = original.batches_in_epoch();
  for (const std::size_t k : {std::size_t(0), std::size_t(3), n - 1, n, n + 5, 2 * n + 1}) {
    INFO("after ", k, " batches");
    BatchSampler walked(data, options);
    take(walked, k);
    BatchSampler resumed(data, options);
    resumed.seek(walked.epoch(), walked.position());
    CHECK(resumed.epoch() == walked.epoch());
    CHECK(resumed.position() == walked.position());
    for (std::size_t i = 0; i < n + 2; ++i) {
      const Batch expected = walked.next(), got = resumed.next();
      REQUIRE(got.rows == expected.rows);
      CHECK(got.src == expected.src);
      CHECK(got.tgt_in == expected.tgt_in);
      CHECK(got.tgt_out == expected.tgt_out);
    }
  }
  // Seeking backwards, and to the end of an epoch (the next batch opens the following one).
  BatchSampler sampler(data, options);
  const std::vector<Rows> epochs = take(sampler, 3 * n);
  sampler.seek(1, 2);
  CHECK(sampler.next().rows == epochs[n + 2]);
  sampler.seek(0, n);
  CHECK(sampler.next().rows == epochs[n]);
  CHECK(sampler.epoch() == 1);
  CHECK(sampler.position() == 1);
  sampler.seek(0, 0);
  CHECK(take(sampler, n) == std::vector<Rows>(epochs.begin(), epochs.begin() + static_cast<std::ptrdiff_t>(n)));
}

TEST_CASE("BatchSampler: seek past the end of an epoch is rejected and changes nothing") {
  const std::vector<EncodedPair> data = random_pairs(50, 10, 7);
  BatchSamplerOptions options;
  options.batch_tokens = 64;
  BatchSampler sampler(data, options);
  const std::size_t n = sampler.batches_in_epoch();
  take(sampler, 2);
  const std::string expected =
      "BatchSampler::seek: position " + std::to_string(n + 1) + " is past the end of epoch 4, which has " +
      std::to_string(n) + " batches";
  CHECK_THROWS_WITH_AS(sampler.seek(4, n + 1), doctest::Contains(expected.c_str()), Error);
  CHECK(sampler.epoch() == 0);
  CHECK(sampler.position() == 2);
}

TEST_CASE("BatchSampler::sequential: every pair once, shortest first, within the budget, seed-free") {
  std::vector<EncodedPair> data = random_pairs(120, 30, 8);
  data[5].target.assign(100, 9);  // wider than the budget
  BatchSamplerOptions options;
  options.batch_tokens = 96;
  options.seed = 1;
  const std::vector<Batch> batches = BatchSampler::sequential(data, options);
  std::vector<Rows> rows;
  std::size_t previous = 0;
  for (const Batch& batch : batches) {
    check_batch(batch, data, options);
    rows.push_back(batch.rows);
    for (const std::size_t r : batch.rows) {
      CHECK(width(data[r]) >= previous);
      previous = width(data[r]);
    }
  }
  CHECK(all_rows(rows) == identity(data.size()));
  CHECK(batches.back().rows == Rows{5});

  options.seed = 2;
  const std::vector<Batch> again = BatchSampler::sequential(data, options);
  REQUIRE(again.size() == batches.size());
  for (std::size_t i = 0; i < again.size(); ++i) CHECK(again[i].rows == batches[i].rows);

  // Equal widths keep the data order.
  const std::vector<EncodedPair> same(7, EncodedPair{{4}, {5}});
  options.batch_tokens = 6;  // 3 rows of width 2
  const std::vector<Batch> plain = BatchSampler::sequential(same, options);
  REQUIRE(plain.size() == 3);
  CHECK(plain[0].rows == Rows{0, 1, 2});
  CHECK(plain[1].rows == Rows{3, 4, 5});
  CHECK(plain[2].rows == Rows{6});
}

TEST_CASE("BatchSampler: bad data and options are rejected") {
  const std::vector<EncodedPair> empty;
  const std::vector<EncodedPair> fine = {{{4}, {5}}};
  const std::vector<EncodedPair> no_source = {{{4}, {5}}, {{4}, {5}}, {{}, {5}}};
  const std::vector<EncodedPair> no_target = {{{4}, {}}};
  BatchSamplerOptions options;
  CHECK_THROWS_WITH_AS(BatchSampler(empty, options), doctest::Contains("BatchSampler: no pairs to batch"), Error);
  CHECK_THROWS_WITH_AS(BatchSampler::sequential(empty, options),
                       doctest::Contains("BatchSampler::sequential: no pairs to batch"), Error);
  CHECK_THROWS_WITH_AS(BatchSampler(no_source, options),
                       doctest::Contains("BatchSampler: pair 2 has an empty source"), Error);
  CHECK_THROWS_WITH_AS(BatchSampler::sequential(no_target, options),
                       doctest::Contains("BatchSampler::sequential: pair 0 has an empty target"), Error);
  options.batch_tokens = 0;
  CHECK_THROWS_WITH_AS(BatchSampler(fine, options),
                       doctest::Contains("BatchSampler: batch_tokens is 0, expected at least 1"), Error);
  CHECK_THROWS_WITH_AS(BatchSampler::sequential(fine, options),
                       doctest::Contains("BatchSampler::sequential: batch_tokens is 0"), Error);
}

TEST_CASE("BatchSampler sharded over 3 ranks: the ranks take turns in one sequence, every pair once per epoch") {
  const std::vector<EncodedPair> data = random_pairs(200, 30, 4);
  BatchSamplerOptions options;
  options.batch_tokens = 200;
  options.seed = 9;
  BatchSampler whole(data, options);
  const std::size_t per_epoch = whole.batches_in_epoch();
  const std::vector<Rows> sequence = take(whole, 3 * per_epoch + 3);  // three epochs and a step, one process
  std::vector<BatchSampler> ranks;
  for (std::size_t r = 0; r < 3; ++r) {
    BatchSamplerOptions shard = options;
    shard.rank = r;
    shard.world_size = 3;
    ranks.emplace_back(data, shard);
  }
  // Step s: rank r takes batch 3 s + r of the sequence; all ranks agree on the position.
  for (std::size_t s = 0; s < per_epoch; ++s) {
    for (std::size_t r = 0; r < 3; ++r) {
      CHECK(ranks[r].next().rows == sequence[3 * s + r]);
      CHECK(ranks[r].position() == ranks[0].position());
      CHECK(ranks[r].epoch() == ranks[0].epoch());
    }
  }
  // The first epoch's batches went to exactly one rank each: every pair seen once.
  Rows first_epoch;
  for (std::size_t b = 0; b < per_epoch; ++b) first_epoch.insert(first_epoch.end(), sequence[b].begin(), sequence[b].end());
  std::sort(first_epoch.begin(), first_epoch.end());
  CHECK(first_epoch == identity(data.size()));
  // A rank resumed from the shared position continues its turn.
  BatchSamplerOptions shard = options;
  shard.rank = 2;
  shard.world_size = 3;
  BatchSampler resumed(data, shard);
  resumed.seek(ranks[0].epoch(), ranks[0].position());
  CHECK(resumed.next().rows == sequence[3 * per_epoch + 2]);
  shard.rank = 3;
  CHECK_THROWS_WITH_AS(BatchSampler(data, shard), doctest::Contains("rank 3 of a world of 3"), Error);
}
