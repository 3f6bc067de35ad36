// Tensor-core GEMM from the tiled codes (see mma_gemm.hpp for the maths). Work split: a CTA of 8 warps owns 128
// weight rows (one 16-row tile per warp), 8 NT activation rows and a range of 128-column chunks. Per chunk the
// activations (and LoRDS' A^T) arrive by cp.async in a double-buffered shared-memory ring, each warp decodes its
// tile's codes (prefetched a chunk ahead in registers) into bf16 A fragments once, and multiplies them against all
// NT n-tiles, read with ldmatrix.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>

#include "../gpu_layout.hpp"
#include "gemm_common.cuh"
#include "lords_gemv.hpp"
#include "mma_common.cuh"
#include "mma_gemm.hpp"
#include "split_sum.cuh"
#include "split_workspace.hpp"
#include "wgmma_gemm.hpp"
#include "wgmma_scale_gemm.hpp"

namespace hilo::lords::cuda_detail {
namespace {

using gpu_layout::kTileCols;
using gpu_layout::kTileRows;

constexpr int kRowWarps = kGemmRowTiles;  // row tiles per CTA (one per warp of each batch group)
constexpr int kSteps = gpu_layout::kStepsPerTile;
constexpr int kXStride = kTileCols + 8;  // bf16 per staged activation row: 272 bytes, so ldmatrix rows hit distinct banks


constexpr int kMaxClusterSplits = 2;  // splits that add their sums through a cluster (launch_variant says why)
constexpr int kMaxSmem = 227 * 1024;    // dynamic shared memory a CTA may have (sm_90)
constexpr int kSmemPerSm = 228 * 1024;  // shared memory of an SM

// Shared memory of a GEMM CTA: the pair table, `stages` ring slots and, with the cluster sum, the CTA's sums (over the
// ring, or past it where they are larger), then the inbox with its padding. gemm_inbox_offset: where the inbox starts.
constexpr int gemm_inbox_offset(int lut, int slot, int stages, int sum_bytes, bool cluster_sum) {
  return lut + std::max(stages * slot, cluster_sum ? sum_bytes : 0);
}
constexpr int gemm_inbox_bytes(int sum_bytes, bool cluster_sum) {
  return cluster_sum ? sum_bytes + 4 * kMaxClusterSplits : 0;
}
constexpr int gemm_smem_bytes(int lut, int slot, int stages, int sum_bytes, bool cluster_sum) {
  return gemm_inbox_offset(lut, slot, stages, sum_bytes, cluster_sum) + gemm_inbox_bytes(sum_bytes, cluster_sum);
}

// R8: LoRDS' groups of 8 ranks (with_rank_groups; 0: block-wise). WB: warp groups along the batch (each group: 8
// warps, one per row tile, NT n-tiles each). WB = 2 doubles the warps per SM at the cost of decoding each fragment twice; it measured 10-20%
// slower (docs/results/lords-cuda.md), so the launches use WB = 1 and the parameter stays for such A/B runs.
// Occ: CTAs per SM the kernel is built for (registers and shared memory of one CTA within 1 / Occ of the SM's).
template <int Bits, int NT, int R8, int WB, int Occ = 1>
struct GemmShape {
  static constexpr int kThreads = 32 * kRowWarps * WB;
  static constexpr bool kLords = R8 > 0;
  static constexpr int kAStride = a_t_stride(R8), kGroups = k16_groups(R8);
  static constexpr int kBatchRows = 8 * NT * WB, kPairs = 1 << (2 * Bits), kWords = 2 * Bits, kTileBytes = 256 * Bits;
  static constexpr int kLutBytes = 4 * kPairs * 32;
  // Small-batch tiles add their split-k sums through the cluster (cluster_sum_push), in place of a partial buffer
  // and a second kernel: the CTA's sums, [kBatchRows][kCtaRows] floats, over the staging ring once the main loop is
  // done, and the inbox (+ padding) after it: the other CTAs store into it while this one may still be staging.
  static constexpr int kCtaRows = kRowWarps * kTileRows, kSums = kBatchRows * kCtaRows;
  static constexpr bool kClusterSum = NT <= 4;
  // Shared-memory ring slots for x (and LoRDS' A^T or the block scales): chunk c + kStages - 1 is requested while
  // chunk c is used. With two slots the small-batch tiles waited for each chunk's x from L2 (their few mmas per chunk
  // hide nothing); four keep three chunks in flight (three where four do not fit: 32 rows at rank 128). The large
  // tiles keep two: their mmas hide the wait, and they need the shared memory.
  static constexpr int kXBytes = 2 * kBatchRows * kXStride, kABytes = kLords ? 2 * kTileCols * kAStride : 0;
  static constexpr int kSlotBytes = kXBytes + kABytes + (kLords ? 0 : kRowWarps * kChunkBlocks * kTileRows * 2);
  static constexpr int kSmemLimit = Occ == 1 ? kMaxSmem : kSmemPerSm / Occ - 1024;  // (1 KB per CTA is reserved)
  static constexpr int kStages = NT > 4 ? 2
                                 : gemm_smem_bytes(kLutBytes, kSlotBytes, 4, 4 * kSums, kClusterSum) <= kSmemLimit ? 4
                                 : gemm_smem_bytes(kLutBytes, kSlotBytes, 3, 4 * kSums, kClusterSum) <= kSmemLimit ? 3
                                                                                                                   : 2;
  // Chunks of codes in flight per warp, a register ring: 4 for the small-batch tiles (NT <= 4; one chunk ahead left
  // the H100 at 14-25% of its DRAM bandwidth at batch 16 with one CTA per SM), 2 where NT = 16 needs the registers for
  // its accumulators, and 2 in the two-CTA build (Occ = 2: 128 registers a thread, twice the warps per SM).
  static constexpr int kDepth = NT <= 4 && Occ == 1 ? 4 : 2;
  static constexpr int kInbox = gemm_inbox_offset(kLutBytes, kSlotBytes, kStages, 4 * kSums, kClusterSum);
  static constexpr int kSmem = kInbox + gemm_inbox_bytes(4 * kSums, kClusterSum);
  static_assert(kSmem <= kSmemLimit, "the GEMM's shared memory exceeds what a CTA may have");
};

template <int Bits, int NT, int R8, int WB, int Occ>
__global__ void __launch_bounds__(32 * kRowWarps * WB, Occ)
    mma_gemm_kernel(MmaArgs g, GemmExtras ex, int tiles_per_split, float* partial, SplitWorkspace sum, int pdl) {
  using S = GemmShape<Bits, NT, R8, WB, Occ>;
  constexpr int kThreads = S::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);                           // [kPairs][32]
  constexpr int kStages = S::kStages;
  uint16_t* xs = reinterpret_cast<uint16_t*>(smem + S::kLutBytes);  // [kStages][kBatchRows][kXStride]
  uint16_t* as = reinterpret_cast<uint16_t*>(smem + S::kLutBytes + kStages * S::kXBytes);  // [kStages][128][kAStride]
  // Block-wise: the scales of the chunk's blocks, [kStages][8 row tiles][kChunkBlocks][16 rows].
  uint16_t* scale_s = reinterpret_cast<uint16_t*>(smem + S::kLutBytes + kStages * (S::kXBytes + S::kABytes));
  // Split k over a cluster (launch_variant): every CTA of it must be running before the others store into its shared
  // memory (cluster_sum_push waits for this arrival).
  const bool sum_in_cluster = S::kClusterSum && partial == nullptr && sum.partial == nullptr && gridDim.x > 1;
  if (sum_in_cluster) cluster_arrive_relaxed();
  gemm_pdl_start(pdl);
  const int warp = threadIdx.x / 32 % kRowWarps, group = threadIdx.x / 32 / kRowWarps;
  const int lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  const int c0 = blockIdx.x * tiles_per_split, c1 = min(c0 + tiles_per_split, g.col_tiles);
  const int mt = blockIdx.y * kRowWarps + warp;
  const bool active = mt < g.row_tiles;
  const int mtc = active ? mt : 0;
  const int64_t b0 = static_cast<int64_t>(blockIdx.z) * S::kBatchRows;
  const uint8_t* codes = g.codes + static_cast<int64_t>(mtc) * g.col_tiles * S::kTileBytes;

  // Staging: each thread copies the same 16-byte piece of fixed rows every chunk, so the row pointers and the
  // batch bounds are worked out once here; only the column moves.
  constexpr int kXPerThread = S::kBatchRows * 16 / kThreads;  // 16-byte pieces of x per thread and chunk
  const int x_piece = threadIdx.x % 16, x_row = threadIdx.x / 16;
  const uint16_t* x_src = g.x + (b0 + x_row) * g.cols + x_piece * 8;
  constexpr int kXRowsPerPass = kThreads / 16;
  const int64_t x_step = kXRowsPerPass * g.cols;
  unsigned x_in = 0;                   // bit k: row x_row + 16 k exists
#pragma unroll
  for (int k = 0; k < kXPerThread; ++k) x_in |= (b0 + x_row + kXRowsPerPass * k < g.batch ? 1u : 0u) << k;
  const uint32_t x_dst0 = smem_u32(xs) + (x_row * kXStride + x_piece * 8) * 2;
  auto stage = [&](int c) {  // chunk c into ring slot (c - c0) % kStages; always one commit group per call
    if (c < c1) {
      const int slot = (c - c0) % kStages;
      const int64_t col0 = static_cast<int64_t>(c) * kTileCols;
      const bool col_in = col0 + x_piece * 8 < g.cols;
      const uint32_t xdst = x_dst0 + slot * S::kBatchRows * kXStride * 2;
#pragma unroll
      for (int k = 0; k < kXPerThread; ++k) {
        const bool in = col_in && (x_in >> k & 1);
        cp_async16(xdst + k * kXRowsPerPass * kXStride * 2, in ? x_src + k * x_step + col0 : g.x, in ? 16 : 0);
      }
      if constexpr (S::kLords)
        stage_chunk_a_t<rank_pad_of(R8), R8, S::kAStride, kThreads>(
            ex.a_t, int64_t{c} * kTileCols, as + slot * kTileCols * S::kAStride, threadIdx.x);
      else
        stage_chunk_scales(g, blockIdx.y, c, scale_s + slot * kRowWarps * kChunkBlocks * kTileRows);
    }
    cp_async_commit();
  };

  // Launched early (pdl), the CTA touches only weights (codes, B, the codebook) before griddep_wait, and x (staged
  // with A^T or the block scales) after it; a plain launch requests x first, as its L2 hits would otherwise queue
  // behind the codes.
  const bool x_first = pdl == kGemmPlain;
  if (x_first)
#pragma unroll
    for (int i = 0; i + 1 < kStages; ++i) stage(c0 + i);
  constexpr int PD = S::kDepth;
  uint32_t ring[PD][S::kWords];  // slot d holds chunk c0 + d + k PD
#pragma unroll
  for (int d = 0; d < PD; ++d) {
#pragma unroll
    for (int i = 0; i < S::kWords; ++i) ring[d][i] = 0;
    if (active && c0 + d < c1) load_tile<Bits>(codes + static_cast<int64_t>(c0 + d) * S::kTileBytes, lane, ring[d]);
  }
  fill_bf16_pair_table<Bits>(lut, g.values_h, kThreads);
  // LoRDS: this warp's rows of B as the A operand of the scale mma (rank as k), in registers for the whole call.
  uint32_t bfac[S::kLords ? S::kGroups : 1][4];
  if constexpr (S::kLords)
    load_b_factors<S::kGroups>(g.b, static_cast<int64_t>(mtc) * kTileRows, rank_pad_of(R8), lane, bfac);
  griddep_wait();  // x may still be written by the previous kernel (a no-op in a plain launch)
  if (!x_first)
#pragma unroll
    for (int i = 0; i + 1 < kStages; ++i) stage(c0 + i);
  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  const uint32_t lut_lane = smem_u32(lut) + 4 * lane;
  // ldmatrix.x4 row addresses: matrix m = lane / 8 covers n-rows 8 (m / 2) .. + 7 at k offset 8 (m % 2).
  const uint32_t x_lane =
      smem_u32(xs) + ((group * NT * 8 + lane % 8 + (lane / 16) * 8) * kXStride + (lane / 8) % 2 * 8) * 2;

  for (int cb = c0; cb < c1; cb += PD) {
#pragma unroll
    for (int d = 0; d < PD; ++d) {  // unrolled, so the ring stays in registers
      const int c = cb + d;
      if (c >= c1) break;
      const uint32_t(&cur)[S::kWords] = ring[d];
      cp_async_wait<kStages - 2>();  // chunk c's group has landed (chunks c .. c + kStages - 2 were requested)
      __syncthreads();               // ... for every thread, and every warp is done with chunk c - 1's slot
      stage(c + kStages - 1);        // into chunk c - 1's slot
      if (active) {
        const int slot = (c - c0) % kStages;
        const uint32_t x_base = x_lane + slot * S::kBatchRows * kXStride * 2;
        const uint16_t* a_base = as + slot * kTileCols * S::kAStride;
        const uint16_t* sc_base = scale_s + (slot * kRowWarps + warp) * kChunkBlocks * kTileRows + gq;
        const uint32_t step_blocks = S::kLords ? 0 : chunk_step_blocks(g, c);
        // Software pipeline over the 8 steps: the shared-memory loads of step s + 1 (and LoRDS' scale mma) are issued
        // around the mmas of step s, so their latency hides behind them.
        uint32_t bfr[2][NT / 2][4], pair[2][4], scl[2] = {};
        uint32_t afr[2][S::kLords ? S::kGroups : 1][2];  // LoRDS: A^T fragments of the next step
        float sc[2][4];                          // LoRDS: S of the next step
        auto load_step = [&](int s, int p) {
#pragma unroll
          for (int j = 0; j < NT / 2; ++j) ldmatrix_x4(x_base + (j * 16 * kXStride + 16 * s) * 2, bfr[p][j]);
          lookup_pairs<Bits>(cur, s, lut_lane, pair[p]);
          if constexpr (S::kLords) load_a_t_frags<R8, S::kAStride>(a_base, s, lane, afr);
          else scl[p] = step_scales(sc_base, step_blocks, s);
        };
        load_step(0, 0);
        if constexpr (S::kLords) scale_mma<R8>(bfac, afr, sc);
#pragma unroll
        for (int s = 0; s < kSteps; ++s) {
          const int p = s & 1;
          uint32_t a[4];
          if constexpr (S::kLords) lords_weights(pair[p], sc, a);
          else blockwise_weights(pair[p], scl[p], a);
          if (s + 1 < kSteps) load_step(s + 1, p ^ 1);
#pragma unroll
          for (int j = 0; j < NT / 2; ++j) {
            mma_bf16(acc[2 * j], a, bfr[p][j][0], bfr[p][j][1]);
            mma_bf16(acc[2 * j + 1], a, bfr[p][j][2], bfr[p][j][3]);
          }
          if constexpr (S::kLords)
            if (s + 1 < kSteps) scale_mma<R8>(bfac, afr, sc);
        }
      }
      if (active && c + PD < c1) load_tile<Bits>(codes + static_cast<int64_t>(c + PD) * S::kTileBytes, lane, ring[d]);
    }
  }

  if constexpr (S::kClusterSum) {
    if (sum_in_cluster) {  // the CTA's sums [batch row][CTA row], then added over the cluster in split order
      cp_async_wait<0>();  // (the last groups are empty) the ring becomes the CTA's sums ...
      __syncthreads();     // ... once every warp is done reading its last chunk
      float* sums = reinterpret_cast<float*>(smem + S::kLutBytes);
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          sums[(group * NT * 8 + 8 * j + 2 * t + (e & 1)) * S::kCtaRows + warp * kTileRows + gq + 8 * (e >> 1)] =
              acc[j][e];
      __syncthreads();
      const int64_t row0 = static_cast<int64_t>(blockIdx.y) * S::kCtaRows;
      cluster_sum_push(sums, reinterpret_cast<float*>(smem + S::kInbox), S::kSums, [&](int i, float v) {
        const int64_t b = b0 + i / S::kCtaRows, r = row0 + i % S::kCtaRows;
        if (b < g.batch && r < g.rows) {
          const __nv_bfloat16 h = __float2bfloat16_rn(v);
          g.y[b * g.rows + r] = *reinterpret_cast<const uint16_t*>(&h);
        }
      });
      return;
    }
  }
  // Split k added in the kernel through the stream's workspace (add_split_parts): parts [tiles][splits][NT * 4]
  // [threads] floats and a counter per tile (tile = blockIdx.y + gridDim.y blockIdx.z, part = blockIdx.x). Every
  // thread takes part (the barriers of add_split_parts); the last part stores y.
  if (sum.partial) {
    cp_async_wait<0>();  // (the last groups are empty) the flag lies over the ring ...
    const int tile = blockIdx.y + gridDim.y * blockIdx.z;
    float* parts = sum.partial + int64_t{tile} * gridDim.x * (NT * 4 * kThreads);
    if (!add_split_parts<NT * 4, kThreads>(reinterpret_cast<float(&)[NT * 4]>(acc), parts, blockIdx.x, gridDim.x,
                                           sum.counters + tile, smem + S::kLutBytes))
      return;  // (... which add_split_parts writes only after a barrier: every warp is done reading it)
    partial = nullptr;
  }
  if (!active) return;
  const int64_t row = static_cast<int64_t>(mt) * kTileRows + gq;
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t b = b0 + group * NT * 8 + 8 * j + 2 * t + (e & 1), i = row + 8 * (e >> 1);
      if (b >= g.batch || i >= g.rows) continue;
      if (partial) {
        partial[(blockIdx.x * g.batch + b) * g.rows + i] = acc[j][e];
      } else {
        const __nv_bfloat16 h = __float2bfloat16_rn(acc[j][e]);
        g.y[b * g.rows + i] = *reinterpret_cast<const uint16_t*>(&h);
      }
    }
}

// y = bf16(sum over splits in order of the partial sums [splits][batch][rows]). Two rewrites measured slower than
// this plain loop (H100, 2026-12-06, docs/results/lords-cuda.md): 8 splits' loads in flight with a start by
// programmatic dependent launch, then 16-byte loads of 4 elements per thread (up to 1.6x slower).
__global__ void sum_splits_kernel(const float* partial, int splits, int64_t count, uint16_t* y) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = partial[e];
    for (int z = 1; z < splits; ++z) v += partial[z * count + e];
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    y[e] = *reinterpret_cast<const uint16_t*>(&h);
  }
}

template <int Bits, int NT, int R8, int WB, int Occ>
int launch_variant(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  using S = GemmShape<Bits, NT, R8, WB, Occ>;
  constexpr auto kernel = mma_gemm_kernel<Bits, NT, R8, WB, Occ>;
  if (const int e = allow_smem_once<kernel>(g.device, S::kSmem); e != 0) return e;
  const int64_t row_ctas = (g.row_tiles + kRowWarps - 1) / kRowWarps, batch_tiles = (g.batch + S::kBatchRows - 1) / S::kBatchRows;
  if (batch_tiles > 65535 || row_ctas > 65535) return static_cast<int>(cudaErrorInvalidValue);
  // Split k. The large tiles (NT = 16, one CTA per SM) split until the grid covers the SMs once (at least 2 chunks
  // per split); the partial sums cost splits * batch * rows * 8 bytes of traffic. The small-batch tiles (NT <= 4) are
  // bound by how many code bytes are in flight, not by arithmetic: they take as many splits as fill every resident
  // CTA slot once (at least 2 chunks each). H200, NF4 B=64, batch 16, forced counts (docs/results/lords-cuda.md):
  // 4096x4096 8 splits 10.6 us against 14.6 (4), 11.6 (16), 14.9 (32); 1024x4096 16: 6.5 against 7.6-11.6;
  // 4096x14336 8: 24.6 against 26.0-40.9. HILO_GEMM_SPLIT=1..64 forces the count for sweeps.
  const int forced = forced_gemm_splits();
  const int64_t ctas = row_ctas * batch_tiles;
  const int64_t slots = int64_t{S::kClusterSum ? ctas_per_sm<kernel>(g.device, S::kThreads, S::kSmem) : 1} * g.sm_count;
  int splits = forced > 0                 ? forced
               : S::kClusterSum && slots > 0 ? static_cast<int>(std::min<int64_t>(slots / ctas, g.col_tiles))
                                          : static_cast<int>((g.sm_count + ctas - 1) / ctas);
  splits = std::clamp(splits, 1, std::max(1, forced > 0 ? g.col_tiles : g.col_tiles / 2));
  const int tiles_per_split = (g.col_tiles + splits - 1) / splits;
  splits = (g.col_tiles + tiles_per_split - 1) / tiles_per_split;
  // Two splits form a cluster and add their sums in the kernel (14336x4096 at batch 16: 26.4 us; 29.0-29.3 with 4 or 8
  // through the partial buffer). More splits go through the partial buffer and a second kernel: 8 as a cluster ran
  // 1.6-1.7x slower than 8 through the buffer on 4096x4096 and 4096x14336 (the CTAs of a cluster are scheduled
  // together and wait for each other). HILO_GEMM_CLUSTER=0: never a cluster, for A/B runs.
  static const bool cluster_allowed = env_flag("HILO_GEMM_CLUSTER", true);
  const bool cluster = cluster_allowed && S::kClusterSum && splits > 1 && splits <= kMaxClusterSplits;
  // More splits add their parts in the kernel through the stream's workspace where it is on and they fit
  // (split_workspace.hpp), else through a per-call partial buffer and a second kernel.
  SplitWorkspace sum;
  float* partial = nullptr;
  const int64_t count = g.batch * g.rows;
  if (splits > 1 && !cluster) {
    constexpr int64_t kPartFloats = int64_t{NT} * 4 * S::kThreads;
    if (const SplitWorkspace* ws = split_workspace(g.device, stream, ctas * splits, kPartFloats, ctas, NT * 4))
      sum = *ws;
    if (!sum.partial) {
      const cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(float) * splits * count, stream);
      if (e != cudaSuccess) return static_cast<int>(e);
    }
  }
  cudaLaunchAttribute attrs[2];
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(splits), static_cast<unsigned>(row_ctas), static_cast<unsigned>(batch_tiles));
  cfg.blockDim = dim3(S::kThreads);
  cfg.dynamicSmemBytes = S::kSmem;
  cfg.stream = stream;
  cfg.attrs = attrs;
  if (cluster) {
    attrs[0].id = cudaLaunchAttributeClusterDimension;
    attrs[0].val.clusterDim.x = static_cast<unsigned>(splits);
    attrs[0].val.clusterDim.y = 1;
    attrs[0].val.clusterDim.z = 1;
    cfg.numAttrs = 1;
  }
  // PDL where nothing stands between two calls (one split, a cluster sum, the workspace): the next call's CTAs start
  // on the SMs this grid leaves idle (block-wise 14336x4096 at batches 16-32: 1.10x). A block-wise grid with a
  // partial buffer follows the previous call's sum kernel, so it cannot start early, and staging x after the weights
  // cost it 0.94-0.98x (4096x4096 at batch 16: 12.2 against 11.6 us): a plain launch there, x first. LoRDS with a
  // partial buffer gained from PDL all the same (1024x4096 at batches 4-16: 1.04-1.05x; why is not known), so it
  // keeps it. H100, twenty-sixth session, same call. HILO_GEMM_MMA_PDL=1 / 0: PDL / plain everywhere, for A/B runs.
  static const int mma_pdl = env_override("HILO_GEMM_MMA_PDL", 0, 1, -1);
  const bool early = mma_pdl >= 0 ? mma_pdl == 1 : partial == nullptr || S::kLords;
  const GemmPdl pdl = early ? gemm_pdl_launch(cfg, attrs) : kGemmPlain;
  return finish_gemm_launch(cudaLaunchKernelEx(&cfg, kernel, g, ex, tiles_per_split, partial, sum, static_cast<int>(pdl)),
                            partial, splits, g, stream);
}

template <int Bits, int NT, int WB>
int launch_nt(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  // LoRDS at ranks 49-64 (7 or 8 groups of 8) with up to 32 rows: two CTAs per SM (128 registers, 2-chunk code ring,
  // 2-3 ring slots). The one-CTA build takes 170-200 registers there, so an SM ran 8 warps, latency-bound. H100, B=64,
  // the two 14336-wide layers at batches 4-32, same call: NF4 1.09-1.20x (e.g. 14336x4096 batch 16 52.4 -> 45.5 us),
  // NF3 1.05-1.12x, NF2 1.04-1.10x (docs/results/lords-cuda.md). At ranks 17-32 it measured 0.98-1.02x (NF4), so they
  // keep one CTA. HILO_GEMM_OCC2=0|1 forces either (ranks 17-64).
  static const int two_ctas = env_override("HILO_GEMM_OCC2", 0, 1, -1);
  return with_rank_groups(g, [&](auto r8) {
    constexpr int kR8 = decltype(r8)::value;
    if constexpr (NT <= 4 && kR8 >= 3 && kR8 <= 8)
      if (two_ctas == 1 || (two_ctas < 0 && kR8 >= 7))
        return launch_variant<Bits, NT, kR8, WB, 2>(g, ex, stream);
    return launch_variant<Bits, NT, kR8, WB, 1>(g, ex, stream);
  });
}

template <int Bits>
int launch_bits(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  // 32 activation rows per CTA for small batches (less padding), 128 above (each decoded fragment feeds 16 mmas).
  // Two groups of 8 warps with 64 rows each (WB = 2) measured slower at 256 and 1024 rows on H200 (165 against
  // 183 us on 4096x4096 x 1024, docs/results/lords-cuda.md), so one group it is.
  // 16 rows per CTA up to batch 16 (HILO_GEMM_NT4=1: 32, for A/B runs).
  static const bool nt4 = env_flag("HILO_GEMM_NT4", false);
  if (g.batch <= 16 && !nt4) return launch_nt<Bits, 2, 1>(g, ex, stream);
  return g.batch <= 32 ? launch_nt<Bits, 4, 1>(g, ex, stream) : launch_nt<Bits, 16, 1>(g, ex, stream);
}

}  // namespace

int launch_sum_splits(const float* partial, int splits, int64_t count, uint16_t* y, int sm_count, cudaStream_t stream) {
  const int blocks = static_cast<int>(std::min<int64_t>(4 * sm_count, (count + 255) / 256));
  sum_splits_kernel<<<blocks, 256, 0, stream>>>(partial, splits, count, y);
  return static_cast<int>(cudaGetLastError());
}

bool use_mma_gemm(const MmaArgs& g) {
  static const int forced = [] {
    const char* v = std::getenv("HILO_LORDS_GEMM");
    return v ? std::atoi(v) : -1;
  }();
  if (forced == 0 || forced == 1) return forced == 1;
  // Block-wise: where the GEMV would need more than one pass over the codes (8 rows). LoRDS: from 2 rows, since the
  // GEMV's multi-row variant spends 128 / rank_pad mma columns per row (H200: 60 us against 20 us for 4 rows through
  // the GEMM at rank 32), and from 1 row at padded rank >= 64, where the GEMM's work for 1 row equals its work for 4
  // (zero-filled rows), measured at 52 / 72 us against the GEMV's 92 / 116 us on the two 14336-wide shapes
  // (docs/results/lords-cuda.md). LoRDS at 1 row and rank <= 64 goes to its own GEMV (lords_gemv.cu) first.
  if (g.lords) return !lords_gemv_serves(g) && (g.batch > 1 || g.rank_pad >= 64);
  return g.batch > 8;
}

int launch_mma_gemm(const MmaArgs& g, const GemmExtras& ex, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  // The scale-on-wgmma GEMM first: where its rule (or HILO_GEMM_WGS=1) takes a LoRDS call, up to 256 rows, it is
  // faster than the wgmma GEMM; a test that forces the wgmma GEMM still gets it.
  if (use_wgmma_scale_gemm(g) && !wgmma_gemm_forced_on()) return launch_wgmma_scale_gemm(g, ex, stream_ptr);
  if (use_wgmma_gemm(g)) return launch_wgmma_gemm(g, ex, stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, ex, stream); });
}

}  // namespace hilo::lords::cuda_detail
