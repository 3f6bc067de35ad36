// The batch GEMM on Hopper's warpgroup MMA (internal interface, no CUDA headers): the same maths and rounding as
// mma_gemm.hpp (weights decoded into bf16 A fragments, f32 accumulation, k split over CTAs with partial sums added
// in split order), with the activations as wgmma's shared-memory B operand and the decoded weights as its register
// A operand: one x read from shared memory per warpgroup and step instead of one per warp. Only the summation order
// inside the tensor cores differs from the mma.sync GEMM.
#pragma once

#include "mma_gemm.hpp"

namespace hilo::lords::cuda_detail {

// Whether the wgmma GEMM serves a GEMM call: built for sm_90a, a 9.x device and batch >= 33 (the small-batch tiles
// stay on mma.sync). HILO_GEMM_WGMMA=0 never takes it; force_wgmma_gemm(0 | 1) overrides the rule for tests (-1: the
// rule).
// Whether `device` runs this build's sm_90a code (compiled for it, compute capability 9.x); cached per device.
bool sm90a_device(int device);

bool use_wgmma_gemm(const MmaArgs& args);
void force_wgmma_gemm(int mode);
bool wgmma_gemm_forced_on();  // force_wgmma_gemm(1) in effect
int launch_wgmma_gemm(const MmaArgs& args, const GemmExtras& extras, void* stream);

// Split k of the last wave (the one-CTA kernel): a grid of `ctas` output tiles on `slots` resident CTAs that takes
// several waves, the last part full, runs whole tiles on its first dp_ctas CTAs and splits the remaining tiles
// `splits` ways (tiles_per_split chunks each; partial sums of tile_bytes per part, at most 32 MiB in all). splits 0:
// not worth it (the cost model in wgmma_gemm.cu). HILO_GEMM_TAIL=0 never splits. For tests, force_wgmma_tail(slots,
// splits): slots > 0 takes that many slots and `splits` wherever a tail exists; -1 never splits; 0 the rule.
struct WgTailPlan {
  int64_t dp_ctas = 0;
  int splits = 0, tiles_per_split = 0;
};
WgTailPlan choose_tail_split(int64_t ctas, int64_t slots, int col_tiles, int64_t tile_bytes);
void force_wgmma_tail(int slots, int splits);

}  // namespace hilo::lords::cuda_detail
