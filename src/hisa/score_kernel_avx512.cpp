// AVX-512 scoring kernel (compiled with -mavx512f -mfma; chosen at run time).
//
// Register tile: HB heads x KV groups of 16 keys = up to 24 zmm accumulators. Per d: KV panel loads, HB broadcasts
// of q[h][d], HB*KV FMAs, so the two FMA ports stay busy while loads stay under two per cycle. The epilogue folds
// the heads into the scores in ascending h, which keeps the arithmetic identical to reference::score.
#include <immintrin.h>

#include <cstdint>

#include "hilo/dtype.hpp"

#include "score_kernel.hpp"

namespace hilo::hisa::detail {
namespace {

template <int HB, int KV>
inline void head_block(const float* q, const float* w, int D, const float* panel, const float* scales,
                       __m512* score) {
  __m512 acc[HB][KV];
  for (int h = 0; h < HB; ++h)
    for (int v = 0; v < KV; ++v) acc[h][v] = _mm512_setzero_ps();
  for (int d = 0; d < D; ++d) {
    __m512 k[KV];
    for (int v = 0; v < KV; ++v) k[v] = _mm512_loadu_ps(panel + (static_cast<long>(v) * D + d) * kGroup);
    for (int h = 0; h < HB; ++h) {
      const __m512 qb = _mm512_set1_ps(q[static_cast<long>(h) * D + d]);
      for (int v = 0; v < KV; ++v) acc[h][v] = _mm512_fmadd_ps(qb, k[v], acc[h][v]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  __m512 sc[KV];
  for (int v = 0; v < KV; ++v) sc[v] = _mm512_loadu_ps(scales + v * kGroup);
  for (int h = 0; h < HB; ++h) {
    const __m512 wh = _mm512_set1_ps(w[h]);
    for (int v = 0; v < KV; ++v) {
      const __m512 logit = _mm512_mul_ps(acc[h][v], sc[v]);
      score[v] = _mm512_fmadd_ps(wh, _mm512_max_ps(logit, zero), score[v]);
    }
  }
}

template <int KV>
void groups_tile(const float* q, const float* w, int H, int D, const float* panel, const float* scales, float* out) {
  __m512 score[KV];
  for (int v = 0; v < KV; ++v) score[v] = _mm512_setzero_ps();
  constexpr int HB = 8;
  int h = 0;
  for (; h + HB <= H; h += HB) head_block<HB, KV>(q + static_cast<long>(h) * D, w + h, D, panel, scales, score);
  const float* qr = q + static_cast<long>(h) * D;
  switch (H - h) {
    case 7: head_block<7, KV>(qr, w + h, D, panel, scales, score); break;
    case 6: head_block<6, KV>(qr, w + h, D, panel, scales, score); break;
    case 5: head_block<5, KV>(qr, w + h, D, panel, scales, score); break;
    case 4: head_block<4, KV>(qr, w + h, D, panel, scales, score); break;
    case 3: head_block<3, KV>(qr, w + h, D, panel, scales, score); break;
    case 2: head_block<2, KV>(qr, w + h, D, panel, scales, score); break;
    case 1: head_block<1, KV>(qr, w + h, D, panel, scales, score); break;
    default: break;
  }
  for (int v = 0; v < KV; ++v) _mm512_storeu_ps(out + v * kGroup, score[v]);
}

}  // namespace

void score_groups_avx512(const float* q, const float* w, int H, int D, const float* panel, const float* scales,
                         int groups, float* out) {
  const long group_floats = static_cast<long>(D) * kGroup;
  int g = 0;
  for (; g + 3 <= groups; g += 3)
    groups_tile<3>(q, w, H, D, panel + g * group_floats, scales + g * kGroup, out + g * kGroup);
  if (groups - g == 2) groups_tile<2>(q, w, H, D, panel + g * group_floats, scales + g * kGroup, out + g * kGroup);
  if (groups - g == 1) groups_tile<1>(q, w, H, D, panel + g * group_floats, scales + g * kGroup, out + g * kGroup);
}

namespace {

// fp8 e4m3 codes -> f32, exactly: place the 7 magnitude bits under the f32 exponent/mantissa and rescale by 2^120
// (subnormal codes become f32 subnormals, which the multiply makes normal); NaN codes stay NaN.
inline __m512 e4m3_to_f32x16(__m128i codes) {
  const __m512i x = _mm512_cvtepu8_epi32(codes);
  const __m512i mag = _mm512_and_si512(x, _mm512_set1_epi32(0x7F));
  __m512 f = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(mag, 20)), _mm512_set1_ps(0x1p120f));
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(x, _mm512_set1_epi32(0x80)), 24);
  f = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(f), sign));
  const __mmask16 nan = _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7F));
  return _mm512_mask_blend_ps(nan, f, _mm512_set1_ps(__builtin_nanf("")));
}

// Loads elements [d0, d0 + n) of a row as f32 (n <= 16; the rest zero).
inline __m512 load_row16(const void* row, int dtype, int d0, int n) {
  if (row == nullptr) return _mm512_setzero_ps();
  const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
  const auto* p = static_cast<const uint8_t*>(row);
  switch (static_cast<DType>(dtype)) {
    case DType::F8_E4M3: return e4m3_to_f32x16(_mm_maskz_loadu_epi8(m, p + d0));
    case DType::BF16: {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p + 2 * d0));
      return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    }
    default: return _mm512_maskz_loadu_ps(m, p + 4 * d0);
  }
}

// In-register transpose of a 16x16 f32 tile (r[i] = row i in, column i out).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

}  // namespace

void pack_group_avx512(const void* const rows[kGroup], int dtype, int D, float* out) {
  for (int d0 = 0; d0 < D; d0 += 16) {
    const int n = D - d0 < 16 ? D - d0 : 16;
    __m512 r[16];
    for (int lane = 0; lane < 16; ++lane) r[lane] = load_row16(rows[lane], dtype, d0, n);
    transpose16(r);
    for (int j = 0; j < n; ++j) _mm512_storeu_ps(out + (d0 + j) * kGroup, r[j]);
  }
}

}  // namespace hilo::hisa::detail
