// The LoRDS GEMV's shapes (lords_gemv.cu, lords_gemv_kernel.cuh): warps and rows per CTA, the shared-memory layout of a
// geometry, and the scratch the prepass and the grid sum hand the kernel. Shared by the kernels and the host's
// geometry choice.
#pragma once

#include <cstdint>

#include "../gpu_layout.hpp"
#include "mma_common.cuh"

namespace hilo::lords::cuda_detail {
// Private to lords_gemv.cu, the one file that includes this (an unnamed namespace, as in a single source file).
namespace {

using gpu_layout::kTileCols;
using gpu_layout::kTileRows;

constexpr int kSteps = gpu_layout::kStepsPerTile;
// Warps per CTA, one CTA per SM (the pair table and x * A are shared by all). mt: row tiles per warp. mma.sync: 16
// warps of 2 row tiles (each B fragment read from shared memory feeds both; 128 registers). wgmma, whose B operand
// is read from shared memory per instruction either way: 16 warps of 1 row tile (128 registers) or 8 of 2 (255
// registers, a deeper code prefetch); which is faster depends on the code width (wgmma_row_tiles).
constexpr int warps_per_cta(bool wg, int mt = 2) { return wg ? (mt == 1 ? 16 : 8) : 16; }
// Rows of a CTA with wr row warps of mt row tiles (16 rows each).
constexpr int cta_rows(int wr, int mt) { return 16 * mt * wr; }
constexpr int kMaxCluster = 8;
constexpr int kMaxSmemBytes = 225 * 1024;

// NTR: n-tiles of 8 ranks read (2, 4, 7 or 8). The sizes are the same with or without wgmma.
template <int Bits, int NTR>
struct LordsShape {
  static constexpr int kWords = 2 * Bits, kTileBytes = 256 * Bits;
  static constexpr int kLutBytes = (1 << (2 * Bits)) * 256;  // 256-byte rows (lut_offset)
  static constexpr int kFragTileBytes = kSteps * NTR * 32 * 8;  // x * A fragments of one column tile
  // A CTA row of B in shared memory: NTR 16-byte chunks padded to an odd count, so the 8 rows x 4 words an epilogue
  // load touches fall in 32 distinct banks.
  static constexpr int kBRowBytes = 16 * (NTR % 2 == 0 ? NTR + 1 : NTR + 2);
};

// Code tiles in flight per warp, in registers: the accumulators take 8 NTR of the 128 a thread has at 16 warps.
// Wg: the rank product on wgmma (sm_90a; NTR 4, 7, 8: wgmma_rank_product): each warpgroup multiplies its 4 warps'
// decoded codes (64 rows per row-tile slot) by x * A in one m64n(8 NTR)k16 instruction, which reads the shared-memory
// operand once per warpgroup instead of once per warp and runs at wgmma's rate; x * A is then stored as 8 x 16-byte
// core matrices (K-major, no swizzle) instead of per-lane mma.sync fragments.
constexpr int code_depth(int ntr, bool wg) { return ntr <= 4 || wg ? 3 : 2; }

struct LordsGeometry {
  int wr = 0, wc = 0;  // warps along rows (the kernel's MT row tiles each) x along column tiles; wr x wc = warps_per_cta
  int ks = 0, tiles_per_cta = 0;
  bool grid_sum = false;  // slabs add their sums through global memory (GridSum) instead of a cluster
  // Chunk buffers: x * A is staged in chunks of stage_tiles column tiles (two buffers if stages > 1). Ring: stage_tiles
  // slots of one column tile each, stages 1.
  int stage_tiles = 0, stages = 0;
  bool ring = false;
  // Stream-K (lords_gemv_kernel's StreamK; grid_sum, ring, one column group): CTAs over the layer's (row range, column
  // tile) units, tiles_per_cta their longest run; slots: the most CTAs that share a row range (partial sums per range).
  int ctas = 0, slots = 0;
  size_t smem = 0;
};

// Byte offsets of the shared-memory regions (after the pair table at 0).
struct LordsSmem {
  uint32_t x, frag, b, partial, sum, inbox, ring, total;
};

// mt: the kernel's row tiles per warp (MT).
template <int Bits, int NTR>
__host__ __device__ inline LordsSmem smem_layout(const LordsGeometry& geo, int mt) {
  using S = LordsShape<Bits, NTR>;
  const uint32_t rows = cta_rows(geo.wr, mt);
  LordsSmem l{};
  l.x = S::kLutBytes;
  l.frag = l.x + 256u * geo.tiles_per_cta;  // x: bf16, 128 per tile
  l.b = l.frag + (geo.stages > 1 ? 2u : 1u) * geo.stage_tiles * S::kFragTileBytes;
  l.partial = l.b + rows * S::kBRowBytes;
  l.sum = l.partial + 4u * geo.wc * rows;
  l.inbox = l.sum + 4u * rows;
  l.ring = (l.inbox + 4u * cluster_inbox_floats(static_cast<int>(rows), geo.ks) + 15u) / 16u * 16u;
  l.total = l.ring + (geo.ring ? 16u * geo.stage_tiles : 0u);  // the ring's mbarrier and release count per slot
  return l;
}

// Stream-K (lords_gemv_kernel's StreamK): run c of `ctas` holds units floor(c units / ctas) .. floor((c + 1) units /
// ctas) - 1; this is the run that holds unit x.
__host__ __device__ inline int stream_k_run_of_unit(int64_t x, int ctas, int units) {
  return static_cast<int>(((x + 1) * ctas + units - 1) / units) - 1;
}

// x * A prepared by xa_prepass_kernel (null xa: the GEMV converts in place): runs of (column tile, step) in column
// order, NTR x 256 bytes each, laid out as the GEMV's shared-memory chunks; unscale[slab] undoes the slab's scale.
struct PreparedXa {
  uint2* xa = nullptr;
  float* unscale = nullptr;
};

// Split k without a cluster (LordsGeometry::grid_sum): every CTA writes its rows' sums to partial[slab][row] and
// arrives on its row range's counter (zeroed by the prepass, or by a memset without one); the last to arrive adds
// the slabs in slab order, the order and so the bits of cluster_sum_push. For geometries whose clusters the GPU
// cannot hold in one wave (clusters of 7-8 CTAs: at most 15 resident on an H100, from its GPCs).
struct GridSum {
  float* partial = nullptr;  // [ks][row ranges x rows per CTA]
  int* arrivals = nullptr;   // [row ranges]
};

}  // namespace
}  // namespace hilo::lords::cuda_detail
