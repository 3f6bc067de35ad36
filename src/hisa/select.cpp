#include "select.hpp"

#include <algorithm>
#include <array>
#include <numeric>

namespace hilo::detail {
namespace {

// Finds, in a histogram of `bins` counts, the bin holding the `remaining`-th largest element; subtracts the
// elements of higher bins from `remaining`.
int find_bin(const uint32_t* hist, int bins, int64_t& remaining) {
  for (int b = bins - 1; b > 0; --b) {
    if (static_cast<int64_t>(hist[b]) >= remaining) return b;
    remaining -= hist[b];
  }
  return 0;
}

// Radix select in three digits (11, 11, 10 bits). One pass over the input builds the first histogram; a second
// pass copies the keys of the chosen bin (usually few) to `scratch`, where the last two digits are resolved.
template <typename KeyOf>
KthKey kth_impl(int64_t n, int64_t k, KeyOf key_of, std::vector<uint32_t>& scratch) {
  std::array<uint32_t, 2048> hist{};
  for (int64_t i = 0; i < n; ++i) ++hist[key_of(i) >> 21];
  int64_t remaining = k;
  const uint32_t b1 = static_cast<uint32_t>(find_bin(hist.data(), 2048, remaining));

  scratch.clear();
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t key = key_of(i);
    if ((key >> 21) == b1) scratch.push_back(key);
  }
  hist.fill(0);
  for (uint32_t key : scratch) ++hist[(key >> 10) & 0x7FF];
  const uint32_t b2 = static_cast<uint32_t>(find_bin(hist.data(), 2048, remaining));

  hist.fill(0);
  for (uint32_t key : scratch)
    if (((key >> 10) & 0x7FF) == b2) ++hist[key & 0x3FF];
  const uint32_t b3 = static_cast<uint32_t>(find_bin(hist.data(), 1024, remaining));
  return {(b1 << 21) | (b2 << 10) | b3, remaining};
}

}  // namespace

KthKey kth_largest(const uint32_t* keys, int64_t n, int64_t k, std::vector<uint32_t>& scratch) {
  return kth_impl(n, k, [keys](int64_t i) { return keys[i]; }, scratch);
}

KthKey kth_largest(const float* scores, int64_t n, int64_t k, std::vector<uint32_t>& scratch) {
  return kth_impl(n, k, [scores](int64_t i) { return order_key(scores[i]); }, scratch);
}

void TopKCollector::reset(int k) {
  k_ = k;
  size_ = 0;
  have_threshold_ = false;
  threshold_ = 0;
}

void TopKCollector::reserve_for(int n) {
  const std::size_t need = size_ + static_cast<std::size_t>(n);
  if (keys_.size() < need) {
    const std::size_t cap = std::max(need, 2 * static_cast<std::size_t>(k_) + 256);
    keys_.resize(cap);
    pos_.resize(cap);
  }
}

void TopKCollector::offer(const float* scores, int64_t first, int n) {
  reserve_for(n);
  std::size_t m = size_;
  const uint32_t threshold = have_threshold_ ? threshold_ : 0;  // key 0 (NaN) is never a candidate
  for (int i = 0; i < n; ++i) {  // branch-free: whether a score passes is data dependent
    const uint32_t key = order_key(scores[i]);
    keys_[m] = key;
    pos_[m] = static_cast<int32_t>(first + i);
    m += key > threshold;
  }
  size_ = m;
  if (size_ >= 2 * static_cast<std::size_t>(k_)) compact();
}

void TopKCollector::offer_keys(const uint32_t* keys, const int32_t* positions, int n) {
  reserve_for(n);
  std::size_t m = size_;
  for (int i = 0; i < n; ++i) {
    if (keys[i] > (have_threshold_ ? threshold_ : 0u)) {
      keys_[m] = keys[i];
      pos_[m] = positions[i];
      ++m;
    }
  }
  size_ = m;
  if (size_ >= 2 * static_cast<std::size_t>(k_)) compact();
}

void TopKCollector::compact() {
  if (size_ <= static_cast<std::size_t>(k_)) return;
  const KthKey kth = kth_largest(keys_.data(), static_cast<int64_t>(size_), k_, scratch_);
  std::size_t j = 0;
  int64_t equal_taken = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    const uint32_t key = keys_[i];
    const bool take = key > kth.key || (key == kth.key && equal_taken < kth.take_equal);
    if (take) {
      equal_taken += key == kth.key;
      keys_[j] = key;
      pos_[j] = pos_[i];
      ++j;
    }
  }
  size_ = j;
  threshold_ = kth.key;
  have_threshold_ = true;
}

int TopKCollector::finish() {
  compact();
  return static_cast<int>(size_);
}

void sort_by_score(uint32_t* keys, int32_t* positions, int n) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return keys[a] != keys[b] ? keys[a] > keys[b] : positions[a] < positions[b];
  });
  std::vector<uint32_t> k2(n);
  std::vector<int32_t> p2(n);
  for (int i = 0; i < n; ++i) {
    k2[i] = keys[order[i]];
    p2[i] = positions[order[i]];
  }
  std::copy(k2.begin(), k2.end(), keys);
  std::copy(p2.begin(), p2.end(), positions);
}

}  // namespace hilo::detail
