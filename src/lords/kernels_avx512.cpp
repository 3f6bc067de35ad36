// AVX-512 versions of the LoRDS / block-wise row kernels (compiled with -mavx512f -mfma; chosen at run time).
// Codes decode through a 16-entry table held in one register (vpermps); see kernels.hpp for the lane order.
#include <immintrin.h>

#include <cmath>

#include "codes.hpp"
#include "hilo/dtype.hpp"
#include "kernels.hpp"

namespace hilo::lords::detail {
namespace {

void scale_row(const float* b, const float* a, int rank, int64_t lda, int64_t n, float* out) {
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {  // 4 vectors in flight per k
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int k = 0; k < rank; ++k) {
      const __m512 bk = _mm512_set1_ps(b[k]);
      const float* ak = a + static_cast<int64_t>(k) * lda + c;
      s0 = _mm512_fmadd_ps(bk, _mm512_loadu_ps(ak), s0);
      s1 = _mm512_fmadd_ps(bk, _mm512_loadu_ps(ak + 16), s1);
      s2 = _mm512_fmadd_ps(bk, _mm512_loadu_ps(ak + 32), s2);
      s3 = _mm512_fmadd_ps(bk, _mm512_loadu_ps(ak + 48), s3);
    }
    _mm512_storeu_ps(out + c, s0);
    _mm512_storeu_ps(out + c + 16, s1);
    _mm512_storeu_ps(out + c + 32, s2);
    _mm512_storeu_ps(out + c + 48, s3);
  }
  for (; c < n; ++c) {
    float s = 0.0f;
    for (int k = 0; k < rank; ++k) s = std::fma(b[k], a[static_cast<int64_t>(k) * lda + c], s);
    out[c] = s;
  }
}

// 4 rows x 64 columns per pass: 16 accumulators; per k, 4 loads of A serve 16 fmas.
void scale_rows4(const float* b, int64_t ldb, const float* a, int rank, int64_t lda, int64_t n, float* out,
                 int64_t ldo) {
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {
    __m512 s[4][4];
    for (int r = 0; r < 4; ++r)
      for (int v = 0; v < 4; ++v) s[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < rank; ++k) {
      const float* ak = a + static_cast<int64_t>(k) * lda + c;
      const __m512 a0 = _mm512_loadu_ps(ak), a1 = _mm512_loadu_ps(ak + 16), a2 = _mm512_loadu_ps(ak + 32),
                   a3 = _mm512_loadu_ps(ak + 48);
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        const __m512 bk = _mm512_set1_ps(b[r * ldb + k]);
        s[r][0] = _mm512_fmadd_ps(bk, a0, s[r][0]);
        s[r][1] = _mm512_fmadd_ps(bk, a1, s[r][1]);
        s[r][2] = _mm512_fmadd_ps(bk, a2, s[r][2]);
        s[r][3] = _mm512_fmadd_ps(bk, a3, s[r][3]);
      }
    }
    for (int r = 0; r < 4; ++r)
      for (int v = 0; v < 4; ++v) _mm512_storeu_ps(out + r * ldo + c + 16 * v, s[r][v]);
  }
  if (c < n)
    for (int r = 0; r < 4; ++r) scale_row(b + r * ldb, a + c, rank, lda, n - c, out + r * ldo + c);
}

struct Expand3 {
  __m512i spread_idx, shifts;
  __attribute__((target("avx512vbmi"))) Expand3() {
    alignas(64) static const uint8_t spread[64] = {0,  1,  2,  2,  2,  2,  2,  2,  3,  4,  5,  5,  5,  5,  5,  5,
                                                   6,  7,  8,  8,  8,  8,  8,  8,  9,  10, 11, 11, 11, 11, 11, 11,
                                                   12, 13, 14, 14, 14, 14, 14, 14, 15, 16, 17, 17, 17, 17, 17, 17,
                                                   18, 19, 20, 20, 20, 20, 20, 20, 21, 22, 23, 23, 23, 23, 23, 23};
    spread_idx = _mm512_load_si512(spread);
    shifts = _mm512_set1_epi64(0x1512'0F0C'0906'0300ll);  // bit offsets 0, 3, ..., 21 in every qword
  }
  // 64 codes from 24 bytes (masked load: never reads past them), one per byte in natural order.
  __attribute__((target("avx512vbmi"))) __m512i operator()(const uint8_t* src) const {
    const __m512i packed = _mm512_maskz_loadu_epi8(0xFFFFFFull, src);
    return _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(spread_idx, packed));
  }
  // Values of codes 16h .. 16h+15 of an expansion.
  static __m512 values(__m512i codes, int h, __m512 lut) {
    const __m128i part = h == 0   ? _mm512_castsi512_si128(codes)
                         : h == 1 ? _mm512_extracti32x4_epi32(codes, 1)
                         : h == 2 ? _mm512_extracti32x4_epi32(codes, 2)
                                  : _mm512_extracti32x4_epi32(codes, 3);
    return _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(part), lut);
  }
};

template <int Bits, int Rows>
void gemv_rows(const uint8_t* row0, int64_t row_bytes, int64_t cols, int block, const uint16_t* scales,
               int64_t scales_stride, __m512 lut, const float* x, float* y) {
  constexpr int per_byte = 8 / Bits, group = 16 * per_byte;
  __m512 total[Rows];
  for (int r = 0; r < Rows; ++r) total[r] = _mm512_setzero_ps();
  const int64_t blocks = cols / block;
  for (int64_t j = 0; j < blocks; ++j) {
    __m512 part[Rows];
    for (int r = 0; r < Rows; ++r) part[r] = _mm512_setzero_ps();
    for (int64_t p = j * block; p < (j + 1) * block; p += group) {
      const uint8_t* src = row0 + p * Bits / 8;
      __m512 xs[per_byte];
      for (int s = 0; s < per_byte; ++s) xs[s] = _mm512_loadu_ps(x + p + 16 * s);
#pragma GCC unroll 4
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* rs = src + r * row_bytes;
        _mm_prefetch(reinterpret_cast<const char*>(rs) + 512, _MM_HINT_T0);
        const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rs)));
#pragma GCC unroll 4
        for (int s = 0; s < per_byte; ++s) {
          // vpermps reads only the index's low 4 bits and the table repeats every 2^Bits entries: no masking.
          const __m512 v = _mm512_permutexvar_ps(s == 0 ? bytes : _mm512_srli_epi32(bytes, s * Bits), lut);
          part[r] = _mm512_fmadd_ps(v, xs[s], part[r]);
        }
      }
    }
    for (int r = 0; r < Rows; ++r)
      total[r] = _mm512_fmadd_ps(part[r], _mm512_set1_ps(bf16_bits_to_f32(scales[r * scales_stride + j])), total[r]);
  }
  for (int r = 0; r < Rows; ++r) y[r] = _mm512_reduce_add_ps(total[r]);
}

// Batch-1 GEMV for 3-bit codes (natural order; block a multiple of 64), like gemv_rows.
template <int Rows>
__attribute__((target("avx512vbmi"))) void gemv3_rows(const uint8_t* row0, int64_t row_bytes, int64_t cols, int block,
                                                      const uint16_t* scales, int64_t scales_stride, __m512 lut,
                                                      const float* x, float* y) {
  const Expand3 expand;
  __m512 total[Rows];
  for (int r = 0; r < Rows; ++r) total[r] = _mm512_setzero_ps();
  for (int64_t j = 0; j < cols / block; ++j) {
    __m512 part[Rows];
    for (int r = 0; r < Rows; ++r) part[r] = _mm512_setzero_ps();
    for (int64_t p = j * block; p < (j + 1) * block; p += 64) {
      __m512 xs[4];
      for (int h = 0; h < 4; ++h) xs[h] = _mm512_loadu_ps(x + p + 16 * h);
#pragma GCC unroll 4
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* rs = row0 + r * row_bytes + p * 3 / 8;
        _mm_prefetch(reinterpret_cast<const char*>(rs) + 768, _MM_HINT_T0);
        const __m512i codes = expand(rs);
#pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) part[r] = _mm512_fmadd_ps(Expand3::values(codes, h, lut), xs[h], part[r]);
      }
    }
    for (int r = 0; r < Rows; ++r)
      total[r] = _mm512_fmadd_ps(part[r], _mm512_set1_ps(bf16_bits_to_f32(scales[r * scales_stride + j])), total[r]);
  }
  for (int r = 0; r < Rows; ++r) y[r] = _mm512_reduce_add_ps(total[r]);
}

template <int Bits, int Rows>
void gemv_dispatch(const uint8_t* row0, int64_t row_bytes, int64_t cols, int block, const uint16_t* scales,
                   int64_t scales_stride, __m512 lut, const float* x, float* y) {
  if constexpr (Bits == 3)
    gemv3_rows<Rows>(row0, row_bytes, cols, block, scales, scales_stride, lut, x, y);
  else
    gemv_rows<Bits, Rows>(row0, row_bytes, cols, block, scales, scales_stride, lut, x, y);
}

template <int Bits>
void gemv_bits(const uint8_t* row0, int64_t row_bytes, int rows, int64_t cols, int block, const uint16_t* scales,
               int64_t scales_stride, __m512 lut, const float* x, float* y) {
  int r = 0;
  for (; r + 4 <= rows; r += 4)
    gemv_dispatch<Bits, 4>(row0 + r * row_bytes, row_bytes, cols, block, scales + r * scales_stride, scales_stride,
                           lut, x, y + r);
  for (; r < rows; ++r)
    gemv_dispatch<Bits, 1>(row0 + r * row_bytes, row_bytes, cols, block, scales + r * scales_stride, scales_stride,
                           lut, x, y + r);
}

void gemv_blockwise(const uint8_t* row0, int64_t row_bytes, int rows, int64_t cols, int bits, int block,
                    const uint16_t* scales, int64_t scales_stride, const float* lut16, const float* x, float* y) {
  const __m512 lut = _mm512_loadu_ps(lut16);
  if (bits == 4)
    gemv_bits<4>(row0, row_bytes, rows, cols, block, scales, scales_stride, lut, x, y);
  else if (bits == 3)
    gemv_bits<3>(row0, row_bytes, rows, cols, block, scales, scales_stride, lut, x, y);
  else
    gemv_bits<2>(row0, row_bytes, rows, cols, block, scales, scales_stride, lut, x, y);
}

// 16 packed bytes -> 8 / Bits vectors of 16 values (lane order), times the block scale when Scaled.
template <int Bits, bool Scaled>
void decode_lane(const uint8_t* src, int64_t n, __m512 lut, const float* scale16, float* out) {
  constexpr int per_byte = 8 / Bits, group = 16 * per_byte;
  for (int64_t p = 0; p < n; p += group, src += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(src) + 1024, _MM_HINT_T0);  // rows are streamed 128-256 B at a time
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
#pragma GCC unroll 4
    for (int s = 0; s < per_byte; ++s) {
      __m512 v = _mm512_permutexvar_ps(s == 0 ? bytes : _mm512_srli_epi32(bytes, s * Bits), lut);  // no mask: see gemv
      if constexpr (Scaled) v = _mm512_mul_ps(v, _mm512_set1_ps(scale16[(p + 16 * s) / 16]));
      _mm512_storeu_ps(out + p + 16 * s, v);
    }
  }
}

// 3-bit codes, natural order, 64 at a time (AVX512-VBMI): 24 packed bytes are spread so that each qword holds one
// 3-byte group of 8 codes (vpermb), vpmultishiftqb pulls the 8 codes into 8 bytes, and each 16 bytes then decode
// like the other widths. The upper bits of each code byte are garbage: the table repeats every 8 entries and vpermps
// ignores index bits above 3, so they never matter.
__attribute__((target("avx512vbmi"))) void decode3_vbmi(const uint8_t* src, int64_t n, __m512 lut,
                                                        const float* scale16, float* out) {
  const Expand3 expand;
  int64_t p = 0;
  for (; p + 64 <= n; p += 64, src += 24) {
    const __m512i codes = expand(src);
    for (int h = 0; h < 4; ++h) {
      __m512 v = Expand3::values(codes, h, lut);
      if (scale16) v = _mm512_mul_ps(v, _mm512_set1_ps(scale16[(p + 16 * h) / 16]));
      _mm512_storeu_ps(out + p + 16 * h, v);
    }
  }
  if (p < n) {  // a last 32 codes (12 bytes)
    alignas(16) uint8_t codes[32];
    unpack_row(src, 32, 3, codes);
    for (int h = 0; h < 2; ++h) {
      __m512 v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(codes + 16 * h))), lut);
      if (scale16) v = _mm512_mul_ps(v, _mm512_set1_ps(scale16[(p + 16 * h) / 16]));
      _mm512_storeu_ps(out + p + 16 * h, v);
    }
  }
}

template <int Bits>
void decode_lane_any(const uint8_t* src, int64_t n, __m512 lut, const float* scale16, float* out) {
  if (scale16)
    decode_lane<Bits, true>(src, n, lut, scale16, out);
  else
    decode_lane<Bits, false>(src, n, lut, scale16, out);
}

void decode(const uint8_t* row, int64_t c0, int64_t n, int bits, bool lane_order, const float* lut16,
            const float* scale16, float* out) {
  const __m512 lut = _mm512_loadu_ps(lut16);
  if (lane_order) {
    const uint8_t* src = row + c0 * bits / 8;
    if (bits == 4)
      decode_lane_any<4>(src, n, lut, scale16, out);
    else
      decode_lane_any<2>(src, n, lut, scale16, out);
    return;
  }
  static const bool vbmi = __builtin_cpu_supports("avx512vbmi");
  if (bits == 3 && vbmi) return decode3_vbmi(row + c0 * 3 / 8, n, lut, scale16, out);
  alignas(64) uint8_t codes[32];
  for (int64_t p = 0; p < n; p += 32) {
    unpack_row(row + (c0 + p) * bits / 8, 32, bits, codes);
    for (int h = 0; h < 2; ++h) {
      __m512 v = _mm512_permutexvar_ps(
          _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(codes + 16 * h))), lut);
      if (scale16) v = _mm512_mul_ps(v, _mm512_set1_ps(scale16[(p + 16 * h) / 16]));
      _mm512_storeu_ps(out + p + 16 * h, v);
    }
  }
}

// Up to 4 tile rows share each activation load; two accumulators per row hide the fma latency.
template <int Rows>
void dot_rows(const float* tile, int64_t n, const float* x, float* acc) {
  __m512 s0[Rows], s1[Rows];
  for (int r = 0; r < Rows; ++r) s0[r] = s1[r] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
    for (int r = 0; r < Rows; ++r) {
      s0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(tile + r * n + c), x0, s0[r]);
      s1[r] = _mm512_fmadd_ps(_mm512_loadu_ps(tile + r * n + c + 16), x1, s1[r]);
    }
  }
  for (; c < n; c += 16) {
    const __m512 x0 = _mm512_loadu_ps(x + c);
    for (int r = 0; r < Rows; ++r) s0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(tile + r * n + c), x0, s0[r]);
  }
  for (int r = 0; r < Rows; ++r) acc[r] += _mm512_reduce_add_ps(_mm512_add_ps(s0[r], s1[r]));
}

// 4 tile rows x 4 activation rows: 16 accumulators, 8 loads per 16 fmas.
void dot_4x4(const float* tile, int64_t n, const float* x, int64_t ldx, float* acc, int acc_stride) {
  __m512 s[4][4];
  for (int r = 0; r < 4; ++r)
    for (int b = 0; b < 4; ++b) s[r][b] = _mm512_setzero_ps();
  for (int64_t c = 0; c < n; c += 16) {
    __m512 t[4], xv[4];
    for (int r = 0; r < 4; ++r) t[r] = _mm512_loadu_ps(tile + r * n + c);
    for (int b = 0; b < 4; ++b) xv[b] = _mm512_loadu_ps(x + b * ldx + c);
    for (int r = 0; r < 4; ++r)
      for (int b = 0; b < 4; ++b) s[r][b] = _mm512_fmadd_ps(t[r], xv[b], s[r][b]);
  }
  for (int b = 0; b < 4; ++b)
    for (int r = 0; r < 4; ++r) acc[b * acc_stride + r] += _mm512_reduce_add_ps(s[r][b]);
}

void dot_tile(const float* tile, int rows, int64_t n, const float* x, int64_t ldx, int batch, float* acc) {
  int b0 = 0;
  if (rows == 4)
    for (; b0 + 4 <= batch; b0 += 4) dot_4x4(tile, n, x + b0 * ldx, ldx, acc + b0 * rows, rows);
  for (int b = b0; b < batch; ++b) {
    const float* xb = x + b * ldx;
    float* ab = acc + b * rows;
    int r = 0;
    for (; r + 4 <= rows; r += 4) dot_rows<4>(tile + r * n, n, xb, ab + r);
    for (; r < rows; ++r) dot_rows<1>(tile + r * n, n, xb, ab + r);
  }
}

void bf16_row(const uint16_t* src, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) out[i] = bf16_to_f32(src[i]);
}

}  // namespace

const Kernels& avx512_kernels() {
  static const Kernels k{&scale_row,  &scale_rows4, &gemv_blockwise, __builtin_cpu_supports("avx512vbmi") != 0,
                         &decode,     &dot_tile,    &bf16_row,       "avx512"};
  return k;
}

}  // namespace hilo::lords::detail
