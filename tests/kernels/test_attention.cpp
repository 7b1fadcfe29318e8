// attention_forward against a loop in double on the shapes that take each of its paths: a
// decoding step (up to four queries, no statistics kept: every head at once, scores key by key)
// and the (batch, head) blocks; heads that fill no whole vector, head widths with and without a
// tail, masks, padding, the weights returned and dropout; one query over rows gathered by pointer.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include <xgrad/kernels/attention.hpp>
#include <xgrad/kernels/dropout.hpp>

using namespace xgrad::kernels;

namespace {

float value(std::size_t i, std::size_t salt) { return std::sin(0.37f * static_cast<float>(i) + 0.11f * salt); }

struct Expected {
  std::vector<double> out, probs;  // (B, T, H*dv), (B, H, T, S)
};

/// The same attention in double, from the definition: w = softmax(scale q.k + mask) (all masked:
/// zeros), out = sum_s w keep v.
Expected naive(const AttentionShape& d, float scale, const std::vector<float>& q, const std::vector<float>& k,
               const std::vector<float>& v, const std::vector<float>& attn, const std::vector<char>& padding,
               const std::vector<float>& keep) {
  Expected e{std::vector<double>(d.B * d.T * d.v_ld(), 0.0), std::vector<double>(d.B * d.H * d.T * d.S, 0.0)};
  for (std::size_t b = 0; b < d.B; ++b) {
    for (std::size_t h = 0; h < d.H; ++h) {
      for (std::size_t t = 0; t < d.T; ++t) {
        std::vector<double> score(d.S);
        double max = -std::numeric_limits<double>::infinity();
        for (std::size_t s = 0; s < d.S; ++s) {
          double dot = 0;
          for (std::size_t i = 0; i < d.dk; ++i) {
            dot += double(q[(b * d.T + t) * d.q_ld() + h * d.dk + i]) * k[(b * d.S_stored + s) * d.q_ld() + h * d.dk + i];
          }
          score[s] = padding[b * d.S + s] ? -std::numeric_limits<double>::infinity()
                                          : scale * dot + attn[((b * d.H + h) * d.T + t) * d.S + s];
          max = std::max(max, score[s]);
        }
        if (max == -std::numeric_limits<double>::infinity()) continue;  // every key masked: zeros
        double total = 0;
        for (double& x : score) total += (x = std::exp(x - max));
        for (std::size_t s = 0; s < d.S; ++s) {
          const std::size_t i = ((b * d.H + h) * d.T + t) * d.S + s;
          e.probs[i] = score[s] / total;
          for (std::size_t c = 0; c < d.dv; ++c) {
            e.out[(b * d.T + t) * d.v_ld() + h * d.dv + c] +=
                e.probs[i] * keep[i] * v[(b * d.S_stored + s) * d.v_ld() + h * d.dv + c];
          }
        }
      }
    }
  }
  return e;
}

}  // namespace

TEST_CASE("attention_forward: a decoding step and the (batch, head) blocks equal the definition") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const std::size_t T : {1, 2, 3, 4, 5}) {
    for (const std::size_t H : {1, 3, 4, 8, 9}) {
      for (const std::size_t dk : {4, 16, 32}) {
        for (const std::size_t dv : {3, 8, 24, 32, 40}) {
          // none; padding alone (each query by itself, when the heads divide a vector); padding and
          // a mask; those, the weights and dropout
          for (const int extras : {0, 1, 2, 3}) {
            CAPTURE(T);
            CAPTURE(H);
            CAPTURE(dk);
            CAPTURE(dv);
            CAPTURE(extras);
            const std::size_t B = 2, S = 7;
            const AttentionShape d{B, T, S, H, dk, dv, S + 1};  // one key row stored past the S used
            std::vector<float> q(B * T * d.q_ld()), k(B * d.S_stored * d.q_ld()), v(B * d.S_stored * d.v_ld());
            for (std::size_t i = 0; i < q.size(); ++i) q[i] = value(i, 1);
            for (std::size_t i = 0; i < k.size(); ++i) k[i] = value(i, 2);
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = value(i, 3);
            // An additive mask per (batch row, head), (B*H, T, S): query 0 of head 0 of batch row 0
            // has every key masked; batch row 1 has two keys padded.
            std::vector<float> attn(B * H * T * S, 0.f);
            std::vector<char> padding(B * S, 0);
            std::vector<float> keep(B * H * T * S, 1.f);
            AttentionMasks masks;
            AttentionDropout dropout{xgrad::PhiloxStream{7}, 1u << 30, 4.f / 3.f};  // p = 1/4
            if (extras > 0) {
              padding[S + S - 1] = padding[S + S - 3] = 1;
              masks.key_padding = reinterpret_cast<const bool*>(padding.data());
            }
            if (extras > 1) {
              for (std::size_t i = 0; i < attn.size(); ++i) attn[i] = 0.3f * value(i, 4);
              for (std::size_t s = 0; s < S; ++s) attn[s] = -std::numeric_limits<float>::infinity();
              masks.attn = attn.data();
              masks.attn_per_head = true;
            }
            if (extras > 2) {
              dropout_multipliers(dropout.stream, 0, keep.size(), dropout.drop_below, dropout.kept, keep.data());
            }
            const Expected expected = naive(d, 0.3f, q, k, v, attn, padding, keep);
            // The decoding step's path (no statistics) and the blocks' (statistics kept).
            for (const bool step : {true, false}) {
              CAPTURE(step);
              std::vector<float> out(B * T * d.v_ld(), nan), probs(B * H * T * S, nan);
              std::vector<SoftmaxRowStats> stats(B * H * T);
              attention_forward(d, 0.3f, q.data(), k.data(), v.data(), masks, extras > 2 ? &dropout : nullptr,
                                step ? nullptr : stats.data(), extras > 2 ? probs.data() : nullptr, out.data());
              double worst = 0;
              bool nan_seen = false;
              const auto track = [&](double error) {
                nan_seen = nan_seen || std::isnan(error);
                worst = std::max(worst, error);
              };
              for (std::size_t i = 0; i < out.size(); ++i) track(std::fabs(out[i] - expected.out[i]));
              if (extras > 2) {
                for (std::size_t i = 0; i < probs.size(); ++i) track(std::fabs(probs[i] - expected.probs[i]));
              }
              CHECK(!nan_seen);
              CHECK(worst < 1e-5);
            }
          }
        }
      }
    }
  }
}

namespace {

/// gathered_attention_row over S keys against the definition in double; masked(s) nulls key s.
template <class Masked>
void check_gathered_row(std::size_t S, std::size_t H, std::size_t dk, std::size_t dv, Masked masked) {
  CAPTURE(S);
  CAPTURE(H);
  CAPTURE(dk);
  CAPTURE(dv);
  std::vector<std::vector<float>> key_rows(S, std::vector<float>(H * dk)), value_rows(S, std::vector<float>(H * dv));
  std::vector<const float*> keys(S), values(S);
  for (std::size_t s = 0; s < S; ++s) {
    for (std::size_t i = 0; i < H * dk; ++i) key_rows[s][i] = value(s * 1000 + i, 5);
    for (std::size_t i = 0; i < H * dv; ++i) value_rows[s][i] = value(s * 1000 + i, 6);
    keys[s] = masked(s) ? nullptr : key_rows[s].data();
    values[s] = value_rows[s].data();
  }
  std::vector<float> query(H * dk), out(H * dv, std::numeric_limits<float>::quiet_NaN());
  for (std::size_t i = 0; i < query.size(); ++i) query[i] = value(i, 7);
  gathered_attention_row(query.data(), keys.data(), values.data(), S, H, dk, dv, 0.25f, out.data());
  for (std::size_t h = 0; h < H; ++h) {
    std::vector<double> w(S, 0.0);
    double total = 0;
    for (std::size_t s = 0; s < S; ++s) {
      if (!keys[s]) continue;
      double dot = 0;
      for (std::size_t i = 0; i < dk; ++i) dot += double(query[h * dk + i]) * key_rows[s][h * dk + i];
      total += (w[s] = std::exp(0.25 * dot));
    }
    for (std::size_t c = 0; c < dv; ++c) {
      double expected = 0;  // every key masked: 0
      for (std::size_t s = 0; s < S && total > 0; ++s) expected += w[s] / total * value_rows[s][h * dv + c];
      CAPTURE(h);
      CAPTURE(c);
      CHECK(out[h * dv + c] == doctest::Approx(expected).epsilon(1e-5));
    }
  }
}

}  // namespace

TEST_CASE("gathered_attention_row: one query over key and value rows gathered by pointer, masked by null") {
  // Heads that divide a vector with whole-vector widths take every head in one vector; the others
  // (9 heads, a width of 24) the scores key by key, a head per lane.
  for (const std::size_t H : {1u, 2u, 4u, 8u, 16u}) {
    for (const std::size_t dk : {16u, 32u, 64u}) {
      for (const std::size_t dv : {16u, 32u, 128u}) {
        for (const std::size_t S : {1u, 3u, 17u, 40u}) check_gathered_row(S, H, dk, dv, [](std::size_t s) { return s == 2; });
      }
    }
  }
  check_gathered_row(5, 9, 16, 24, [](std::size_t s) { return s == 2; });
  check_gathered_row(0, 4, 32, 128, [](std::size_t) { return false; });  // no keys: zeros
  check_gathered_row(0, 9, 16, 24, [](std::size_t) { return false; });
  check_gathered_row(6, 8, 32, 32, [](std::size_t) { return true; });   // every key masked: zeros
  check_gathered_row(6, 9, 16, 24, [](std::size_t) { return true; });
  check_gathered_row(33, 4, 32, 64, [](std::size_t s) { return s % 3 != 1; });
}
