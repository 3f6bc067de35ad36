// The tensor-core matmul for batches (internal interface, no CUDA headers): y [batch, rows] = x . W^T with W decoded
// from the tiled codes straight into bf16 mma A fragments, once per CTA for all of its activation rows.
// Codebook values are rounded to bf16 (2^-9 relative);
//  - block-wise: W = value * scale, one bf16 multiply (exact product, rounded to bf16);
//  - LoRDS: the scale fragment S = B A is itself an mma (bf16 factors, f32 accumulation, rank as k) whose output
//    fragment is exactly an A fragment, rounded to bf16, then W = value * S, one bf16 multiply (rounded to bf16).
//    It runs over the rank in groups of 8 (rounded up to 2, 3, 4, 7, 8 or 16 groups, not to the padded rank), so its
//    cost relative to the main product is (8 x groups) / (activation rows per CTA).
// bf16 x (exact), f32 accumulation, k split over CTAs for small grids with partial sums added in split order
// (deterministic, no atomics).
#pragma once

#include <cstdint>

#include "mma_gemv.hpp"

namespace hilo::lords::cuda_detail {

// Extra operands of the GEMM beyond MmaArgs: LoRDS' A transposed, bf16 [col_tiles * 128][rank_pad] (zero padded).
struct GemmExtras {
  const uint16_t* a_t = nullptr;
};

// Whether the GEMM serves this call (else the GEMV's passes do); HILO_LORDS_GEMM=0|1 forces it for A/B runs.
bool use_mma_gemm(const MmaArgs& args);
int launch_mma_gemm(const MmaArgs& args, const GemmExtras& extras, void* stream);

}  // namespace hilo::lords::cuda_detail
