// Row kernels of LoRDS and block-wise quantisation, shared by quantisation, dequantisation and the fused matmul.
//  - scale_row: S[i, c0:c0+n] = B[i, :] . A[:, c0:c0+n], an fma chain over k = 0..r-1 in order, so every path
//    (quantize, dequantize, matmul, portable or AVX-512) computes bit-identical scales.
//  - decode: codes of one packed row to codebook values, in the row's "storage order" (below).
//  - dot: f32 dot products of a decoded tile with activation rows.
//
// Storage order. Codes are packed little-endian (code c at bits [c*bits, (c+1)*bits) of the row). For 4- and
// 2-bit codes the matmul reads 16 bytes at a time and splits them into 8/bits vectors of 16 codes: vector s holds
// the codes at bit shift s*bits of bytes 0..15, i.e. columns (8/bits)*l + s for l = 0..15. The activations (and
// LoRDS' A) are permuted once into that "lane order" so no code ever needs shuffling. Other widths, and shapes the
// groups do not tile, use natural order.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace hilo::lords::detail {

// bf16 -> f32 is exact: the bf16 bits are the f32's upper half (inline for the kernels' inner loops).
inline float bf16_bits_to_f32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// out[c] = sum_k b[k] * a[k * lda + c], fma chain in k order, for c in [0, n).
using ScaleRowFn = void (*)(const float* b, const float* a, int rank, int64_t lda, int64_t n, float* out);

// Columns per 16-byte group in lane order (4-bit: 32, 2-bit: 64); 0 where lane order does not apply.
int lane_group(int bits);
// Whether a [rows, cols] matrix of `bits`-bit codes with scale blocks of `block` columns uses lane order.
bool uses_lane_order(int bits, int64_t cols, int block);
// Column of the matrix stored at position p in lane order (identity in natural order). A lane-order group never
// straddles a scale block, so position p and column lane_column(p) are in the same block (p / block).
inline int64_t lane_column(int64_t p, int bits, bool lane_order) {
  if (!lane_order) return p;
  if (bits == 4) return (p & ~int64_t{31}) + 2 * (p & 15) + ((p >> 4) & 1);
  return (p & ~int64_t{63}) + 4 * (p & 15) + ((p >> 4) & 3);  // bits == 2
}

// A [rank, cols] repacked as panels of kScaleChunk columns, each [rank, width] contiguous: the scale kernel then
// reads `rank` rows a panel-width apart instead of a matrix-width apart (which thrashes L1 sets: 4 KiB aliasing).
constexpr int64_t kScaleChunk = 1024;
void pack_panels(const float* a, int rank, int64_t cols, float* out);
// S[c0 : c0 + n] for one row from the panels (c0 a multiple of kScaleChunk, n its panel's width).
inline const float* panel_at(const float* panels, int rank, int64_t c0) { return panels + rank * c0; }

// Kernels take the codebook as a 16-entry table repeating the 2^bits values (lut16[i] = values[i mod 2^bits]), so
// a code's neighbours in the upper index bits never matter.
void fill_lut16(const std::vector<float>& values, float* lut16);

// Decodes the codes of columns [c0, c0 + n) (c0 and n multiples of 32, and of lane_group in lane order) of one packed row into values lut[code],
// multiplied by scale16[p / 16] when scale16 is given, in storage order.
using DecodeFn = void (*)(const uint8_t* row, int64_t c0, int64_t n, int bits, bool lane_order, const float* lut16,
                          const float* scale16, float* out);

// acc[b * rows + r] += dot(tile[r * n .. ], x[b * ldx + .. ]) for r < rows, b < batch (n a multiple of 16).
using DotTileFn = void (*)(const float* tile, int rows, int64_t n, const float* x, int64_t ldx, int batch,
                           float* acc);

// out[i] = bf16 src[i] as f32 (exact).
using Bf16RowFn = void (*)(const uint16_t* src, int64_t n, float* out);

// Batch-1 block-wise GEMV fused with decoding (4-/2-bit codes in lane order; 3-bit codes in natural order with
// blocks a multiple of 64, where gemv_handles_3bit): y[r] = sum over blocks of
// scale[r, j] * sum_c lut[code] * x[c] for up to 4 rows starting at `row0` (`row_bytes` apart). Values never touch
// memory; the scale multiplies each block's partial sum. nullptr where the CPU has no such kernel.
using GemvBlockwiseFn = void (*)(const uint8_t* row0, int64_t row_bytes, int rows, int64_t cols, int bits, int block,
                                 const uint16_t* scales, int64_t scales_stride, const float* lut16, const float* x,
                                 float* y);

// S for 4 consecutive rows at once (B rows `ldb` apart, outputs `ldo` apart): each A load feeds 4 rows. Every
// entry is the same fma chain as scale_row's, so the results are bit-identical.
using ScaleRows4Fn = void (*)(const float* b, int64_t ldb, const float* a, int rank, int64_t lda, int64_t n, float* out,
                              int64_t ldo);

struct Kernels {
  ScaleRowFn scale_row;
  ScaleRows4Fn scale_rows4;
  GemvBlockwiseFn gemv_blockwise;
  bool gemv_handles_3bit;
  DecodeFn decode;
  DotTileFn dot_tile;
  Bf16RowFn bf16_row;
  const char* name;
};
const Kernels& portable_kernels();
#if defined(__x86_64__)
const Kernels& avx512_kernels();
#endif
// The fastest kernels this CPU runs (AVX-512 where present). All produce bit-identical scales; decode is exact.
const Kernels& kernels();

// Throws where this CPU lacks the instruction set the quantiser's Eigen code was built for (compiled without it).
void require_quantizer_isa();

}  // namespace hilo::lords::detail
