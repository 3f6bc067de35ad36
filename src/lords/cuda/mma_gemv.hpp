// The tensor-core matmul for small batches (internal interface, no CUDA headers): codes in the tiled layout of
// src/lords/gpu_layout.hpp decoded straight into mma A fragments.
//  - block-wise: y[b, i] = sum_blocks s[i, blk] sum_{c in blk} Q[i, c] x[b, c]; the 8 columns of the mma are 8
//    activation rows, the per-block sums are scaled in f32.
//  - LoRDS (the activation-expanded form of the spec): y[b, i] = sum_k B[i, k] sum_c Q[i, c] (x[b, c] A[k, c]); the
//    mma columns are (activation row, rank) pairs, so the rank-r scale costs no CUDA-core work per weight.
// fp16 operands: codebook values rounded to fp16; x (block-wise) or x * A (LoRDS) scaled by a power of two per CTA
// into fp16 range (x exact, x * A rounded to 11 bits); f32 accumulation.
#pragma once

#include <cstdint>

namespace hilo::lords::cuda_detail {

constexpr int kMmaMaxRank = 128;  // padded rank the LoRDS path serves; larger ranks use the CUDA-core kernel

struct MmaArgs {
  const uint8_t* codes = nullptr;      // tiled codes
  const uint32_t* pairs = nullptr;     // half2 pair table, 2^(2 bits) entries
  uint16_t values_h[16] = {};          // the codebook values as fp16 (the pair table's halves), for the row GEMV
  const uint16_t* scales = nullptr;    // block-wise: tiled bf16 scales
  const uint16_t* b = nullptr;         // LoRDS: bf16 [row tiles * 16, rank_pad]
  const uint32_t* a = nullptr;         // LoRDS: A in fragment order
  float a_absmax = 1;                  // LoRDS: max |A|
  int64_t rows = 0, cols = 0;
  int row_tiles = 0, col_tiles = 0, bits = 4, block = 64, scale_blocks = 0, rank = 0, rank_pad = 0;
  int block_shift = -1;  // log2(block) where block is a power of two (the GEMM's block index is then a shift)
  bool lords = false;
  int device = 0, sm_count = 132;  // the layer's device (current during launches) and its SM count
  bool stage_scales = true;  // set by the launcher: block-wise scales of a slab staged in shared memory
  bool early_start = false;  // set by the batch-1 launchers: launched by programmatic dependent launch (add_pdl_attribute)
  bool push_sum = true;  // set by the batch-1 launchers: split-K sums by cluster_sum_push (else cluster_sum's pull)
  const uint16_t* x = nullptr;  // bf16 [batch, cols]
  uint16_t* y = nullptr;        // bf16 [batch, rows]
  int64_t batch = 0;
};

int launch_mma_gemv(const MmaArgs& args, void* stream);

}  // namespace hilo::lords::cuda_detail
