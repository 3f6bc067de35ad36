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
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../../cuda/tma.cuh"
#include "../gpu_layout.hpp"
#include "lords_gemv_prepass.cuh"
#include "lords_gemv_shape.cuh"
#include "mma_common.cuh"
#include "wgmma_rs.cuh"

namespace hilo::lords::cuda_detail {
// Private to lords_gemv.cu, the one file that includes this (an unnamed namespace, as in a single source file).
namespace {

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

}  // namespace
}  // namespace hilo::lords::cuda_detail
