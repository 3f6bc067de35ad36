// Building blocks of every top-k in hilo: a total order on f32 scores mapped to uint32 keys, an exact radix
// select of the k-th key, and a collector that keeps the running top-k of a stream of scores.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace hilo::detail {

// Monotone map of f32 to uint32 (larger score -> larger key); every NaN maps to 0, below -Inf. Branch-free:
// scores' signs are random, and a mispredicted branch per element would cost more than the whole histogram pass.
inline uint32_t order_key(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t flip = static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u;
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? 0u : u ^ flip;
}

inline float key_to_float(uint32_t key) {
  const uint32_t u = (key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// The k-th largest key (1 <= k <= n) and how many elements equal to it are taken: every key above `key` plus the
// first `take_equal` keys equal to it (in index order) form the top-k.
struct KthKey {
  uint32_t key;
  int64_t take_equal;
};
KthKey kth_largest(const uint32_t* keys, int64_t n, int64_t k, std::vector<uint32_t>& scratch);
// The same over f32 scores, mapping each through order_key.
KthKey kth_largest(const float* scores, int64_t n, int64_t k, std::vector<uint32_t>& scratch);

// Running top-k of a stream offered in ascending position order. NaN scores (key 0) are never kept: they mean
// "no candidate", as on the GPU. Memory: 2k + one chunk of entries.
class TopKCollector {
 public:
  void reset(int k);
  // Offers scores[i] for position first + i, i in [0, n); positions must ascend across calls.
  void offer(const float* scores, int64_t first, int n);
  // Offers already-keyed entries (e.g. partial results of another collector), positions ascending.
  void offer_keys(const uint32_t* keys, const int32_t* positions, int n);
  // Reduces to at most k entries, in ascending position order; returns their count.
  int finish();
  const int32_t* positions() const { return pos_.data(); }
  const uint32_t* keys() const { return keys_.data(); }
  int size() const { return static_cast<int>(size_); }

 private:
  void compact();
  void reserve_for(int n);
  int k_ = 0;
  std::size_t size_ = 0;
  bool have_threshold_ = false;
  uint32_t threshold_ = 0;  // once full: an entry must beat this key to enter
  std::vector<uint32_t> keys_;
  std::vector<int32_t> pos_;
  std::vector<uint32_t> scratch_;
};

// Sorts `n` (key, position) entries by key desc, then position asc.
void sort_by_score(uint32_t* keys, int32_t* positions, int n);

}  // namespace hilo::detail
