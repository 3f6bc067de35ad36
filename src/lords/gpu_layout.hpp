// The device layout of a quantized layer for the tensor-core kernels (src/lords/cuda/mma_gemv.cu), built on the host
// when a layer is uploaded. The packed codes are only reordered, never decoded: each warp reads the codes of one
// "tile" (16 rows x 128 columns) as one contiguous run, and every lane's bytes are exactly the A fragments of its
// mma.m16n8k16 instructions, so the kernel needs no shuffles.
//
// Fragment order (PTX ISA, mma.m16n8k16 .f16 A operand): lane = 4 g + t holds rows g and g + 8, columns 2t, 2t + 1
// and 2t + 8, 2t + 9 of each 16x16 step. Within a tile, step s covers columns 16 s .. 16 s + 15 (natural order, so a
// step never straddles a scale block: blocks are multiples of 32). A lane stores its 8 steps x 4 "pairs" (two codes
// of neighbouring columns) as a bit string: pair p = 4 s + slot at bits [p * 2 bits, (p + 1) * 2 bits), the lower
// column in the low bits; slot 0 = (row g, col 2t), 1 = (row g + 8, col 2t), 2 = (row g, col 2t + 8), 3 = (row g + 8,
// col 2t + 8), the order of the A registers. The bit strings of the 32 lanes are interleaved in units of U bytes
// (16, or 8 at 3 bits) so that each warp-wide load reads 32 U contiguous bytes. Rows and columns past the matrix hold
// code 0; the kernels multiply them by zero activations or never store them.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "hilo/lords.hpp"

namespace hilo::lords::gpu_layout {

constexpr int kTileRows = 16;
constexpr int kTileCols = 128;
constexpr int kStepsPerTile = kTileCols / 16;

inline int64_t tiles_down(int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }
inline int64_t tiles_across(int64_t cols) { return (cols + kTileCols - 1) / kTileCols; }
inline int tile_bytes(int bits) { return 32 * 8 * bits; }   // 16 x 128 codes
inline int unit_bytes(int bits) { return bits == 3 ? 8 : 16; }

// Codes in tile order: [tiles_down][tiles_across][tile_bytes]. threads: 0 = all cores.
std::vector<uint8_t> tile_codes(const QuantizedLinear& q, int threads = 0);
// The code of (row, col) read back from tile order (the inverse, for tests).
uint8_t tiled_code(const uint8_t* tiled, int bits, int64_t cols, int64_t row, int64_t col);

// Block-wise scales regrouped per row tile: bf16 [tiles_down][blocks][16], blocks = ceil(tiles_across * 128 / block);
// zero past the matrix.
std::vector<uint16_t> tile_scales(const QuantizedLinear& q);
int64_t tiled_scale_blocks(int64_t cols, int block);

// LoRDS rank padded for the kernels: 16, 32, 64 or 128 (the mma path's n-tile counts), else a multiple of 16.
inline int padded_rank(int rank) {
  for (int p : {16, 32, 64, 128})
    if (rank <= p) return p;
  return (rank + 15) / 16 * 16;
}
// B as bf16 [tiles_down * 16][padded_rank], zero padded.
std::vector<uint16_t> pad_factor_b(const QuantizedLinear& q);
// A in mma B-fragment order: for tile c, step s, rank group j (8 ranks), lane 4 g + t, two words: bf16 pairs
// (A[8 j + g][col], A[8 j + g][col + 1]) for col = 128 c + 16 s + 2t and for col + 8. Zero past rank and cols.
std::vector<uint32_t> tile_factor_a(const QuantizedLinear& q);
// A transposed for the GEMM's scale mma: bf16 [tiles_across * 128][padded_rank], zero padded.
std::vector<uint16_t> transpose_factor_a(const QuantizedLinear& q);
// max |A| (the kernels scale x A into fp16 range with it).
float factor_a_absmax(const QuantizedLinear& q);

// half2 of (value[lo], value[hi]) for every pair value lo | hi << bits: 2^(2 bits) entries. Codebook values are
// rounded to fp16 (nearest even): at most 2^-12 absolute, 2^-11 relative.
std::vector<uint32_t> pair_table(const Codebook& cb);

}  // namespace hilo::lords::gpu_layout
