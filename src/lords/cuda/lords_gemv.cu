// LoRDS GEMV for one activation row, in the activation-expanded form of mma_gemv.hpp:
//   y[i] = sum_k B[i, k] z[i, k],  z[i, k] = sum_c Q[i, c] (x[c] A[k, c]),
// so z is a small GEMM whose N dimension is the rank: the decoded codes are the mma A fragments, x * A (fp16, one
// power-of-two scale per CTA, as in the cluster GEMV) the B fragments, and B is applied once per row at the end.
//
// Why not the cluster GEMV (mma_gemv.cu): there each CTA serialises its set-up (pair table from global memory, a
// max pass, fragment staging between barriers) in front of a few KB of codes per warp. This kernel takes the row
// GEMV's fixes (row_gemv.cu): the operands it needs first (x, B, x * A) are requested before the codes, the pair
// table comes from the kernel parameters, and the x * A staging of the next column chunk overlaps the current one.
//
// Work split. A CTA of 16 warps owns 32 x wr rows and a slab of column tiles (wgmma: 16 warps of one row tile or 8 of
// two, wgmma_row_tiles); warp (r, c) of the wr x wc grid owns two row tiles (32 rows: each B fragment read from
// shared memory feeds both) and column tiles c, c + wc, ... of the slab. Why many rows per CTA: every CTA reads x * A
// for its slab (rank x columns x 2 bytes) from L2, which at 32 rows and rank 32 would be 4x its code bytes; at 256
// rows it is half. The per-warp sums over column groups are added in shared memory, the slabs of one row range (a
// cluster of <= 8 CTAs) through distributed shared memory or, split wider, through global memory (GridSum), all in a
// fixed order: deterministic.
//
// The rank costs 2 x rank FLOPs per weight on tensor cores (batch 1 is a GEMM with N = rank); the kernel reads only
// ceil(rank / 8) n-tiles of the padded factors (7 of 8 at rank 49), and above rank 32 (or 16 on wide layers)
// multiplies on wgmma where the build has sm_90a (wgmma_rank_product). Measured: docs/results/lords-cuda.md.
//
// x * A prepass (always for the wgmma variants; for mma.sync HILO_LORDS_XA_PREPASS=1 turns it on): every row range
// converts the same slab of x * A, so a small kernel can do it once per call into a scratch buffer, in the layout the
// GEMV stages and with the same per-slab scale (the results are bit-identical); the GEMV, launched behind it with
// programmatic dependent launch, requests its codes, B and pair table first and copies the prepared x * A after
// griddep_wait(). It took the wgmma shapes 14-17% faster (H100 and H200) and cost the mma.sync shapes 0.3 us on the
// H100 (docs/results/lords-cuda.md), hence the default.
//
// Where their geometry splits k through global memory, the wgmma variants stream the prepared x * A through a ring
// of slots of one column tile each (1D bulk copies, a full mbarrier per slot; the warp whose release completes a
// slot's count refills it), so their main loop has no CTA barrier and its first tile lands after one tile's copy
// rather than a chunk's (measured 1.02x there, 0.93x on the cluster geometry of 14336x4096: launch_ntr). Otherwise
// they, like the mma.sync variants, stage two chunk buffers between CTA barriers (mma.sync converts x * A in place
// when there is no prepass).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>

#include "../../cuda/tma.cuh"
#include "../gpu_layout.hpp"
#include "lords_gemv.hpp"
#include "mma_common.cuh"
#include "wgmma_gemm.hpp"
#include "wgmma_rs.cuh"

namespace hilo::lords::cuda_detail {
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

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The rank product of one step on wgmma (nothing for the mma.sync variants, which compile the same lambdas).
template <bool Wg, int NTR>
__device__ __forceinline__ void rank_wgmma(float (&acc)[NTR * 4], const uint32_t (&a)[4], uint64_t desc,
                                           uint32_t accumulate) {
  if constexpr (Wg) wgmma_m64nNk16_f16_rs<8 * NTR>(acc, a, desc, accumulate);
}
#endif

// Grid: split k through GridSum (geo.grid_sum) instead of a cluster, a separate instantiation so that the cluster
// kernels keep their code (a runtime switch in one kernel cost the wgmma shapes ~10% on an H100, same geometry).
// Ring (wgmma only): x * A streams through the ring of one-tile slots; without it, through two chunk buffers behind
// CTA barriers as on mma.sync (HILO_LORDS_RING). Wc1 (wgmma only): the geometry has one column group (geo.wc == 1),
// known at compile time, so every tile index and shared-memory descriptor is the same for all warps and the compiler
// keeps them in uniform registers. StreamK (with Grid, Ring and Wc1): the layer's (row range, column tile) units in
// row-range order are cut into gridDim.x equal runs, one per CTA, so that every SM gets the same work whatever the
// number of row ranges (14336x4096: 1792 units on 132 CTAs, where 56 ranges x 2 slabs left 20 SMs idle). A run covers
// the end of one row range and the start of the next at most (the host keeps runs <= col_tiles); each range's sum
// goes through GridSum with one slot per CTA that touched it, added in CTA order.
template <int Bits, int NTR, bool Wg, bool Grid = false, int MT = 2, bool Ring = false, bool Wc1 = false,
          bool StreamK = false>
__global__ void __launch_bounds__(32 * warps_per_cta(Wg, MT), 1)
    lords_gemv_kernel(MmaArgs g, LordsGeometry geo, PreparedXa pre, GridSum gs) {
  static_assert(MT == 2 || (MT == 1 && Wg));
  static_assert(Wg || (!Ring && !Wc1));
  static_assert(!StreamK || (Grid && Ring && Wc1));
  static_assert(!Wg || NTR >= 4);               // ranks <= 16 measured slower on wgmma (wgmma_rank_product)
  static_assert(!Wg || MT == 1 || NTR >= 7);  // the 8-warp wgmma variant (MT = 2) only at its measured ranks
  using S = LordsShape<Bits, NTR>;
  constexpr int kMT = MT;
  constexpr int kWarps = warps_per_cta(Wg, MT), kThreads = 32 * kWarps;
  constexpr int kWords = S::kWords, kTileBytes = S::kTileBytes, PD = code_depth(NTR, Wg);
  constexpr int kFragTile = kSteps * NTR * 32;  // uint2 entries per column tile
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ unsigned warp_max[kWarps];
  const LordsSmem L = smem_layout<Bits, NTR>(geo, kMT);
  uint16_t* xs = reinterpret_cast<uint16_t*>(smem + L.x);
  uint2* frag = reinterpret_cast<uint2*>(smem + L.frag);

  if (!Grid && gridDim.x > 1 && g.push_sum) cluster_arrive_relaxed();  // matched in cluster_sum_push
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane / 4, t = lane % 4;
  const int wr = Wc1 ? warp : warp % geo.wr, wc = Wc1 ? 0 : warp / geo.wr, WC = Wc1 ? 1 : geo.wc;
  const int SPT = geo.stage_tiles;
  const int rows = cta_rows(geo.wr, kMT);
  // StreamK: this CTA's units [u0, u0 + ntiles); unit u is column tile u % col_tiles of row range u / col_tiles. Its
  // first n0 tiles belong to range r0, the rest (if any) to r0 + 1.
  const int ranges = StreamK ? (g.row_tiles + kMT * geo.wr - 1) / (kMT * geo.wr) : 0;
  const int units = ranges * g.col_tiles, ctas = gridDim.x, cta = blockIdx.x;
  const int u0 = StreamK ? static_cast<int>(int64_t{cta} * units / ctas) : 0;
  const int r0 = StreamK ? u0 / g.col_tiles : blockIdx.y;
  const int c0 = StreamK ? u0 % g.col_tiles : blockIdx.x * geo.tiles_per_cta;
  const int ntiles = StreamK ? static_cast<int>(int64_t{cta + 1} * units / ctas) - u0
                             : min(geo.tiles_per_cta, g.col_tiles - c0);
  const int n0 = StreamK ? min(ntiles, g.col_tiles - c0) : ntiles;
  const int rt0 = r0 * kMT * geo.wr;
  const int groups = g.rank_pad / 8;
  const bool prepared = Wg || pre.xa != nullptr;  // the wgmma variants always run behind the prepass
  // Ring: the prepared x * A streams through a ring of SPT slots of one column tile each, by bulk copies counted on a
  // full barrier per slot; the warp whose release completes a slot's count refills it (no CTA barrier in the loop).
  const uint32_t ring_full = smem_u32(smem + L.ring);  // + 8 x slot
  unsigned* ring_released = reinterpret_cast<unsigned*>(smem + L.ring + 8 * SPT);
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const auto issue_tile = [&](int lt) {  // one thread: column tile lt of the slab into its slot
    const uint32_t bar = ring_full + 8u * (lt % SPT);
    cuda_ptx::mbar_arrive_expect_tx(bar, S::kFragTileBytes);
    const int col = StreamK ? (c0 + lt) % g.col_tiles : c0 + lt;  // (a StreamK run wraps into the next range)
    cuda_ptx::bulk_copy_g2s(smem_u32(frag) + (lt % SPT) * S::kFragTileBytes, pre.xa + static_cast<int64_t>(col) * kFragTile,
                            S::kFragTileBytes, bar);
  };
  if (Ring && tid == 0) {
    for (int i = 0; i < SPT; ++i) {
      cuda_ptx::mbar_init(ring_full + 8u * i, 1);
      ring_released[i] = 0;
    }
    cuda_ptx::mbar_init_fence();
  }
#endif

  // 1. By cp.async, before the codes (L2 hits that would otherwise queue behind them): x of the slab (zero past the
  // layer), the CTA's rows of B (the first NTR x 8 ranks), and x * A's first two chunks still as A. With the prepass,
  // only B: x * A comes after griddep_wait(). Launched early (g.early_start), x may still be written by the previous
  // kernel: then it is requested after the codes and griddep_wait().
  const int col0 = c0 * kTileCols;
  const auto request_x = [&] {
    for (int i = tid; i < ntiles * (kTileCols / 8); i += kThreads) {
      const int col = col0 + 8 * i;
      cp_async16(smem_u32(xs) + 16 * i, g.x + (col < g.cols ? col : 0), col < g.cols ? 16 : 0);
    }
  };
  const bool x_first = !prepared && !g.early_start;
  if (x_first) request_x();
  const int last_row = g.row_tiles * kTileRows - 1;
  // The CTA's rows first .. first + count - 1 of B, for the row range from row tile first_row_tile on; thread `self`
  // of `threads` requests every threads-th 16-byte chunk.
  const auto request_b = [&](int first_row_tile, int first, int count, int self, int threads) {
    for (int i = self; i < count * NTR; i += threads) {
      const int r = first + i / NTR, chunk = i % NTR, row = min(first_row_tile * kTileRows + r, last_row);
      cp_async16(smem_u32(smem + L.b) + r * S::kBRowBytes + 16 * chunk,
                 g.b + static_cast<int64_t>(row) * g.rank_pad + 8 * chunk, 16);
    }
  };
  request_b(rt0, 0, rows, tid, kThreads);
  // A (tile, step) run of x * A is NTR x 256 bytes (32 lanes x 8 bytes per group of 8 ranks); warp w copies and
  // converts runs w, w + kWarps, ... of a chunk, so no index needs a division. Prepared runs are contiguous.
  const auto copy_a = [&](int st) {  // chunk st's A fragments (or prepared x * A) into buffer st % 2
    const int lt0 = st * SPT, runs = min(SPT, ntiles - lt0) * kSteps;
    const uint32_t dst = smem_u32(frag + (st & 1) * SPT * kFragTile);
    if (prepared) {
      const uint4* src = reinterpret_cast<const uint4*>(pre.xa + static_cast<int64_t>(c0 + lt0) * kSteps * NTR * 32);
      for (int q = tid; q < runs * NTR * 16; q += kThreads) cp_async16(dst + 16 * q, src + q, 16);
    } else {
      for (int cs = warp; cs < runs; cs += kWarps) {
        const unsigned char* src =
            reinterpret_cast<const unsigned char*>(g.a) + (static_cast<int64_t>(c0 + lt0) * kSteps + cs) * groups * 256;
        for (int q = lane; q < NTR * 16; q += 32) cp_async16(dst + (cs * NTR * 16 + q) * 16, src + 16 * q, 16);
      }
    }
  };
  // Commit groups at the first wait: [x, B, chunk 0], chunk 1 (x in a group of its own between them when it comes
  // after griddep_wait), so cp_async_wait<1> leaves only chunk 1 in flight.
  if (!prepared) {
    copy_a(0);
    cp_async_commit();
  }

  // 2. This warp's first tiles of codes (its k-th tile is column tile wc + WC k of the slab).
  // StreamK: codes_next for the tiles of the next row range (from its column 0).
  const uint8_t* codes[kMT];
  const uint8_t* codes_next[kMT];
#pragma unroll
  for (int m = 0; m < kMT; ++m) {
    const int rt = min(rt0 + kMT * wr + m, g.row_tiles - 1);  // a row tile past the layer repeats the last one
    codes[m] = g.codes + (static_cast<int64_t>(rt) * g.col_tiles + c0) * kTileBytes;
    const int rt_next = min(rt0 + kMT * geo.wr + kMT * wr + m, g.row_tiles - 1);
    codes_next[m] = g.codes + static_cast<int64_t>(rt_next) * g.col_tiles * kTileBytes;
  }
  const auto code_tile = [&](int m, int lt) {  // this warp's codes of row tile slot m in the CTA's tile lt
    if constexpr (StreamK)
      if (lt >= n0) return codes_next[m] + static_cast<int64_t>(lt - n0) * kTileBytes;
    return codes[m] + static_cast<int64_t>(lt) * kTileBytes;
  };
  uint32_t buf[PD][kMT][kWords];
#pragma unroll
  for (int d = 0; d < PD; ++d)
#pragma unroll
    for (int m = 0; m < kMT; ++m) {
#pragma unroll
      for (int i = 0; i < kWords; ++i) buf[d][m][i] = 0;
      if (wc + WC * d < ntiles) load_tile<Bits>(code_tile(m, wc + WC * d), lane, buf[d][m]);
    }

  // 3. The pair table from the parameters; then x and chunk 0 have landed. The next kernel may start its own weight
  // loads now; this one reads x or the prepass's output (and writes y) only after the previous kernel has completed.
  griddep_launch_dependents();
  fill_pair_table<Bits>(g.values_h, smem, kThreads);
  float unscale = 1.0f;
  griddep_wait();
  if (Ring) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if (tid == 0)
      for (int lt = 0; lt < min(SPT, ntiles); ++lt) issue_tile(lt);
#endif
    unscale = pre.unscale[StreamK ? 0 : blockIdx.x];  // StreamK: one slab (its prepass covers every column)
  } else if (prepared) {
    copy_a(0);
    cp_async_commit();
    unscale = pre.unscale[blockIdx.x];
  } else if (!x_first) {
    request_x();
    cp_async_commit();
  }
  if (!Ring && geo.stages > 1) copy_a(1);
  cp_async_commit();
  if (tid < kWarps) warp_max[tid] = 0;
  if (Ring)
    cp_async_wait<0>();  // B, the only cp.async group
  else
    cp_async_wait<1>();
  __syncthreads();  // (wgmma: B and the pair table; the ring's barriers are initialised)

  // 4. One power of two for the slab brings max |x| max |A| just under 2^15 (fp16 holds x * A to 11 bits).
  float scale = 1.0f;
  if (!prepared) {
    unsigned mx = 0;
    for (int i = tid; i < ntiles * (kTileCols / 8); i += kThreads) mx = bf16_abs_max(reinterpret_cast<const uint4*>(xs)[i], mx);
    const unsigned xmax_bits = cta_max<kWarps>(mx, warp_max);
    const int e2 = fp16_exponent(__uint_as_float(xmax_bits << 16) * g.a_absmax);
    scale = ldexpf(1.0f, e2);
    unscale = ldexpf(1.0f, -e2);
  }
  // Chunk buffers: A -> x * A * scale (fp16) in place (mma.sync); prepared chunks only need their cp.async writes made
  // visible to wgmma. The main loop's barrier follows either way.
  const auto convert = [&](int st) {
    if (prepared) {
      if constexpr (Wg) fence_proxy_async();
      return;
    }
    __syncwarp();  // the runs this warp copied (after each lane's cp.async wait) are visible to all its lanes
    const int lt0 = st * SPT, runs = min(SPT, ntiles - lt0) * kSteps;
    uint2* f = frag + (st & 1) * SPT * kFragTile;
    const uint32_t* x32 = reinterpret_cast<const uint32_t*>(xs);
    for (int cs = warp; cs < runs; cs += kWarps) {
      const int col = (lt0 + cs / kSteps) * kTileCols + cs % kSteps * 16;  // the step's first column in the slab
      const uint32_t x0 = x32[col / 2 + t], x1 = x32[col / 2 + t + 4];  // columns 2t, 2t + 1 and 2t + 8, 2t + 9
#pragma unroll
      for (int j = 0; j < NTR; ++j) {
        uint2* entry = f + (cs * NTR + j) * 32;
        put_xa<false>(entry, lane, xa_entry(x0, x1, entry[lane], scale));
      }
    }
  };
  if (!Ring) convert(0);

  // 5. Main loop over the chunks: per tile and step, 4 pair lookups per row tile, then per rank n-tile one B fragment
  // and an mma per row tile.
  const uint32_t lane4 = 4 * lane;
  float acc[kMT][NTR * 4];  // per row tile, rank n-tile j: mma.m16n8k16's C fragment at 4j (wgmma's layout too)
#pragma unroll
  for (int m = 0; m < kMT; ++m)
#pragma unroll
    for (int i = 0; i < NTR * 4; ++i) acc[m][i] = 0.0f;
  const auto decode = [&](const uint32_t (&w)[kMT][kWords], int s, uint32_t (&a)[kMT][4]) {
#pragma unroll
    for (int m = 0; m < kMT; ++m)
#pragma unroll
      for (int slot = 0; slot < 4; ++slot)
        a[m][slot] = *reinterpret_cast<const uint32_t*>(smem + lut_offset<Bits>(w[m], 4 * s + slot, lane4));
  };
  // Row sums (step 6): per lane rows gq, gq + 8 of each row tile x ranks 8 j + 2t, + 1; the 4 lanes of a row, then
  // the column groups (in order). Returns row tid's sum (tid < rows) after a CTA barrier; B is free again after it.
  float* partial = reinterpret_cast<float*>(smem + L.partial);
  float* cta_sum = reinterpret_cast<float*>(smem + L.sum);
  // This warp's rows: out(r, sum) for each (lane t == 0 holds it), B read from the warp's own rows only.
  const auto warp_row_sums = [&](auto&& out) {
#pragma unroll
    for (int m = 0; m < kMT; ++m)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = kTileRows * (kMT * wr + m) + gq + 8 * h;
        const uint32_t* brow = reinterpret_cast<const uint32_t*>(smem + L.b + r * S::kBRowBytes);
        float v = 0.0f;
#pragma unroll
        for (int j = 0; j < NTR; ++j) {
          const uint32_t b = brow[4 * j + t];
          v = fmaf(acc[m][4 * j + 2 * h], bf16_lo(b), v);
          v = fmaf(acc[m][4 * j + 2 * h + 1], bf16_hi(b), v);
        }
        v += __shfl_xor_sync(0xFFFFFFFFu, v, 1);
        v += __shfl_xor_sync(0xFFFFFFFFu, v, 2);
        if (t == 0) out(r, v);
      }
  };
  const auto row_sums = [&] {
    warp_row_sums([&](int r, float v) { partial[wc * rows + r] = v; });
    __syncthreads();
    float v = 0.0f;
    if (tid < rows) {
      for (int w = 0; w < WC; ++w) v += partial[w * rows + tid];
      v *= unscale;
    }
    return v;
  };
  const auto store = [&](int range, int i, float value) {  // y of row i of row range `range`
    const int64_t row = static_cast<int64_t>(range) * rows + i;
    if (row < g.rows) {
      const __nv_bfloat16 h = __float2bfloat16_rn(value);
      g.y[row] = *reinterpret_cast<const uint16_t*>(&h);
    }
  };
  // GridSum: this CTA's sums of row range `range` into partial slot `slot` (of `count`, stride ld floats); the last
  // to arrive adds the slots in order and writes y.
  // StreamK: a range whose partials this CTA wrote earlier (at the crossing, `early`, -1 for none) arrives here too.
  const auto grid_add = [&](float v, int range, int slot, int count, int64_t ld, int early = -1, int early_count = 0) {
    if (tid < rows) gs.partial[slot * ld + static_cast<int64_t>(range) * rows + tid] = v;
    __threadfence();
    __syncthreads();
    __shared__ int last[2];
    if (tid == 0) {
      last[0] = atomicAdd(gs.arrivals + range, 1) == count - 1;
      last[1] = early >= 0 && atomicAdd(gs.arrivals + early, 1) == early_count - 1;
    }
    __syncthreads();
    if (last[0] || last[1]) __threadfence();  // the other slots' partials, fenced before their arrivals, are visible
#pragma unroll 1
    for (int k = 0; k < 2; ++k) {
      if (!last[k] || tid >= rows) continue;
      const int rg = k == 0 ? range : early, n = k == 0 ? count : early_count;
      float total = 0.0f;
      for (int q = 0; q < n; ++q) total += __ldcg(gs.partial + q * ld + static_cast<int64_t>(rg) * rows + tid);
      store(rg, tid, total);
    }
  };
  const auto cta_of_unit = [&](int x) { return stream_k_run_of_unit(x, ctas, units); };  // StreamK
  // StreamK, before the first tile of the next range: each warp, on its own (no CTA barrier mid-run: measured 3 us on
  // an H100), sends its rows' sums of the first range to its grid-sum slot (the range's arrival waits for the end,
  // grid_add's `early`) and requests its rows of B for the next range. That range's first wgmma restarts the
  // accumulators (wg_tile's restart).
  const auto cross_range = [&] {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    wgmma_wait<0>();
#pragma unroll
    for (int m = 0; m < kMT; ++m) fence_operands(acc[m]);
#endif
    const int slot = cta - cta_of_unit(r0 * g.col_tiles);
    float* out = gs.partial + slot * (int64_t{ranges} * rows) + static_cast<int64_t>(r0) * rows;
    warp_row_sums([&](int r, float v) { out[r] = v * unscale; });
    __syncwarp();  // every lane's B reads are done before the warp's rows of B are rewritten
    request_b(rt0 + kMT * geo.wr, kTileRows * kMT * wr, kTileRows * kMT, lane, 32);
    cp_async_commit();
  };
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // Ring: the warp whose release of tile lt completes its slot's count (the wr warps of a column group read each of
  // its tiles) refills the slot with tile lt + SPT.
  const auto release = [&](int lt) {
    __syncwarp();
    if (lane == 0 && lt + SPT < ntiles &&
        atomicAdd(ring_released + lt % SPT, 1u) + 1u == static_cast<unsigned>(lt / SPT + 1) * geo.wr)
      issue_tile(lt + SPT);
  };
  // One tile on wgmma. Per half tile (4 steps): the warpgroup's wgmma (row-tile slots x 4 steps) on x * A's core
  // matrices (at tile_addr) as one group, then the next half's lookups while it runs. The A registers alternate between
  // two half sets, rewritten only after the group that read them has completed (wait 1). Ring (lt >= 0): the first
  // wgmma waits for tile lt's slot, and the first half's wait, which retires the previous tile's last group, is
  // followed by the release of that tile (prev >= 0).
  // restart: the tile's first wgmma overwrites the accumulators instead of adding to them (StreamK's second range).
  const auto wg_tile = [&](const uint32_t (&w)[kMT][kWords], uint32_t tile_addr, int lt, int prev, bool restart) {
    uint32_t a[2][kSteps / 2][kMT][4];
#pragma unroll
    for (int s = 0; s < kSteps / 2; ++s) decode(w, s, a[0][s]);
    if (lt >= 0) cuda_ptx::mbar_wait(ring_full + 8u * (lt % SPT), (lt / SPT) & 1);
    const uint64_t desc0 = smem_desc_noswizzle(tile_addr, 128, 256);  // once per tile: one add per wgmma below
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      wgmma_fence();
#pragma unroll
      for (int s = 0; s < kSteps / 2; ++s) {
        const uint64_t desc = smem_desc_advance(desc0, (half * kSteps / 2 + s) * NTR * 256);
#pragma unroll
        for (int m = 0; m < kMT; ++m) rank_wgmma<Wg, NTR>(acc[m], a[half][s][m], desc, !(restart && half == 0 && s == 0));
      }
      wgmma_commit();
      wgmma_wait<1>();
      if (half == 0) {
        if (prev >= 0) release(prev);
#pragma unroll
        for (int s = 0; s < kSteps / 2; ++s) decode(w, kSteps / 2 + s, a[1][s]);
      }
    }
  };
#endif
  if constexpr (Ring) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    // This warp's tiles are lt = wc + WC i; tile lt sits in ring slot lt % SPT once the slot's barrier completes phase
    // lt / SPT.
    const uint32_t frag_base = smem_u32(frag);
    int prev = -1;
    // This warp's tiles i = 0, 1, ... (tile wc + WC i), each in code slot i % PD. StreamK: the run crosses into the
    // next row range at tile n0 (cross_range), inside this one loop. A loop per range, called from a runtime loop, cost
    // the warp-uniform tile indices (every wgmma descriptor went through R2UR: 83 against 27 in the kernel) and
    // spilled; two copies of the loop serialised every wgmma (C7515).
    const int end = ntiles > wc ? (ntiles - wc + WC - 1) / WC : 0;
    for (int i0 = 0; i0 < end; i0 += PD) {
#pragma unroll
      for (int d = 0; d < PD; ++d) {  // code ring slot d holds this warp's tile i0 + d
        const int i = i0 + d, lt = wc + WC * i;
        if (i >= end) break;
        const bool cross = StreamK && i == n0 && i > 0;  // (StreamK: one column group, so i is the CTA's tile)
        if (cross) cross_range();
        wg_tile(buf[d], frag_base + (lt % SPT) * S::kFragTileBytes, lt, prev, cross);
        prev = lt;
        const int next = lt + PD * WC;  // refill the code slot with this warp's tile PD ahead
        if (next < ntiles)
#pragma unroll
          for (int m = 0; m < kMT; ++m) load_tile<Bits>(code_tile(m, next), lane, buf[d][m]);
      }
    }
    wgmma_wait<0>();
#pragma unroll
    for (int m = 0; m < kMT; ++m) fence_operands(acc[m]);
#else
    __trap();  // the launcher picks this variant only where sm_90a code runs
#endif
  } else {
    const int per_warp = SPT / WC;  // this warp's tiles per chunk, a multiple of PD (ring slots stay aligned)
    for (int st = 0; st < geo.stages; ++st) {
      if (st > 0) {
        cp_async_wait<1>();
        convert(st);
      }
      __syncthreads();  // chunk st's fragments are complete
      const uint2* fr = frag + (st & 1) * SPT * kFragTile + lane;
      for (int i0 = 0; i0 < per_warp; i0 += PD) {
#pragma unroll
        for (int d = 0; d < PD; ++d) {  // ring slot d holds this warp's tile st x per_warp + i0 + d
          const int lt = st * SPT + wc + WC * (i0 + d);
          if (i0 + d >= per_warp || lt >= ntiles) break;
          if constexpr (Wg) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
            wg_tile(buf[d], smem_u32(fr - lane + (lt - st * SPT) * kFragTile), -1, -1, false);
#else
            __trap();  // the launcher picks this variant only where sm_90a code runs
#endif
          } else {
            const uint2* xt = fr + (lt - st * SPT) * kFragTile;
#pragma unroll
            for (int s = 0; s < kSteps; ++s) {
              uint32_t a[kMT][4];
              decode(buf[d], s, a);
#pragma unroll
              for (int j = 0; j < NTR; ++j) {  // each B fragment feeds both row tiles
                const uint2 b = xt[(s * NTR + j) * 32];
#pragma unroll
                for (int m = 0; m < kMT; ++m) mma16816(*reinterpret_cast<float(*)[4]>(&acc[m][4 * j]), a[m], b);
              }
            }
          }
          const int next = lt + PD * WC;  // refill the slot with this warp's tile PD ahead
          if (next < ntiles)
#pragma unroll
            for (int m = 0; m < kMT; ++m) load_tile<Bits>(code_tile(m, next), lane, buf[d][m]);
        }
      }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
      if constexpr (Wg) wgmma_wait<0>();  // done reading this chunk's buffer
#endif
      if (st + 2 < geo.stages) {
        __syncthreads();  // every warp is done with buffer st % 2
        copy_a(st + 2);
      }
      cp_async_commit();  // possibly empty: at chunk st the pending groups are always chunks st and st + 1
    }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if constexpr (Wg)
#pragma unroll
      for (int m = 0; m < kMT; ++m) fence_operands(acc[m]);
#endif
  }

  // 6. y = sum_k B z (row_sums and grid_add, above); one slab writes y itself, a cluster pushes its sums, a grid sum
  // adds them through global memory.
  if constexpr (StreamK) {
    if (n0 < ntiles) {  // this warp's rows of B for the second range, requested at the crossing
      cp_async_wait<0>();
      __syncwarp();
    }
  }
  const float v = row_sums();
  if (!StreamK && gridDim.x == 1) {
    if (tid < rows) store(r0, tid, v);
    return;
  }
  if constexpr (StreamK) {
    const bool crossed = n0 < ntiles;
    const int r = crossed ? r0 + 1 : r0, first = cta_of_unit(r * g.col_tiles);
    // The first range (if crossed) ends with this CTA's run: its runs are slots first0 .. cta.
    const int first0 = cta_of_unit(r0 * g.col_tiles);
    grid_add(v, r, cta - first, cta_of_unit((r + 1) * g.col_tiles - 1) - first + 1, int64_t{ranges} * rows,
             crossed ? r0 : -1, cta - first0 + 1);
  } else if constexpr (Grid) {
    grid_add(v, blockIdx.y, blockIdx.x, gridDim.x, int64_t{gridDim.y} * rows);
  } else {
    if (tid < rows) cta_sum[tid] = v;  // each thread pushes the element it wrote
    cluster_add<kMaxCluster>(g.push_sum, cta_sum, reinterpret_cast<float*>(smem + L.inbox), rows,
                             [&](int i, float value) { store(r0, i, value); });
  }
}

// Tuning overrides for sweeps: HILO_LORDS_WR (warps along rows: 2, 4, 8, 16), HILO_LORDS_SPLIT (slabs, 1..8),
// HILO_LORDS_STAGE (tiles per x * A chunk; ring: slots), HILO_LORDS_WGMMA=0 (mma.sync at every rank);
// HILO_LORDS_VERBOSE=1 prints the chosen geometry. HILO_LORDS_XA_PREPASS=1 converts x * A once per call
// (xa_prepass_kernel) for the mma.sync variants too (the wgmma variants always do). HILO_LORDS_GRID_SUM=1 / 0: split
// k through global memory for every wgmma split / never (GridSum). HILO_LORDS_WG_MT=1 / 2: the wgmma variant with 16 warps of one
// row tile / 8 warps of two at ranks 49-64 (unset: wgmma_row_tiles' rule). HILO_LORDS_WG_NTR=4 / 7: wgmma from that
// many rank n-tiles up, ranks 17-32 / 49-64 (unset: wgmma_rank_product's rule).
struct Overrides {
  bool wgmma = env_flag("HILO_LORDS_WGMMA", true);
  int prepass = std::getenv("HILO_LORDS_XA_PREPASS") ? env_flag("HILO_LORDS_XA_PREPASS", false) : -1;
  int wr = env_override("HILO_LORDS_WR", 2, 16, 0);
  int ks = env_override("HILO_LORDS_SPLIT", 1, kMaxCluster, 0);
  int stage = env_override("HILO_LORDS_STAGE", 1, 1 << 16, 0);
  bool verbose = env_override("HILO_LORDS_VERBOSE", 1, 1, 0) == 1;
  int grid_sum = std::getenv("HILO_LORDS_GRID_SUM") ? env_flag("HILO_LORDS_GRID_SUM", false) : -1;
  int wg_mt = env_override("HILO_LORDS_WG_MT", 1, 2, 0);
  int wg_min_ntr = env_override("HILO_LORDS_WG_NTR", 4, 8, 0);
};
const Overrides& overrides() {
  static const Overrides o;
  return o;
}
std::atomic<int> prepass_forced{-1};  // force_lords_xa_prepass
// force_lords_gemv_geometry: row warps, slabs, x * A chunk tiles / ring slots (0: the rule or HILO_LORDS_*).
std::atomic<int> wr_forced{0}, ks_forced{0}, stage_forced{0};
int forced_or(const std::atomic<int>& forced, int env) {
  const int f = forced.load(std::memory_order_relaxed);
  return f > 0 ? f : env;
}
// A test hook's on / off switch (-1: not forced) over the environment's mode, and its setter.
int switch_mode(const std::atomic<int>& forced, int env) {
  const int f = forced.load(std::memory_order_relaxed);
  return f >= 0 ? f : env;
}
void force_switch(std::atomic<int>& forced, int mode) { forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed); }
int wr_override() { return forced_or(wr_forced, overrides().wr); }
int ks_override() { return forced_or(ks_forced, overrides().ks); }
int stage_override() { return forced_or(stage_forced, overrides().stage); }
// The wgmma variants always take it (they stage or stream the prepared x * A); the switches choose for mma.sync.
bool use_prepass(bool wgmma) {
  return wgmma || switch_mode(prepass_forced, overrides().prepass) > 0;
}
// Split k through global memory (GridSum, wgmma variants only: their prepass zeroes the counters): 1 for every split
// geometry, 0 never, -1 where the cost model prefers it. force_lords_grid_sum for tests, else HILO_LORDS_GRID_SUM.
std::atomic<int> grid_sum_forced{-1};
int grid_sum_mode() { return switch_mode(grid_sum_forced, overrides().grid_sum); }

// Whether the wgmma variants stream x * A through the ring (lords_gemv_kernel's Ring): 1 always, 0 never, -1 where
// the geometry splits k through global memory (launch_ntr). force_lords_ring for tests, else HILO_LORDS_RING.
std::atomic<int> ring_forced{-1};
int ring_mode() {
  static const int env = env_override("HILO_LORDS_RING", 0, 1, -1);
  return switch_mode(ring_forced, env);
}

// Ring slots (one column tile each) that fit in shared memory beside the rest of geometry geo.
template <int Bits, int NTR>
int ring_slots_that_fit(LordsGeometry geo, int mt) {
  using S = LordsShape<Bits, NTR>;
  geo.ring = true;
  geo.stage_tiles = 1;
  const size_t fixed = smem_layout<Bits, NTR>(geo, mt).total - S::kFragTileBytes - 16;
  return static_cast<int>((kMaxSmemBytes - std::min<size_t>(fixed, kMaxSmemBytes)) / (S::kFragTileBytes + 16));
}

// The geometry for wr row warps and ks slabs, or smem = 0 where it does not fit.
template <int Bits, int NTR, bool Wg, int MT, bool Ring>
LordsGeometry make_geometry(const MmaArgs& g, int wr, int ks) {
  using S = LordsShape<Bits, NTR>;
  LordsGeometry geo;
  geo.wr = wr;
  geo.wc = warps_per_cta(Wg, MT) / wr;
  geo.tiles_per_cta = (g.col_tiles + ks - 1) / ks;
  geo.ks = (g.col_tiles + geo.tiles_per_cta - 1) / geo.tiles_per_cta;
  if constexpr (Ring) {  // a ring of whole column tiles: the slab where it fits, else as many slots as fit
    geo.ring = true;
    geo.stages = 1;
    const int fit = ring_slots_that_fit<Bits, NTR>(geo, MT);
    const int want = stage_override() > 0 ? stage_override() : (geo.tiles_per_cta + geo.wc - 1) / geo.wc * geo.wc;
    geo.stage_tiles = std::min(want, fit) / geo.wc * geo.wc;  // a multiple of the column groups
    if (geo.stage_tiles < std::min(2 * geo.wc, want)) return {};
    geo.smem = smem_layout<Bits, NTR>(geo, MT).total;
    return geo.smem <= kMaxSmemBytes ? geo : LordsGeometry{};
  }
  const int unit = geo.wc * code_depth(NTR, Wg);  // chunks hold whole rounds of the warps' code rings
  const int whole = (geo.tiles_per_cta + unit - 1) / unit * unit;
  geo.stage_tiles = whole;
  geo.stages = 1;
  const size_t fixed = smem_layout<Bits, NTR>(geo, MT).total - size_t{1} * whole * S::kFragTileBytes;
  if (fixed + size_t{1} * whole * S::kFragTileBytes > kMaxSmemBytes || stage_override() > 0) {
    int chunk = stage_override() > 0 ? stage_override()
                                      : static_cast<int>((kMaxSmemBytes - std::min<size_t>(fixed, kMaxSmemBytes)) / 2 /
                                                         S::kFragTileBytes);
    chunk = std::min(stage_override() > 0 ? std::max(unit, chunk / unit * unit) : chunk / unit * unit, whole);
    if (chunk <= 0) return {};
    geo.stage_tiles = chunk;
    geo.stages = (geo.tiles_per_cta + chunk - 1) / chunk;
  }
  geo.smem = smem_layout<Bits, NTR>(geo, MT).total;
  if (geo.smem > kMaxSmemBytes) return {};
  return geo;
}

// Row ranges (grid rows) of a geometry with wr row warps of mt row tiles.
int row_ctas(const MmaArgs& g, int wr, int mt) { return (g.row_tiles + mt * wr - 1) / (mt * wr); }

// The launch of `rows` row ranges of geo's slabs: a cluster of geo.ks CTAs per row range (a plain launch for one
// slab), behind the previous kernel by programmatic dependent launch where `dependent`. `attrs` backs cfg.attrs.
cudaLaunchConfig_t launch_config(const LordsGeometry& geo, int rows, cudaStream_t stream, cudaLaunchAttribute (&attrs)[2],
                                 bool dependent = false) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(geo.ks), static_cast<unsigned>(rows));
  cfg.blockDim = dim3(static_cast<unsigned>(32 * geo.wr * geo.wc));
  cfg.dynamicSmemBytes = geo.smem;
  cfg.stream = stream;
  cfg.attrs = attrs;
  if (geo.ks > 1 && !geo.grid_sum) {
    cudaLaunchAttribute& a = attrs[cfg.numAttrs++];
    a.id = cudaLaunchAttributeClusterDimension;
    a.val.clusterDim.x = static_cast<unsigned>(geo.ks);
    a.val.clusterDim.y = a.val.clusterDim.z = 1;
  }
  if (dependent) add_pdl_attribute(cfg, attrs, true);
  return cfg;
}

// Clusters of ks CTAs of this kernel the GPU runs at once (0 when none fits); for a grid sum, row ranges of ks
// independent CTAs.
template <auto Kernel>
int resident_clusters(const MmaArgs& g, const LordsGeometry& geo) {
  if (geo.ks == 1 || geo.grid_sum) {
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, 32 * geo.wr * geo.wc, geo.smem) != cudaSuccess) {
      (void)cudaGetLastError();
      return g.sm_count;
    }
    return per_sm * g.sm_count / geo.ks;
  }
  cudaLaunchAttribute attrs[2];
  const int n = max_active_clusters<Kernel>(launch_config(geo, 1, nullptr, attrs));
  return n == INT_MAX ? g.sm_count / geo.ks : n;
}

// Chooses the rows per CTA and the column split by a cost model: waves x the bytes one CTA moves (codes from DRAM,
// x * A from L2 at 1.5x the weight of a code byte) plus a fixed set-up cost of 8 KB-equivalents, over slab counts
// whose last slab has at least half the others' column tiles. Both terms come from geometry sweeps on an H100
// (2026-12-06, three formats, four shapes; docs/notes/gpu-lords.md): with x * A at half weight and any slab count the
// model chose 64-256-row CTAs in 6 slabs of 32 column tiles (the last slab 2 tiles wide), 5-11% slower than the
// geometry these terms choose on the mma.sync shapes; the wgmma shapes keep their choice. Cached per layer shape and
// device.
// A grid sum (GridSum) is a candidate only where the same split as a cluster takes more waves (grid_mode -1), at a
// price of 2 KB-equivalents for the round trip of the partial sums; grid_mode 1 takes it for every split, 0 never.
template <int Bits, int NTR, bool Wg, int MT, bool Ring>
LordsGeometry choose_geometry(const MmaArgs& g, int grid_mode) {
  using S = LordsShape<Bits, NTR>;
  constexpr auto kernel = lords_gemv_kernel<Bits, NTR, Wg, false, MT, Ring>;
  // The occupancy queries below answer for the 48 KB default until the limit is raised. launch_ntr's rules ask before
  // any launch: 14336x4096 then found no geometry and went to the cluster GEMV (70 us against 21, H100, 2026-12-07).
  if (allow_smem_once<kernel>(g.device, kMaxSmemBytes) != 0) return {};
  static std::mutex mu;
  static std::map<std::tuple<int, int, int, int, int, int, int, int>, LordsGeometry> chosen;
  const std::lock_guard lock(mu);
  const auto key = std::make_tuple(g.device, g.row_tiles, g.col_tiles, g.rank_pad, grid_mode, wr_override(), ks_override(),
                                   stage_override());
  if (const auto it = chosen.find(key); it != chosen.end()) return it->second;
  LordsGeometry best;
  double best_cost = 0;
  for (int wr : {16, 8, 4, 2}) {
    // A warpgroup (wgmma) must share one column group.
    if ((wr_override() > 0 && wr != wr_override()) || wr > warps_per_cta(Wg, MT) || (Wg && wr % 4 != 0)) continue;
    const int rows = row_ctas(g, wr, MT);
    for (int ks = 1; ks <= std::min(kMaxCluster, g.col_tiles); ++ks) {
      if (ks_override() > 0 && ks != std::min(ks_override(), g.col_tiles)) continue;
      const LordsGeometry geo = make_geometry<Bits, NTR, Wg, MT, Ring>(g, wr, ks);
      if (geo.smem == 0 || (geo.ks != ks && ks_override() == 0)) continue;  // ks slabs collapse to fewer: seen
      const int last_slab = g.col_tiles - (geo.ks - 1) * geo.tiles_per_cta;
      if (ks_override() == 0 && 2 * last_slab < geo.tiles_per_cta) continue;
      const double kb = geo.tiles_per_cta * (1.0 * MT * wr * S::kTileBytes + 1.5 * S::kFragTileBytes) / 1024.0 + 8.0;
      const auto consider = [&](const LordsGeometry& cand, int resident, double cost) {
        if (overrides().verbose)
          std::fprintf(stderr, "  candidate %d rows/CTA x %d slabs%s: %d resident, %d waves, cost %.0f\n", cta_rows(wr, MT),
                       cand.ks, cand.grid_sum ? " (grid sum)" : "", resident, (rows + resident - 1) / resident, cost);
        if (best.smem == 0 || cost < best_cost * 0.999) best = cand, best_cost = cost;
      };
      const int resident = resident_clusters<kernel>(g, geo);
      const int waves = resident > 0 ? (rows + resident - 1) / resident : INT_MAX;
      if (resident > 0 && !(Wg && grid_mode == 1 && geo.ks > 1)) consider(geo, resident, waves * kb);
      if (Wg && grid_mode != 0 && geo.ks > 1) {
        LordsGeometry grid = geo;
        grid.grid_sum = true;
        const int resident_grid = resident_clusters<kernel>(g, grid);
        const int waves_grid = resident_grid > 0 ? (rows + resident_grid - 1) / resident_grid : INT_MAX;
        if (resident_grid > 0 && (grid_mode == 1 || waves_grid < waves)) consider(grid, resident_grid, waves_grid * (kb + 2.0));
      }
    }
  }
  if (overrides().verbose && best.smem != 0)
    std::fprintf(stderr, "lords_gemv%s: rows %d x cols %d tiles, rank_pad %d: %d rows/CTA (%dx%d warps), %d slabs of %d "
                 "tiles%s, chunks of %d (%d), smem %zu B\n", Wg ? " (wgmma)" : "", g.row_tiles, g.col_tiles, g.rank_pad,
                 cta_rows(best.wr, MT), best.wr, best.wc, best.ks, best.tiles_per_cta, best.grid_sum ? " (grid sum)" : "",
                 best.stage_tiles, best.stages, best.smem);
  return chosen[key] = best;
}

// Whether the wgmma variants take their one-column-group build where the geometry has one column group
// (lords_gemv_kernel's Wc1): force_lords_wc1 for tests, else HILO_LORDS_WC1 (default on).
std::atomic<int> wc1_forced{-1};
bool wc1_enabled() {
  static const int env = env_flag("HILO_LORDS_WC1", true);
  return switch_mode(wc1_forced, env) != 0;
}

thread_local LordsGemvLaunch last_launch;  // last_lords_gemv_launch

// The prepass (where it runs) and the GEMV of geometry geo (StreamK: stream_k_geometry's).
template <int Bits, int NTR, bool Wg, int MT, bool Ring, bool Wc1, bool StreamK = false>
int launch_geometry(const MmaArgs& g, const LordsGeometry& geo, cudaStream_t stream) {
  constexpr auto kernel = lords_gemv_kernel<Bits, NTR, Wg, false, MT, Ring, Wc1>;
  if (const int e = allow_smem_once<kernel>(g.device, kMaxSmemBytes); e != 0) return e;
  const bool prepass = use_prepass(Wg);
  // Grid sums: wgmma variants only (StreamK always sums through global memory).
  constexpr auto grid_kernel = lords_gemv_kernel<Bits, NTR, Wg, Wg, MT, Ring, Wc1, StreamK>;
  if (geo.grid_sum)
    if (const int e = allow_smem_once<grid_kernel>(g.device, kMaxSmemBytes); e != 0) return e;
  cudaLaunchAttribute attrs[2];
  MmaArgs args = g;
  args.push_sum = push_sum_enabled();
  const int ranges = row_ctas(g, geo.wr, MT);
  last_launch = LordsGemvLaunch{g.rows, g.cols, StreamK ? geo.ctas : ranges * geo.ks, geo.smem, geo.ks, StreamK};
  if (!prepass) {  // mma.sync converting x * A itself: no scratch (grid sums are wgmma's, which always prepasses)
    cudaLaunchConfig_t cfg = launch_config(geo, ranges, stream, attrs);
    args.early_start = add_pdl_attribute(cfg, attrs);
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args, geo, PreparedXa{}, GridSum{});
    return static_cast<int>(e != cudaSuccess ? e : cudaGetLastError());
  }
  // Stream-ordered scratch, freed behind the GEMV (the pool keeps it for the next call; CUDA graphs capture it as
  // memory nodes): the prepass's x * A (NTR x 256 bytes per run) and slab scales, the grid sum's partial sums and
  // counters.
  const size_t xa_bytes = size_t{1} * g.col_tiles * kSteps * NTR * 256;
  const size_t prepass_bytes = xa_bytes + sizeof(float) * kMaxCluster;  // x * A, then the slab scales
  const int slots = StreamK ? geo.slots : geo.ks;  // partial sums per row range
  const size_t partial_bytes = geo.grid_sum ? sizeof(float) * slots * ranges * cta_rows(geo.wr, MT) : 0;
  const size_t arrival_bytes = geo.grid_sum ? sizeof(int) * ranges : 0;
  char* scratch = nullptr;
  if (const cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&scratch),
                                            prepass_bytes + partial_bytes + arrival_bytes, stream);
      e != cudaSuccess)
    return static_cast<int>(e);
  const GridSum gs = geo.grid_sum ? GridSum{reinterpret_cast<float*>(scratch + prepass_bytes),
                                            reinterpret_cast<int*>(scratch + prepass_bytes + partial_bytes)}
                                  : GridSum{};
  // The prepass also zeroes the grid sum's counters. StreamK runs cross slabs, so its x * A is one slab (one scale).
  const PreparedXa pre{reinterpret_cast<uint2*>(scratch), reinterpret_cast<float*>(scratch + xa_bytes)};
  LordsGeometry slabs = geo;
  if (StreamK) slabs.ks = 1, slabs.tiles_per_cta = g.col_tiles;
  const int chunks = (slabs.tiles_per_cta * kSteps + kPrepassWarps * kPrepassRunsPerWarp - 1) /
                     (kPrepassWarps * kPrepassRunsPerWarp);
  cudaLaunchConfig_t pcfg = {};
  pcfg.gridDim = dim3(static_cast<unsigned>(slabs.ks), static_cast<unsigned>(chunks));
  pcfg.blockDim = dim3(32 * kPrepassWarps);
  pcfg.stream = stream;
  cudaLaunchAttribute pattr[1];
  add_pdl_attribute(pcfg, pattr);
  cudaError_t e = cudaLaunchKernelEx(&pcfg, xa_prepass_kernel<NTR, Wg>, g, slabs, pre, gs.arrivals, ranges);
  if (e == cudaSuccess) e = cudaGetLastError();
  if (e == cudaSuccess) {
    cudaLaunchConfig_t cfg = launch_config(geo, ranges, stream, attrs, true);
    if (StreamK) cfg.gridDim = dim3(static_cast<unsigned>(geo.ctas), 1u);  // (geo.ks is 1: no cluster)
    e = cudaLaunchKernelEx(&cfg, geo.grid_sum ? grid_kernel : kernel, args, geo, pre, gs);
    if (e == cudaSuccess) e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(scratch, stream);
  return static_cast<int>(e != cudaSuccess ? e : f);
}

template <int Bits, int NTR, bool Wg, int MT, bool Ring>
int launch_with(const MmaArgs& g, cudaStream_t stream) {
  // choose_geometry raises this limit for its queries too; raising it here first returns a failure as its CUDA error
  // rather than as "no geometry" (the cluster GEMV). The Wc1 build has the general build's launch bounds and smem.
  if (const int e = allow_smem_once<lords_gemv_kernel<Bits, NTR, Wg, false, MT, Ring>>(g.device, kMaxSmemBytes); e != 0)
    return e;
  const LordsGeometry geo = choose_geometry<Bits, NTR, Wg, MT, Ring>(g, grid_sum_mode());
  if (geo.smem == 0) return -1;
  if constexpr (Wg)
    if (geo.wc == 1 && wc1_enabled()) return launch_geometry<Bits, NTR, Wg, MT, Ring, true>(g, geo, stream);
  return launch_geometry<Bits, NTR, Wg, MT, Ring, false>(g, geo, stream);
}

// Stream-K (lords_gemv_kernel's StreamK): 1 always where a geometry exists, 0 never, -1 where its longest run is at
// most 90% of the tiles per SM of the geometry the cost model chose (launch_ntr). force_lords_stream_k for tests,
// else HILO_LORDS_STREAMK (default 0: slower where measured, H100 2026-12-07, with the crossing inside one loop and no
// CTA barrier there: 23.1 against 21.2 us on 14336x4096 and 25.6 against 21.6 on 4096x14336 (before: 28.8 and 30.4).
// Nsight: its codes still arrive late, and it leaves no idle SM for the next prepass to start early on. The -1 rule
// would take 14336x4096.)
std::atomic<int> stream_k_forced{-1};
int stream_k_mode() {
  static const int env = env_override("HILO_LORDS_STREAMK", -1, 1, 0);
  return switch_mode(stream_k_forced, env);
}

// The stream-K geometry of the wgmma variant with MT row tiles per warp: one column group, one CTA per SM (its shared
// memory allows no second), the layer's units cut into sm_count runs of at most col_tiles (so a run touches two row
// ranges at most); smem = 0 where none fits. The ring holds a whole run where it fits.
template <int Bits, int NTR, int MT>
LordsGeometry stream_k_geometry(const MmaArgs& g) {
  constexpr int warps = warps_per_cta(true, MT);
  const int ranges = row_ctas(g, warps, MT), units = ranges * g.col_tiles;
  const int ctas = std::min(g.sm_count, units / 2);
  if (ctas < 2 || (units + ctas - 1) / ctas > g.col_tiles) return {};
  LordsGeometry geo;
  geo.wr = warps, geo.wc = 1, geo.ks = 1;
  geo.tiles_per_cta = (units + ctas - 1) / ctas;
  geo.grid_sum = geo.ring = true;
  geo.stages = 1;
  geo.ctas = ctas;
  geo.stage_tiles = std::min(stage_override() > 0 ? stage_override() : geo.tiles_per_cta, ring_slots_that_fit<Bits, NTR>(geo, MT));
  if (geo.stage_tiles < 2) return {};
  for (int r = 0; r < ranges; ++r)  // slots: the most runs that touch one row range
    geo.slots = std::max(geo.slots, stream_k_run_of_unit(int64_t{r + 1} * g.col_tiles - 1, ctas, units) -
                                        stream_k_run_of_unit(int64_t{r} * g.col_tiles, ctas, units) + 1);
  geo.smem = smem_layout<Bits, NTR>(geo, MT).total;
  return geo.smem <= kMaxSmemBytes ? geo : LordsGeometry{};
}

// The ring's rule (ring_mode -1): measured on an H100 (2026-12-07, three rounds, NF4 B=64 batch 1, same binary): on
// 4096x14336 (16 row ranges x 8 slabs, grid sum) the ring took 24.6-24.9 us against the chunk buffers' 25.2-25.5; on
// 14336x4096 (56 x 2 slabs over clusters) 23.4-23.6 against 21.8-21.9. So the ring serves the grid-sum geometries.
template <int Bits, int NTR, bool Wg = false, int MT = 2>
int launch_ntr(const MmaArgs& g, cudaStream_t stream) {
  if constexpr (Wg) {
    const int mode = ring_mode();
    const int grid_mode = grid_sum_mode();
    if (const int sk_mode = stream_k_mode(); sk_mode != 0) {
      const LordsGeometry sk = stream_k_geometry<Bits, NTR, MT>(g);
      if (sk.smem != 0) {
        bool take = sk_mode == 1;
        if (!take) {  // against the cost model's geometry: one CTA per SM, so its waves are CTAs over SMs
          const LordsGeometry geo = choose_geometry<Bits, NTR, Wg, MT, false>(g, grid_mode);
          const int64_t ctas = int64_t{geo.ks} * row_ctas(g, geo.wr, MT);
          take = geo.smem == 0 || 10 * sk.tiles_per_cta <= 9 * geo.tiles_per_cta * ((ctas + g.sm_count - 1) / g.sm_count);
        }
        if (take) return launch_geometry<Bits, NTR, true, MT, true, true, true>(g, sk, stream);
      }
    }
    if (mode == 1 || (mode < 0 && choose_geometry<Bits, NTR, Wg, MT, false>(g, grid_mode).grid_sum))
      return launch_with<Bits, NTR, true, MT, true>(g, stream);
  }
  return launch_with<Bits, NTR, Wg, MT, false>(g, stream);
}

// Rank n-tiles read: ceil(rank / 8) rounded up to 2, 4, 7 or 8 (the instantiated widths).
int rank_tiles(int rank) {
  const int n = (rank + 7) / 8;
  return n <= 2 ? 2 : n <= 4 ? 4 : n <= 7 ? 7 : 8;
}

// Whether NTR rank n-tiles (4, 7 or 8) multiply on wgmma: ranks 49-64 always; 17-32 on layers at least twice as
// long (columns) as tall, where mma.sync's clusters cannot split k far enough and the wgmma kernel's grid sum can.
// H100, ninth session (docs/results/lords-cuda.md): NF4 B=128 rank 24 4096x14336 23.1-23.2 -> 21.8 us, 14336x4096
// 19.3 -> 19.8, rank 32 at 4096x4096 10.2 -> 11.6; ranks <= 16 were slower on every shape (1024x4096 rank 12 5.0 ->
// 7.3 us), so they have no wgmma variant. HILO_LORDS_WG_NTR overrides the threshold.
bool wgmma_rank_product(const MmaArgs& g, int ntr) {
  if (overrides().wg_min_ntr > 0) return ntr >= overrides().wg_min_ntr;
  return ntr >= 7 || (ntr == 4 && g.col_tiles * kTileCols >= 2 * g.row_tiles * kTileRows);
}

// Row tiles per warp of the wgmma variant at ranks 49-64: 1 (16 warps) for 4-bit codes, 2 (8 warps) otherwise. H100,
// ninth session, same binary and call: NF4 B=64 14336x4096 24.1-24.3 -> 23.7 us and 4096x14336 26.1-26.2 -> 25.8
// with 1; NF3 B=64 25.0-25.1 against 25.6-25.9 and 26.1-26.2 against 26.3-26.4 with 2; 2-bit not measured (keeps 2,
// the earlier default). HILO_LORDS_WG_MT overrides it.
int wgmma_row_tiles(int bits) { return overrides().wg_mt > 0 ? overrides().wg_mt : bits == 4 ? 1 : 2; }

// The kernel for NTR rank n-tiles (lords_gemv_variant).
template <int Bits, int NTR>
int launch_rank_tiles(const MmaArgs& g, cudaStream_t stream) {
#if defined(HILO_HAVE_SM90A)
  if constexpr (NTR >= 4) {
    const LordsGemvVariant v = lords_gemv_variant(g, sm90a_device(g.device));
    if (v.wgmma) {
      if constexpr (NTR >= 7)
        if (v.row_tiles_per_warp == 2) return launch_ntr<Bits, NTR, true, 2>(g, stream);
      return launch_ntr<Bits, NTR, true, 1>(g, stream);
    }
  }
#endif
  return launch_ntr<Bits, NTR>(g, stream);
}

template <int Bits>
int launch_bits(const MmaArgs& g, cudaStream_t stream) {
  switch (rank_tiles(g.rank)) {
    case 2: return launch_rank_tiles<Bits, 2>(g, stream);
    case 4: return launch_rank_tiles<Bits, 4>(g, stream);
    case 7: return launch_rank_tiles<Bits, 7>(g, stream);
    default: return launch_rank_tiles<Bits, 8>(g, stream);
  }
}

}  // namespace

bool lords_gemv_serves(const MmaArgs& g) {
  static const bool enabled = env_flag("HILO_LORDS_GEMV", true);
  // Ranks up to 64 are padded to 16, 32 or 64, which holds the rank_tiles(rank) groups of 8 the kernel reads.
  return enabled && g.lords && g.batch == 1 && g.rank >= 1 && g.rank <= 64;
}

LordsGemvVariant lords_gemv_variant(const MmaArgs& g, bool sm90a) {
#if !defined(HILO_HAVE_SM90A)
  sm90a = false;  // no wgmma variant was compiled
#endif
  LordsGemvVariant v;
  v.rank_tiles = rank_tiles(g.rank);
  v.wgmma = sm90a && overrides().wgmma && v.rank_tiles >= 4 && wgmma_rank_product(g, v.rank_tiles);
  v.row_tiles_per_warp = !v.wgmma ? 2 : v.rank_tiles >= 7 ? wgmma_row_tiles(g.bits) : 1;
  return v;
}

void force_lords_xa_prepass(int mode) { force_switch(prepass_forced, mode); }
void force_lords_grid_sum(int mode) { force_switch(grid_sum_forced, mode); }
void force_lords_ring(int mode) { force_switch(ring_forced, mode); }
void force_lords_wc1(int mode) { force_switch(wc1_forced, mode); }
void force_lords_stream_k(int mode) { force_switch(stream_k_forced, mode); }
LordsGemvLaunch last_lords_gemv_launch() { return last_launch; }
void force_lords_gemv_geometry(int row_warps, int slabs, int stage_tiles) {
  wr_forced.store(std::max(row_warps, 0), std::memory_order_relaxed);
  ks_forced.store(std::max(slabs, 0), std::memory_order_relaxed);
  stage_forced.store(std::max(stage_tiles, 0), std::memory_order_relaxed);
}

int launch_lords_gemv(const MmaArgs& g, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, stream); });
}

}  // namespace hilo::lords::cuda_detail
