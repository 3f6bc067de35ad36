// The LoRDS GEMV's x * A prepass (lords_gemv.cu launches it in front of lords_gemv_kernel.cuh's kernel): x * A
// converted once per call into the layout the GEMV stages, with the per-slab scale the in-kernel path would use, so
// the results are bit-identical to converting in the GEMV.
#pragma once

#include <cstdint>

#include "lords_gemv_shape.cuh"
#include "mma_common.cuh"

namespace hilo::lords::cuda_detail {
// Private to lords_gemv.cu, the one file that includes this (an unnamed namespace, as in a single source file).
namespace {

// One lane's entry of x * A * scale for rank n-tile j of a step: a holds A at ranks 8j + gq, columns 2t, 2t + 1
// (a.x) and 2t + 8, 2t + 9 (a.y); x0, x1 the bf16 pairs of x at those columns.
__device__ __forceinline__ uint2 xa_entry(uint32_t x0, uint32_t x1, uint2 a, float scale) {
  return make_uint2(half2_bits(bf16_lo(x0) * bf16_lo(a.x) * scale, bf16_hi(x0) * bf16_hi(a.x) * scale),
                    half2_bits(bf16_lo(x1) * bf16_lo(a.y) * scale, bf16_hi(x1) * bf16_hi(a.y) * scale));
}
// Stores an entry into n-tile run `entry` (32 uint2): mma.sync B-fragment order, or for wgmma as core matrices (rank
// 8j + gq's columns 0-7 of the step at 16 gq bytes, columns 8-15 at 128 + 16 gq).
template <bool Wg>
__device__ __forceinline__ void put_xa(uint2* entry, int lane, uint2 out) {
  if constexpr (Wg) {
    uint32_t* run = reinterpret_cast<uint32_t*>(entry);
    run[lane] = out.x;  // lane = 4 gq + t
    run[32 + lane] = out.y;
  } else {
    entry[lane] = out;
  }
}

constexpr int kPrepassWarps = 8, kPrepassRunsPerWarp = 2;

// x * A for one call: CTA (slab, chunk) finds the slab's max |x| (every chunk repeats it: at most 28 KB of L2 hits),
// then converts kPrepassWarps x kPrepassRunsPerWarp runs of the slab, with the arithmetic of the in-kernel path.
template <int NTR, bool Wg>
__global__ void __launch_bounds__(32 * kPrepassWarps)
    xa_prepass_kernel(MmaArgs g, LordsGeometry geo, PreparedXa out, int* zero_arrivals, int ranges) {
  griddep_launch_dependents();  // the GEMV's CTAs may start their code loads now; they wait before reading out
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, t = lane % 4;
  const int slab = blockIdx.x, c0 = slab * geo.tiles_per_cta, ntiles = min(geo.tiles_per_cta, g.col_tiles - c0);
  const int groups = g.rank_pad / 8;
  const int runs = ntiles * kSteps, first_run = (blockIdx.y * kPrepassWarps + warp) * kPrepassRunsPerWarp;
  // A is a weight: its fragments are requested before griddep_wait, so that only x's latency follows the previous
  // kernel (this prepass sits between two GEMVs on the critical path). By __ldcg, not __ldg: see griddep_wait.
  uint2 a_frag[kPrepassRunsPerWarp][NTR];
#pragma unroll
  for (int i = 0; i < kPrepassRunsPerWarp; ++i) {
    const int64_t run = static_cast<int64_t>(c0) * kSteps + min(first_run + i, runs - 1);
    const uint2* a = reinterpret_cast<const uint2*>(g.a) + run * groups * 32;
#pragma unroll
    for (int j = 0; j < NTR; ++j) a_frag[i][j] = __ldcg(a + j * 32 + lane);
  }
  griddep_wait();  // launched early (add_pdl_attribute): x may still be written by the previous kernel
  // x of this warp's runs, requested with the max pass's loads (one L2 round trip after the wait, not two).
  // cols is a multiple of 32, so a step of 16 columns is wholly inside the layer or wholly past it (x = 0 there).
  const uint32_t* x32 = reinterpret_cast<const uint32_t*>(g.x);
  uint32_t x_run[kPrepassRunsPerWarp][2];
#pragma unroll
  for (int i = 0; i < kPrepassRunsPerWarp; ++i) {
    const int64_t col = (static_cast<int64_t>(c0) * kSteps + min(first_run + i, runs - 1)) * 16;  // the step's first
    x_run[i][0] = col < g.cols ? __ldcg(x32 + col / 2 + t) : 0u;
    x_run[i][1] = col < g.cols ? __ldcg(x32 + col / 2 + t + 4) : 0u;
  }
  if (zero_arrivals && blockIdx.x == 0 && blockIdx.y == 0)  // the GEMV's grid-sum counters (GridSum)
    for (int i = threadIdx.x; i < ranges; i += blockDim.x) zero_arrivals[i] = 0;
  __shared__ unsigned warp_max[kPrepassWarps];
  unsigned mx = 0;
  for (int i = tid; i < ntiles * (kTileCols / 8); i += 32 * kPrepassWarps) {
    const int64_t col = static_cast<int64_t>(c0) * kTileCols + 8 * i;
    if (col < g.cols) mx = bf16_abs_max(__ldcg(reinterpret_cast<const uint4*>(g.x + col)), mx);
  }
  const unsigned xmax_bits = cta_max<kPrepassWarps>(mx, warp_max);
  const int e2 = fp16_exponent(__uint_as_float(xmax_bits << 16) * g.a_absmax);
  const float scale = ldexpf(1.0f, e2);
  if (blockIdx.y == 0 && tid == 0) out.unscale[slab] = ldexpf(1.0f, -e2);
#pragma unroll
  for (int i = 0; i < kPrepassRunsPerWarp; ++i) {
    if (first_run + i >= runs) break;
    const int64_t run = static_cast<int64_t>(c0) * kSteps + first_run + i;
#pragma unroll
    for (int j = 0; j < NTR; ++j)
      put_xa<Wg>(out.xa + (run * NTR + j) * 32, lane, xa_entry(x_run[i][0], x_run[i][1], a_frag[i][j], scale));
  }
}

}  // namespace
}  // namespace hilo::lords::cuda_detail
