// Standalone top-k over rows of scores, built on the radix select of select.hpp.
#include <vector>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "hilo/topk.hpp"
#include "select.hpp"

namespace hilo {

void topk_rows(const TensorView& scores, int k, const TensorView& out, const TensorView& starts,
               const TensorView& ends, const TopKOptions& opt) {
  constexpr std::string_view where = "topk_rows";
  HILO_CHECK(k >= 1, "{}: k = {} must be positive", where, k);
  HILO_CHECK(opt.threads >= 0, "{}: threads = {} must be >= 0 (0 = all)", where, opt.threads);
  expect_host_contiguous(scores, where, "scores");
  expect_dtype(scores, where, "scores", {DType::F32});
  expect_ndim(scores, where, "scores", 2);
  const int64_t rows = scores.size(0), len = scores.size(1);
  expect_host_contiguous(out, where, "out");
  expect_dtype(out, where, "out", {DType::I32});
  expect_shape(out, where, "out", {rows, k});
  HILO_CHECK(starts.empty() == ends.empty(), "{}: give both starts and ends, or neither", where);
  const int32_t* s = nullptr;
  const int32_t* e = nullptr;
  if (!starts.empty()) {
    for (const auto* t : {&starts, &ends}) {
      const char* name = t == &starts ? "starts" : "ends";
      expect_host_contiguous(*t, where, name);
      expect_dtype(*t, where, name, {DType::I32});
      expect_shape(*t, where, name, {rows});
    }
    s = static_cast<const int32_t*>(starts.data());
    e = static_cast<const int32_t*>(ends.data());
    for (int64_t r = 0; r < rows; ++r)
      HILO_CHECK(0 <= s[r] && s[r] <= e[r] && e[r] <= len, "{}: row {} has range [{}, {}) outside [0, {}]", where, r,
                 s[r], e[r], len);
  }
  const auto* in = static_cast<const float*>(scores.data());
  auto* dst = static_cast<int32_t*>(out.data());

  parallel_for(rows, opt.threads, [&](int64_t r) {
    thread_local std::vector<uint32_t> scratch, keys;
    thread_local std::vector<int32_t> pos;
    const int64_t lo = s ? s[r] : 0, hi = e ? e[r] : len;
    const float* row = in + r * len + lo;
    const int64_t n = hi - lo;
    int32_t* o = dst + r * k;
    int64_t written = 0;
    int64_t candidates = 0;  // NaN (key 0) is never selected
    for (int64_t i = 0; i < n; ++i) candidates += detail::order_key(row[i]) != 0;
    if (candidates > 0) {
      const int64_t take = std::min<int64_t>(k, candidates);
      const detail::KthKey kth = detail::kth_largest(row, n, take, scratch);
      // Branch-free emission (which elements pass is data dependent): write every candidate, advance on a take.
      keys.resize(take + 1);
      pos.resize(take + 1);
      int64_t equal_taken = 0;
      for (int64_t i = 0; i < n && written < take; ++i) {
        const uint32_t key = detail::order_key(row[i]);
        const bool equal = key == kth.key && key != 0;
        const bool pass = key > kth.key || (equal && equal_taken < kth.take_equal);
        keys[written] = key;
        pos[written] = static_cast<int32_t>(i);
        written += pass;
        equal_taken += pass & equal;
      }
      if (opt.sorted) detail::sort_by_score(keys.data(), pos.data(), static_cast<int>(written));
      std::copy(pos.begin(), pos.begin() + written, o);
    }
    std::fill(o + written, o + k, -1);
  });
}

}  // namespace hilo
