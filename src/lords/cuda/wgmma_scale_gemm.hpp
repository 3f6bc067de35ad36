// The LoRDS GEMM with the scale tile S = B A on wgmma (internal interface, no CUDA headers): 1-256 activation rows
// (CTAs of 16, 32, 64 or 128; tiles of 128 past 128; or, force_wgmma_scale_gemm_wide, tiles of 256 at any batch past
// 128), padded rank <= 64, sm_90a. Same weights and rounding as mma_gemm.hpp's kernel (S rounded to bf16, times the
// code's value, rounded), f32 accumulation, k split over CTAs with partial sums added in split order; only the
// summation order inside the tensor cores differs.
#pragma once

#include "mma_gemm.hpp"

namespace hilo::lords::cuda_detail {

// Whether this kernel serves a GEMM call: LoRDS, batch <= 256, padded rank 32 or 64 (16 from 17 rows; from 2 rows
// where forced), an sm_90a device. HILO_GEMM_WGS=0 / 1 never / always takes it where it can run;
// force_wgmma_scale_gemm(0 | 1) overrides both for tests (-1: the rule).
bool use_wgmma_scale_gemm(const MmaArgs& args);
// The parts of that rule that need no device: whether the kernel can serve the call (LoRDS, batch <= 256, padded rank
// <= 64), and whether it does by default (padded rank 32 or 64, or 16 from 17 rows).
bool wgmma_scale_gemm_can_run(const MmaArgs& args);
bool wgmma_scale_gemm_by_default(const MmaArgs& args);
void force_wgmma_scale_gemm(int mode);
// Tiles of 256 activation rows for every batch past 128 (S once per 256 rows; batches past 256 too), instead of
// tiles of 128 up to 256 rows: off by default (not yet measured), HILO_GEMM_WGS_WIDE=1 turns it on; 0 | 1 forces it
// for tests (-1: back to the default).
void force_wgmma_scale_gemm_wide(int mode);
int launch_wgmma_scale_gemm(const MmaArgs& args, const GemmExtras& extras, void* stream);

}  // namespace hilo::lords::cuda_detail
