// fp8 e4m3 encoding shared by host and device code (the CPU conversions and the CUDA pooling kernels must give the
// same codes bit for bit): round to nearest even, saturating at +-448, NaN -> 0x7F with the sign kept.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HILO_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define HILO_HOST_DEVICE inline
#endif

namespace hilo::fp8 {

HILO_HOST_DEVICE uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
#endif
}

// Rounds the integer m * 2^-shift to the nearest integer, ties to even.
HILO_HOST_DEVICE uint32_t shift_round_even(uint32_t m, int shift) {
  if (shift <= 0) return m;
  if (shift > 31) return 0;
  const uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  return q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
}

HILO_HOST_DEVICE uint8_t encode_e4m3(float x) {
  const uint32_t b = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((b >> 24) & 0x80u);
  uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Fu);
  if (a > 0x43E00000u) a = 0x43E00000u;  // saturate to 448 (Inf included)
  if (a < 0x3C800000u) {                 // below 2^-6: fp8 subnormal, value * 2^9 rounded
    int e = static_cast<int>(a >> 23);
    uint32_t m = a & 0x7FFFFFu;
    if (e == 0)
      e = 1;
    else
      m |= 0x800000u;
    return static_cast<uint8_t>(sign | shift_round_even(m, 141 - e));
  }
  uint32_t r = a - (120u << 23);
  r += 0x7FFFFu + ((r >> 20) & 1u);
  return static_cast<uint8_t>(sign | (r >> 20));
}

}  // namespace hilo::fp8
