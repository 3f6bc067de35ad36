// Nearest-code assignment (compiled with the quantiser's vector flags: it is the refinement's inner loop).
#include <algorithm>
#include <cmath>

#include "codes.hpp"

namespace hilo::lords::detail {

CodeAssigner::CodeAssigner(const Codebook& cb) : zero_(static_cast<uint8_t>(cb.zero_code())) {
  for (std::size_t i = 0; i + 1 < cb.values.size(); ++i) thresholds_.push_back(0.5f * (cb.values[i] + cb.values[i + 1]));
}

uint8_t CodeAssigner::code(float x) const {
  if (std::isnan(x)) return zero_;
  int c = 0;
  for (float t : thresholds_) c += x > t;
  return static_cast<uint8_t>(c);
}

// Codes of x[0..n) (n <= kChunk): for each threshold, one vectorised compare-and-count over the whole chunk.
void CodeAssigner::count(const float* x, int64_t n, uint8_t* codes) const {
  int32_t c[kChunk];
  for (int64_t i = 0; i < n; ++i) c[i] = 0;
  for (float t : thresholds_)
    for (int64_t i = 0; i < n; ++i) c[i] += x[i] > t ? 1 : 0;
  for (int64_t i = 0; i < n; ++i) codes[i] = x[i] != x[i] ? zero_ : static_cast<uint8_t>(c[i]);
}

void CodeAssigner::assign_ratio(const float* num, const float* den, int64_t n, uint8_t* codes) const {
  float x[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min<int64_t>(kChunk, n - i0);
    for (int64_t i = 0; i < m; ++i) x[i] = den[i0 + i] == 0.0f ? NAN : num[i0 + i] / den[i0 + i];  // 0 scale: zero code
    count(x, m, codes + i0);
  }
}

void CodeAssigner::assign_scaled(const float* num, float den, int64_t n, uint8_t* codes) const {
  float x[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min<int64_t>(kChunk, n - i0);
    for (int64_t i = 0; i < m; ++i) x[i] = den == 0.0f ? NAN : num[i0 + i] / den;
    count(x, m, codes + i0);
  }
}

}  // namespace hilo::lords::detail
