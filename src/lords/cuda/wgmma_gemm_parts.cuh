// What the two wgmma GEMM kernels share (wgmma_gemm.cu: each CTA decodes its own weights; wgmma_cluster_gemm.cu:
// the CTAs of a cluster decode a part each and exchange them): the warp layout and its register split, the block-wise
// scales' loads, the epilogue and the split-k rule.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../../cuda/tensor_map.hpp"
#include "../../cuda/tma.cuh"
#include "../gpu_layout.hpp"
#include "gemm_common.cuh"
#include "split_sum.cuh"

namespace hilo::lords::cuda_detail {

constexpr int kWgSteps = gpu_layout::kStepsPerTile;
constexpr int kWgConsumers = 32 * kGemmRowTiles;  // the decoding / multiplying warps, one per 16-row tile
// And a producer warpgroup, of which one warp works (TMA for x, cp.async for LoRDS' A^T). A whole warpgroup, so that
// setmaxnreg can move its registers to the consumers: a ninth warp alone would cap every thread at 168 registers (3
// warps on one SM sub-partition's 16K registers), where the consumers need up to ~200 at 256 activation rows.
constexpr int kWgThreads = kWgConsumers + 128;
// Registers per thread after setmaxnreg: the producer's and the consumers'. One CTA per SM launches at 168 (65536 /
// 384, rounded to 8): 128 x 40 + 256 x 232 = 384 x 168. Two launch at 80: 128 x 24 + 256 x 104 <= 384 x 80. The
// consumers' increase is served from what the producer gives back, so the launch count must be the bound's maximum
// (ptxas pins it there in kernels with setmaxnreg: `-Xptxas -v` reports 168 / 80 for every variant); with fewer,
// setmaxnreg.inc would wait forever.
constexpr int wg_producer_regs(int ctas) { return ctas == 1 ? 40 : 24; }
constexpr int wg_consumer_regs(int ctas) { return ctas == 1 ? 232 : 104; }
constexpr int kWgCtaRows = kGemmRowTiles * gpu_layout::kTileRows;
constexpr int kWgMaxSmem = 227 * 1024;  // an H100's / H200's limit per CTA
constexpr int wg_x_bytes(int bn) { return bn * 2 * gpu_layout::kTileCols; }
constexpr int wg_lut_bytes(int bits, int copies = 32) { return 4 * (1 << (2 * bits)) * copies; }
constexpr int kWgOutStride = kWgCtaRows + 8;  // bf16 per staged output row (the epilogue, over the x ring)

// A wgmma GEMM's launch configuration (no attributes yet).
inline cudaLaunchConfig_t wg_launch_config(dim3 grid, int threads, size_t smem, cudaStream_t stream) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  return cfg;
}

// Block-wise: this lane's scales for chunk c of tile `tile`, block (the chunk's first) + t (clamped to the last) for
// rows gq and gq + 8, into lo and hi: loaded two chunks ahead and combined when the chunk starts (chunk_scales), so
// that nothing waits for the loads in between.
__device__ __forceinline__ void load_chunk_scales(const MmaArgs& g, int tile, int c, int gq, int t, uint32_t& lo,
                                                  uint32_t& hi) {
  const int blk = min(block_of(g, c * gpu_layout::kTileCols) + t, g.scale_blocks - 1);
  const uint16_t* p = g.scales + (static_cast<int64_t>(tile) * g.scale_blocks + blk) * gpu_layout::kTileRows + gq;
  lo = __ldg(p);
  hi = __ldg(p + 8);
}
// The scales of block (chunk c's first) + t for rows gq (low half) and gq + 8 (high half), zero past the last block.
// A step's scales are then one shuffle from lane 4 gq + its block.
__device__ __forceinline__ uint32_t chunk_scales(const MmaArgs& g, int c, int t, uint32_t lo, uint32_t hi) {
  return block_of(g, c * gpu_layout::kTileCols) + t < g.scale_blocks ? lo | hi << 16 : 0;
}

// A consumer warp's operands of chunk c of its tile mtc (`codes`: the tile's first chunk): the codes into `ring`,
// and for block-wise the chunk's scales into lo / hi (load_chunk_scales).
template <int Bits, bool Lords>
__device__ __forceinline__ void load_chunk_operands(const MmaArgs& g, const uint8_t* codes, int mtc, int c, int lane,
                                                    uint32_t (&ring)[2 * Bits], uint32_t& lo, uint32_t& hi) {
  load_tile<Bits>(codes + static_cast<int64_t>(c) * (256 * Bits), lane, ring);
  if constexpr (!Lords) load_chunk_scales(g, mtc, c, lane / 4, lane % 4, lo, hi);
}

// A consumer warp's first requests, before the pair table is filled: the codes (and block-wise scales) of chunks
// c0 .. c0 + PD - 1 (zeros past c1) and LoRDS' B factors of its 16 rows.
template <int Bits, int R8, int PD>
__device__ __forceinline__ void load_first_operands(const MmaArgs& g, const uint8_t* codes, int mtc, int c0, int c1,
                                                    int lane, uint32_t (&ring)[PD][2 * Bits], uint32_t (&lo)[PD],
                                                    uint32_t (&hi)[PD], uint32_t (&bfac)[R8 > 0 ? k16_groups(R8) : 1][4]) {
#pragma unroll
  for (int d = 0; d < PD; ++d) {
#pragma unroll
    for (int i = 0; i < 2 * Bits; ++i) ring[d][i] = 0;
    lo[d] = hi[d] = 0;
    if (c0 + d < c1) load_chunk_operands<Bits, (R8 > 0)>(g, codes, mtc, c0 + d, lane, ring[d], lo[d], hi[d]);
  }
  if constexpr (R8 > 0)
    load_b_factors<k16_groups(R8)>(g.b, static_cast<int64_t>(mtc) * gpu_layout::kTileRows, rank_pad_of(R8), lane,
                                   bfac);
}

// The producer's x for chunk c: BN activation rows from b0, two 64-column boxes (swizzled) into dst, counted on
// mbarrier `full` (one lane).
template <int BN>
__device__ __forceinline__ void tma_x_chunk(uint32_t dst, const CUtensorMap* x_map, int c, int b0, uint32_t full) {
  cuda_ptx::mbar_arrive_expect_tx(full, wg_x_bytes(BN));
  cuda_ptx::tma_load_2d(dst, x_map, c * gpu_layout::kTileCols, b0, full);
  cuda_ptx::tma_load_2d(dst + wg_x_bytes(BN) / 2, x_map, c * gpu_layout::kTileCols + 64, b0, full);
}

// The epilogue of a CTA's tile (rows row_cta x 128 .., activation rows b0 .. + BN - 1), called by the consumer warps
// alone. acc[4j + e]: CTA row 16 warp + gq + 8 (e / 2), activation row b0 + 8j + 2t + e % 2. With split k, the f32
// partial sums of split `split`; else bf16 outputs through shared memory at `staging` (the x ring: every chunk has
// landed and every wgmma reading it has completed), so that each activation row's 256 bytes go out whole.
template <int BN>
__device__ __forceinline__ void store_wg_tile(const MmaArgs& g, const float (&acc)[BN / 2], float* partial, int split,
                                              int row_cta, int b0, unsigned char* staging) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  const int64_t row0 = static_cast<int64_t>(row_cta) * kWgCtaRows;
  const int lrow = warp * gpu_layout::kTileRows + gq;
  if (partial) {
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t b = b0 + 8 * j + 2 * t + (e & 1), i = row0 + lrow + 8 * (e >> 1);
        if (b < g.batch && i < g.rows) partial[(split * g.batch + b) * g.rows + i] = acc[4 * j + e];
      }
    return;
  }
  // The producer warpgroup has left: the barriers count the consumers only.
  cuda_ptx::named_barrier_sync<kWgConsumers>(1);
  uint16_t* out = reinterpret_cast<uint16_t*>(staging);  // [BN][kWgOutStride]
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const __nv_bfloat16 h = __float2bfloat16_rn(acc[4 * j + e]);
      out[(8 * j + 2 * t + (e & 1)) * kWgOutStride + lrow + 8 * (e >> 1)] = *reinterpret_cast<const uint16_t*>(&h);
    }
  cuda_ptx::named_barrier_sync<kWgConsumers>(1);
  const bool whole = g.rows % 8 == 0;  // 16-byte pieces are aligned and never straddle the end
  for (int i = static_cast<int>(threadIdx.x); i < BN * 16; i += kWgConsumers) {
    const int bl = i / 16, p = i % 16;
    const int64_t b = b0 + bl, r = row0 + 8 * p;
    if (b >= g.batch || r >= g.rows) continue;
    const uint16_t* src = out + bl * kWgOutStride + 8 * p;
    uint16_t* dst = g.y + b * g.rows + r;
    if (whole) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int q = 0; q < 8 && r + q < g.rows; ++q) dst[q] = src[q];
    }
  }
}

// Split k of the last wave only (WgTailPlan, wgmma_gemm.hpp): a grid of several waves whose last is part full. CTAs
// below dp_ctas own whole tiles (blockIdx.x = tile, as without it); then tile dp_ctas + q is split `splits` ways, part
// p of it on CTA dp_ctas + q splits + p, so the tail's CTAs come last in launch order.
struct WgTail {
  int dp_ctas = 0, splits = 0, tiles_per_split = 0;
  float* partial = nullptr;  // [tail tiles][splits][wg_tail_part_floats(BN)]
  int* arrivals = nullptr;   // [tail tiles], zero before the launch (and after it: tail_sum)
};
// One part's partial sums: [BN / 2][kWgConsumers], each consumer thread's accumulators, coalesced.
constexpr int64_t wg_tail_part_floats(int bn) { return int64_t{bn / 2} * kWgConsumers; }
// A CTA's work: its output tile (row CTAs fastest, then batch tiles), its split and chunk range, and for a tail
// split its tail tile q (else -1).
struct WgWork {
  int tile, split, c0, c1, tail_q;
};
__device__ __forceinline__ WgWork wg_work_of(const WgTail& tail, int tiles_per_split, int col_tiles) {
  const int b = static_cast<int>(blockIdx.x);
  if (tail.splits > 1 && b >= tail.dp_ctas) {
    const int q = (b - tail.dp_ctas) / tail.splits, part = (b - tail.dp_ctas) % tail.splits;
    const int c0 = part * tail.tiles_per_split;
    return {tail.dp_ctas + q, part, c0, min(c0 + tail.tiles_per_split, col_tiles), q};
  }
  const int split = static_cast<int>(blockIdx.y), c0 = split * tiles_per_split;
  return {b, split, c0, min(c0 + tiles_per_split, col_tiles), -1};
}

// A tail split's epilogue, by the consumer warps: stores this part's accumulators, arrives on the tile's counter, and
// returns whether this CTA arrived last; that one then holds in acc the sum of every part, added in part order (so the
// bits do not depend on which part finishes last) and stores the tile (add_split_parts). `flag` is 4 bytes of shared
// memory that no consumer reads or writes any more (the x ring).
template <int BN>
__device__ __forceinline__ bool tail_sum(float (&acc)[BN / 2], const WgTail& tail, const WgWork& w, void* flag) {
  float* parts = tail.partial + w.tail_q * tail.splits * wg_tail_part_floats(BN);
  return add_split_parts<BN / 2, kWgConsumers>(acc, parts, w.split, tail.splits, tail.arrivals + w.tail_q, flag);
}

// Split k for a grid of `ctas` CTAs on `slots` resident CTA slots, each split costing `split_bytes` of partial sums
// (wgmma_gemm.cu).
int choose_splits(int64_t ctas, int64_t slots, int col_tiles, int64_t split_bytes);

// What the wgmma launchers work out before a launch: the split count (`splits`, or choose_splits where 0) and chunks
// per split, x's tensor map (boxes of bn rows x 64 columns) and, with split k, where the parts are added:
// - `sum`: in the kernel (tail_sum over every tile, dp_ctas 0; CTA q splits + p runs part p of tile q, a grid of
//   tiles x splits CTAs in x), the parts of `part_floats` floats each in the stream's workspace (split_workspace.hpp),
//   where the launcher passes part_floats > 0 and they fit;
// - else `partial`: a per-call buffer [splits][batch][rows] (grid y = the split), added by finish_gemm_launch's sum
//   kernel and freed there.
// Returns a CUDA error code.
struct WgLaunchPlan {
  int splits = 1, tiles_per_split = 0;
  float* partial = nullptr;
  WgTail sum;
  CUtensorMap x_map;
  dim3 grid(int64_t tiles) const {
    return sum.splits > 1 ? dim3(static_cast<unsigned>(tiles * splits), 1)
                          : dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(splits));
  }
};
int plan_wg_launch(const MmaArgs& g, int64_t ctas, int64_t slots, int bn, cudaStream_t stream, WgLaunchPlan& plan,
                   int splits = 0, int64_t part_floats = 0);
// The launch's sum and grid: plan's, or where plan took one split and the grid's last wave is part full
// (choose_tail_split, `slots` resident CTAs), that wave's tiles split k, their parts (`part_floats` each) and counters
// in the stream's workspace where they fit, else in a per-call buffer (`owned`, freed by the caller behind the
// launch) with its counters zeroed. Returns a CUDA error code.
int plan_wg_tail(const MmaArgs& g, int64_t tiles, int64_t slots, int64_t part_floats, cudaStream_t stream,
                 const WgLaunchPlan& plan, WgTail& tail, dim3& grid, void*& owned);

}  // namespace hilo::lords::cuda_detail
