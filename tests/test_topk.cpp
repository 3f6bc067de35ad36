#include <algorithm>
#include <cmath>
#include <numeric>

#include "hilo/error.hpp"
#include "hilo/topk.hpp"
#include "hisa/select.hpp"
#include "test_util.hpp"

namespace hilo {
namespace {

// Reference: positions of the k best (score desc by order key, position asc), in that order; NaN never selected.
std::vector<int32_t> reference_topk(const float* s, int64_t n, int64_t k) {
  std::vector<int32_t> idx;
  for (int32_t i = 0; i < n; ++i)
    if (!std::isnan(s[i])) idx.push_back(i);
  n = static_cast<int64_t>(idx.size());
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) {
    return detail::order_key(s[a]) > detail::order_key(s[b]);
  });
  idx.resize(std::min(n, k));
  return idx;
}

// Scores with many ties: a few distinct values, some negative zeros, NaNs and infinities.
std::vector<float> tricky_scores(int64_t n, std::mt19937_64& gen, bool with_nan) {
  std::vector<float> s(n);
  std::uniform_int_distribution<int> pick(0, 9);
  std::normal_distribution<float> dist;
  for (auto& x : s) {
    switch (pick(gen)) {
      case 0: x = 1.5f; break;
      case 1: x = -0.0f; break;
      case 2: x = 0.0f; break;
      case 3: x = with_nan ? std::nanf("") : -INFINITY; break;
      case 4: x = INFINITY; break;
      default: x = dist(gen);
    }
  }
  return s;
}

TEST(TopK, OrderKeyIsMonotone) {
  const float v[] = {-INFINITY, -1e30f, -1.0f, -1e-40f, -0.0f, 0.0f, 1e-40f, 1.0f, 1e30f, INFINITY};
  for (std::size_t i = 1; i < std::size(v); ++i) EXPECT_LT(detail::order_key(v[i - 1]), detail::order_key(v[i]));
  EXPECT_EQ(detail::order_key(std::nanf("")), 0u);
  EXPECT_EQ(detail::key_to_float(detail::order_key(3.25f)), 3.25f);
}

TEST(TopK, KthLargestMatchesSort) {
  std::mt19937_64 gen(test::fresh_seed());
  std::vector<uint32_t> scratch;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t n = 1 + gen() % 3000;
    const int64_t k = 1 + gen() % n;
    std::vector<uint32_t> keys(n);
    const uint32_t range = trial % 3 == 0 ? 5 : 0xFFFFFFFFu;
    for (auto& x : keys) x = static_cast<uint32_t>(gen() % (uint64_t{range} + 1));
    std::vector<uint32_t> sorted = keys;
    std::sort(sorted.rbegin(), sorted.rend());
    const auto kth = detail::kth_largest(keys.data(), n, k, scratch);
    EXPECT_EQ(kth.key, sorted[k - 1]);
    const int64_t above = std::count_if(keys.begin(), keys.end(), [&](uint32_t x) { return x > kth.key; });
    EXPECT_EQ(kth.take_equal, k - above);
  }
}

TEST(TopK, CollectorEqualsReferenceOnStreams) {
  std::mt19937_64 gen(test::fresh_seed());
  for (int trial = 0; trial < 100; ++trial) {
    const int64_t n = 1 + gen() % 20000;
    const int k = 1 + static_cast<int>(gen() % 3000);
    const auto s = tricky_scores(n, gen, true);
    detail::TopKCollector c;
    c.reset(k);
    for (int64_t i = 0; i < n;) {
      const int chunk = 1 + static_cast<int>(gen() % 300);
      const int take = static_cast<int>(std::min<int64_t>(chunk, n - i));
      c.offer(s.data() + i, i, take);
      i += take;
    }
    const int count = c.finish();
    auto want = reference_topk(s.data(), n, k);
    std::sort(want.begin(), want.end());
    ASSERT_EQ(count, static_cast<int>(want.size()));
    EXPECT_TRUE(std::equal(want.begin(), want.end(), c.positions()));  // ascending positions
  }
}

TEST(TopK, RowsSortedUnsortedAndRagged) {
  std::mt19937_64 gen(test::fresh_seed());
  const int64_t rows = 9, len = 5000;
  const int k = 700;
  Tensor scores(DType::F32, {rows, len});
  for (int64_t r = 0; r < rows; ++r) {
    const auto s = tricky_scores(len, gen, r % 2 == 0);
    std::copy(s.begin(), s.end(), scores.ptr<float>() + r * len);
  }
  Tensor starts(DType::I32, {rows}), ends(DType::I32, {rows});
  for (int64_t r = 0; r < rows; ++r) {
    starts.ptr<int32_t>()[r] = static_cast<int32_t>(gen() % 2000);
    ends.ptr<int32_t>()[r] = starts.ptr<int32_t>()[r] + static_cast<int32_t>(gen() % 3000);
  }
  ends.ptr<int32_t>()[0] = starts.ptr<int32_t>()[0] + 10;  // shorter than k: -1 padded
  for (bool sorted : {false, true}) {
    for (bool ragged : {false, true}) {
      Tensor out(DType::I32, {rows, k});
      test::poison(out);
      topk_rows(scores, k, out, ragged ? TensorView(starts) : TensorView(), ragged ? TensorView(ends) : TensorView(),
                {sorted, 2});
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t lo = ragged ? starts.ptr<int32_t>()[r] : 0, hi = ragged ? ends.ptr<int32_t>()[r] : len;
        auto want = reference_topk(scores.ptr<float>() + r * len + lo, hi - lo, k);
        if (!sorted) std::sort(want.begin(), want.end());
        want.resize(k, -1);
        EXPECT_TRUE(std::equal(want.begin(), want.end(), out.ptr<int32_t>() + r * k)) << "row " << r;
      }
    }
  }
}

TEST(TopK, RowsRefuseBadArguments) {
  Tensor scores(DType::F32, {2, 8}), out(DType::I32, {2, 4}), s(DType::I32, {2}), e(DType::I32, {2});
  s.ptr<int32_t>()[0] = 0, s.ptr<int32_t>()[1] = 5;
  e.ptr<int32_t>()[0] = 8, e.ptr<int32_t>()[1] = 4;
  EXPECT_HILO_ERROR(topk_rows(scores, 0, out), "k = 0");
  EXPECT_HILO_ERROR(topk_rows(scores, 3, out), "out has shape [2, 4], expected [2, 3]");
  EXPECT_HILO_ERROR(topk_rows(scores, 4, out, s), "both starts and ends");
  EXPECT_HILO_ERROR(topk_rows(scores, 4, out, s, e), "row 1 has range [5, 4)");
  Tensor wrong(DType::BF16, {2, 8});
  EXPECT_HILO_ERROR(topk_rows(wrong, 4, out), "scores has dtype BF16");
}

}  // namespace
}  // namespace hilo
