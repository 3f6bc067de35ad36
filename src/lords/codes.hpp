// Code assignment (nearest codebook value, vectorised by thresholds) and bit packing of codes.
#pragma once

#include <cstdint>
#include <vector>

#include "hilo/lords.hpp"

namespace hilo::lords::detail {

// The QLoRA/LoftQ normal-float levels for `bits` bits computed from the formula (for bits = 4 equal to
// bitsandbytes' NF4 table to float rounding; make_codebook uses the exact table there).
std::vector<float> normal_float_map(int bits);

// Nearest-value assignment through the midpoints between consecutive codebook values: code = number of midpoints
// strictly below x (ties to the lower code), NaN -> the zero code. The same thresholds serve every path.
class CodeAssigner {
 public:
  explicit CodeAssigner(const Codebook& cb);
  uint8_t code(float x) const;
  // codes[i] = code(num[i] / den[i]); den == 0 gives the zero code (W^ = 0 there whatever the code).
  void assign_ratio(const float* num, const float* den, int64_t n, uint8_t* codes) const;
  // codes[i] = code(num[i] / den) for one shared denominator (block-wise scales).
  void assign_scaled(const float* num, float den, int64_t n, uint8_t* codes) const;
  const std::vector<float>& thresholds() const { return thresholds_; }

 private:
  static constexpr int64_t kChunk = 256;
  void count(const float* x, int64_t n, uint8_t* codes) const;
  std::vector<float> thresholds_;
  uint8_t zero_;
};

// Packs `cols` codes of `bits` bits (cols * bits divisible by 8) little-endian: code i occupies bits
// [i*bits, (i+1)*bits) of the row's byte string.
void pack_row(const uint8_t* codes, int64_t cols, int bits, uint8_t* out);
void unpack_row(const uint8_t* packed, int64_t cols, int bits, uint8_t* codes);

}  // namespace hilo::lords::detail
