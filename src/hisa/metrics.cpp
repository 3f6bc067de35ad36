#include <algorithm>
#include <limits>

#include "../core/check.hpp"
#include "hilo/hisa_data.hpp"

namespace hilo::hisa {
namespace {

std::vector<int32_t> valid_sorted(const int32_t* row, int64_t n) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < n; ++i)
    if (row[i] >= 0) v.push_back(row[i]);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

Overlap iou(const TensorView& a, const TensorView& b) {
  for (const auto* t : {&a, &b}) {
    expect_host_contiguous(*t, "iou", t == &a ? "a" : "b");
    expect_dtype(*t, "iou", t == &a ? "a" : "b", {DType::I32});
    expect_ndim(*t, "iou", t == &a ? "a" : "b", 2);
  }
  HILO_CHECK(a.size(0) == b.size(0), "iou: a has {} rows but b has {}", a.size(0), b.size(0));
  const int64_t rows = a.size(0);
  Overlap o{0, rows ? std::numeric_limits<double>::max() : 0};
  for (int64_t r = 0; r < rows; ++r) {
    const auto x = valid_sorted(static_cast<const int32_t*>(a.data()) + r * a.size(1), a.size(1));
    const auto y = valid_sorted(static_cast<const int32_t*>(b.data()) + r * b.size(1), b.size(1));
    std::vector<int32_t> common;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(common));
    const double uni = static_cast<double>(x.size() + y.size() - common.size());
    const double v = uni == 0 ? 1.0 : common.size() / uni;
    o.mean += v;
    o.min = std::min(o.min, v);
  }
  if (rows) o.mean /= rows;
  return o;
}

double needle_recall(const TensorView& idx, const std::vector<Needle>& needles, const std::vector<int64_t>& base) {
  expect_host_contiguous(idx, "needle_recall", "idx");
  expect_dtype(idx, "needle_recall", "idx", {DType::I32});
  expect_ndim(idx, "needle_recall", "idx", 2);
  if (needles.empty()) return 1.0;
  int64_t found = 0;
  for (const Needle& n : needles) {
    HILO_CHECK(n.row >= 0 && n.row < idx.size(0) && n.row < static_cast<int64_t>(base.size()),
               "needle_recall: needle row {} is outside the {} rows", n.row, idx.size(0));
    const int32_t* row = static_cast<const int32_t*>(idx.data()) + n.row * idx.size(1);
    const int64_t want = n.position - base[n.row];
    found += std::find(row, row + idx.size(1), want) != row + idx.size(1);
  }
  return static_cast<double>(found) / needles.size();
}

}  // namespace hilo::hisa
