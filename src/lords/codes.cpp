#include "codes.hpp"

#include <cmath>

namespace hilo::lords::detail {

void pack_row(const uint8_t* codes, int64_t cols, int bits, uint8_t* out) {
  const int64_t bytes = cols * bits / 8;
  for (int64_t i = 0; i < bytes; ++i) out[i] = 0;
  for (int64_t i = 0; i < cols; ++i) {
    const int64_t bit = i * bits;
    const uint32_t v = codes[i] & ((1u << bits) - 1u);
    out[bit / 8] |= static_cast<uint8_t>(v << (bit % 8));
    if (bit % 8 + bits > 8) out[bit / 8 + 1] |= static_cast<uint8_t>(v >> (8 - bit % 8));
  }
}

void unpack_row(const uint8_t* packed, int64_t cols, int bits, uint8_t* codes) {
  const uint32_t mask = (1u << bits) - 1u;
  for (int64_t i = 0; i < cols; ++i) {
    const int64_t bit = i * bits;
    uint32_t v = packed[bit / 8] >> (bit % 8);
    if (bit % 8 + bits > 8) v |= static_cast<uint32_t>(packed[bit / 8 + 1]) << (8 - bit % 8);
    codes[i] = static_cast<uint8_t>(v & mask);
  }
}

}  // namespace hilo::lords::detail
