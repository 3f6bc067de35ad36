// The batch GEMM on wgmma (sm_90a; see wgmma_gemm.hpp). Work split: a CTA of two warpgroups owns 128 weight rows
// (warp w decodes the 16-row tile w; warpgroup h multiplies rows 64 h .. + 63 as wgmma's M), BN activation rows
// (wgmma's N) and a range of 128-column chunks (k). The activations of a chunk arrive by cp.async in a ring of
// shared-memory slots in wgmma's 128-byte-swizzled K-major layout (two 64-column halves), LoRDS' A^T or the block
// scales beside them. Each warp decodes its tile one 16-column step ahead of its warpgroup's wgmma, from codes
// prefetched two chunks ahead in registers, while the two previous steps' wgmmas may still run; with three or more
// slots they stay in flight across the barrier that opens the next chunk.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "../gpu_layout.hpp"
#include "gemm_common.cuh"
#include "wgmma_gemm.hpp"
#include "wgmma_rs.cuh"

namespace hilo::lords::cuda_detail {
namespace {

using cuda_ptx::smem_desc_sw128;
using cuda_ptx::swizzle128;
using gpu_layout::kTileCols;
using gpu_layout::kTileRows;
constexpr int kSteps = gpu_layout::kStepsPerTile;
constexpr int kThreads = 32 * kGemmRowTiles;
constexpr int kCtaRows = kGemmRowTiles * kTileRows;
constexpr int kMaxSmem = 227 * 1024;  // an H100's / H200's limit per CTA

// Shared memory of a ring slot: BN activation rows x 128 columns, and LoRDS' A^T chunk or the block scales.
constexpr int wg_slot_bytes(int rp, int bn) {
  return bn * 2 * kTileCols + (rp > 0 ? 2 * kTileCols * (16 * rp + 8) : 2 * kGemmRowTiles * kChunkBlocks * kTileRows);
}
constexpr int wg_lut_bytes(int bits) { return 4 * (1 << (2 * bits)) * 32; }
// Whether two slots fit: not 256 activation rows at rank 128 (launch_fitting halves them there).
constexpr bool wg_fits(int bits, int rp, int bn) { return wg_lut_bytes(bits) + 2 * wg_slot_bytes(rp, bn) <= kMaxSmem; }

template <int Bits, int RP, int BN>
struct WgShape {
  static constexpr bool kLords = RP > 0;
  static constexpr int kRankPad = 16 * RP, kAStride = kRankPad + 8;  // A^T rows padded: conflict-free fragment loads
  static constexpr int kWords = 2 * Bits, kTileBytes = 256 * Bits;
  static constexpr int kLutBytes = wg_lut_bytes(Bits);
  static constexpr int kHalfBytes = BN * 128;  // 64 columns of the chunk for all BN rows (a swizzled tile)
  static constexpr int kXBytes = 2 * kHalfBytes;
  static constexpr int kABytes = kLords ? 2 * kTileCols * kAStride : 0;
  static constexpr int kScaleBytes = kLords ? 0 : 2 * kGemmRowTiles * kChunkBlocks * kTileRows;
  static constexpr int kSlotBytes = wg_slot_bytes(RP, BN);
  static_assert(kSlotBytes == kXBytes + kABytes + kScaleBytes && wg_fits(Bits, RP, BN));
  static_assert(kLutBytes % 1024 == 0 && kSlotBytes % 1024 == 0);  // swizzled tiles start 1024-byte aligned
  // Ring slots: 4 where they fit (chunks staged two ahead), else 3 (one ahead), else 2 (one ahead, and each chunk's
  // wgmmas complete before the next chunk's barrier).
  static constexpr int kSlots = kLutBytes + 4 * kSlotBytes <= kMaxSmem ? 4 : kLutBytes + 3 * kSlotBytes <= kMaxSmem ? 3 : 2;
  static constexpr int kAhead = kSlots == 4 ? 2 : 1;
  static constexpr int kSmem = kLutBytes + kSlots * kSlotBytes;
  static constexpr int kOutStride = kCtaRows + 8;  // bf16 per staged output row (the epilogue, over the ring)
  static_assert(BN * kOutStride * 2 <= 2 * kSlotBytes);
  static constexpr int kDepth = 2;  // chunks of codes per warp in the register ring
};

template <int Bits, int RP, int BN>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_gemm_kernel(MmaArgs g, GemmExtras ex, int tiles_per_split, float* partial) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = WgShape<Bits, RP, BN>;
  extern __shared__ __align__(1024) unsigned char smem[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);  // [pairs][32]
  unsigned char* ring = smem + S::kLutBytes;          // [slots] x (x, then A^T or the scales)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  // The CTA's output tile: blockIdx.x runs over row tiles (128 weight rows) fastest, then batch tiles (BN activation
  // rows); blockIdx.y is the split (k range). (Grouping row tiles into waves, so that a wave reads fewer codes from
  // DRAM, measured no different on 14336x4096 at batch 1024: 2026-12-06.)
  const int row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles;
  const int row_cta = static_cast<int>(blockIdx.x) % row_ctas, batch_tile = static_cast<int>(blockIdx.x) / row_ctas;
  const int split = blockIdx.y;
  const int c0 = split * tiles_per_split, c1 = min(c0 + tiles_per_split, g.col_tiles);
  const int mt = row_cta * kGemmRowTiles + warp;
  const int mtc = mt < g.row_tiles ? mt : 0;  // a tile past the end decodes tile 0; its rows are never written
  const int64_t b0 = static_cast<int64_t>(batch_tile) * BN;
  const uint8_t* codes = g.codes + static_cast<int64_t>(mtc) * g.col_tiles * S::kTileBytes;

  // x staging: thread i copies piece kp = (i / 8) % 16 (columns 8 kp .. + 7) of rows 16 k + r0 (r0 = 8 (i / 128) +
  // i % 8): 8 consecutive lanes write 8 rows' swizzled pieces (distinct banks), a warp reads 64 bytes of each of 8 rows.
  constexpr int kXPerThread = BN / 16;
  const int kp = threadIdx.x / 8 % 16, r0 = threadIdx.x / 128 * 8 + threadIdx.x % 8;
  // Rows r0 + 16 k exist for k < x_rows; their pieces start at x_src and step by x_step (fixed for the call).
  const int x_rows = static_cast<int>(std::clamp<int64_t>((g.batch - b0 - r0 + 15) / 16, 0, kXPerThread));
  const uint16_t* x_src = x_rows > 0 ? g.x + (b0 + r0) * g.cols + kp * 8 : g.x;
  const int64_t x_step = 16 * g.cols;
  const uint32_t x_dst0 = smem_u32(ring) + kp / 8 * S::kHalfBytes + swizzle128(r0, kp % 8);
  auto slot_of = [&](int c) { return (c - c0) % S::kSlots; };
  auto a_t_of = [&](int slot) { return reinterpret_cast<uint16_t*>(ring + slot * S::kSlotBytes + S::kXBytes); };
  auto stage = [&](int c) {  // chunk c into its slot; always one commit group per call
    if (c < c1) {
      const int slot = slot_of(c);
      const int col0 = c * kTileCols;
      const int rows = col0 + kp * 8 < g.cols ? x_rows : 0;  // (cols is a multiple of 32: pieces are whole)
      const uint16_t* src = x_src + col0;
#pragma unroll
      for (int k = 0; k < kXPerThread; ++k) {
        cp_async16(x_dst0 + slot * S::kSlotBytes + k * 16 * 128, k < rows ? src : g.x, k < rows ? 16 : 0);
        src += x_step;
      }
      if constexpr (S::kLords)
        stage_chunk_a_t<S::kRankPad, S::kAStride, kThreads>(ex.a_t, c, a_t_of(slot));
      else
        stage_chunk_scales(g, row_cta, c, a_t_of(slot));  // the scales sit where LoRDS keeps A^T
    }
    cp_async_commit();
  };

#pragma unroll
  for (int k = 0; k < S::kAhead; ++k) stage(c0 + k);
  constexpr int PD = S::kDepth;
  uint32_t code_ring[PD][S::kWords];  // slot d holds chunk c0 + d + k PD
#pragma unroll
  for (int d = 0; d < PD; ++d) {
#pragma unroll
    for (int i = 0; i < S::kWords; ++i) code_ring[d][i] = 0;
    if (c0 + d < c1) load_tile<Bits>(codes + static_cast<int64_t>(c0 + d) * S::kTileBytes, lane, code_ring[d]);
  }
  fill_bf16_pair_table<Bits>(lut, g.pairs, kThreads);
  uint32_t bfac[S::kLords ? RP : 1][4];
  if constexpr (S::kLords) load_b_factors<RP>(g.b, static_cast<int64_t>(mtc) * kTileRows, S::kRankPad, lane, bfac);
  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
  const uint32_t lut_lane = smem_u32(lut) + 4 * lane;
  for (int cb = c0; cb < c1; cb += PD) {
    // Decoded steps: step s in a[s % 4], rewritten (step s + 4) once the wgmma that read it has completed. Local to
    // the unrolled body: values carried around the loop would be moved into registers that in-flight wgmmas still
    // read, and ptxas would then serialise every wgmma; so the loop's end waits for all of them (every PD chunks).
    uint32_t a[4][4];
#pragma unroll
    for (int d = 0; d < PD; ++d) {  // unrolled, so the code ring stays in registers
      const int c = cb + d;
      if (c >= c1) break;
      cp_async_wait<S::kAhead - 1>();
      fence_proxy_async();  // this thread's copies of chunk c, visible to wgmma
      __syncthreads();      // chunk c is complete; every wgmma on the slot restaged next has completed
      stage(c + S::kAhead);
      const int slot = slot_of(c);
      const uint32_t x_slot = smem_u32(ring) + slot * S::kSlotBytes;
      const uint16_t* side = a_t_of(slot);
      const uint32_t step_blocks = S::kLords ? 0 : chunk_step_blocks(g, c);
      const auto decode = [&](int s, uint32_t (&w)[4]) {
        uint32_t pair[4];
        lookup_pairs<Bits>(code_ring[d], s, lut_lane, pair);
        if constexpr (S::kLords) {
          uint32_t afr[2][RP][2];
          float sc[2][4];
          load_a_t_frags<RP, S::kAStride>(side, s, lane, afr);
          scale_mma<RP>(bfac, afr, sc);
          lords_weights(pair, sc, w);
        } else {
          blockwise_weights(pair, step_scales(side + warp * kChunkBlocks * kTileRows + gq, step_blocks, s), w);
        }
      };
      decode(0, a[0]);  // a[0]: step 4 of the previous chunk, complete (at most steps 5-7 are in flight)
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        wgmma_fence();
        wgmma_bf16_rs<BN>(acc, a[s % 4], smem_desc_sw128(x_slot + s / 4 * S::kHalfBytes + s % 4 * 32));
        wgmma_commit();
        if (s + 1 < kSteps) {
          wgmma_wait<2>();  // steps s - 3 and older are done: a[(s + 1) % 4] is free
          decode(s + 1, a[(s + 1) % 4]);
        }
      }
      // Two slots: this chunk's wgmmas finish before the next barrier (its slot is restaged right after it). More:
      // up to three stay in flight; the next stage writes the slot of chunk c - 1, whose wgmmas are done.
      if constexpr (S::kSlots == 2) wgmma_wait<0>();
      if (c + PD < c1) load_tile<Bits>(codes + static_cast<int64_t>(c + PD) * S::kTileBytes, lane, code_ring[d]);
    }
    wgmma_wait<0>();
  }
  fence_operands(acc);

  // acc[4j + e]: CTA row 16 warp + gq + 8 (e / 2), activation row b0 + 8j + 2t + e % 2.
  const int64_t row0 = static_cast<int64_t>(row_cta) * kCtaRows;
  const int lrow = warp * kTileRows + gq;
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
  // bf16 outputs through shared memory (the ring, done with), so that each activation row's 256 bytes go out whole.
  cp_async_wait<0>();  // (the last groups are empty)
  __syncthreads();
  uint16_t* out = reinterpret_cast<uint16_t*>(ring);  // [BN][kOutStride]
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const __nv_bfloat16 h = __float2bfloat16_rn(acc[4 * j + e]);
      out[(8 * j + 2 * t + (e & 1)) * S::kOutStride + lrow + 8 * (e >> 1)] = *reinterpret_cast<const uint16_t*>(&h);
    }
  __syncthreads();
  const bool whole = g.rows % 8 == 0;  // 16-byte pieces are aligned and never straddle the end
  for (int i = static_cast<int>(threadIdx.x); i < BN * 16; i += kThreads) {
    const int bl = i / 16, p = i % 16;
    const int64_t b = b0 + bl, r = row0 + 8 * p;
    if (b >= g.batch || r >= g.rows) continue;
    const uint16_t* src = out + bl * S::kOutStride + 8 * p;
    uint16_t* dst = g.y + b * g.rows + r;
    if (whole) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int q = 0; q < 8 && r + q < g.rows; ++q) dst[q] = src[q];
    }
  }
#else
  (void)g, (void)ex, (void)tiles_per_split, (void)partial;
  __trap();  // the launcher picks this kernel only where sm_90a code runs
#endif
}

// Split k for a grid of `ctas` CTAs on `slots` resident CTA slots, each split costing `split_bytes` of partial sums
// (batch x rows x 4) written and read back. The partial sums must stay in L2: at most kSplitBytes in all. Within
// that, a grid of at least one wave is not split, and a smaller one takes the count with the fewest waves per unit
// of work (ceil(ctas s / slots) / s), the smallest such, with at least 2 chunks per split: 1024x4096 at batch 1024
// (32 CTAs of 256 activation rows) takes 4 splits (16 MiB). The rule before 2026-12-06 had no cap on the bytes and
// split grids of a wave too: 5 to 33 splits and 100-470 MB of partial sums on the 14336-wide layers at batch 256
// and 1024, which made them 1.2-2x slower than one split.
int choose_splits(int64_t ctas, int64_t slots, int col_tiles, int64_t split_bytes) {
  if (const int forced = forced_gemm_splits(); forced > 0) return std::min(forced, col_tiles);
  constexpr int64_t kSplitBytes = int64_t{32} << 20;
  const int most =
      static_cast<int>(std::min<int64_t>(std::max(1, col_tiles / 2), kSplitBytes / std::max<int64_t>(1, split_bytes)));
  if (ctas >= slots || most <= 1) return 1;
  int best = 1;
  double best_cost = 1e30;
  for (int s = 1; s <= most; ++s) {
    const double cost = static_cast<double>((ctas * s + slots - 1) / slots) / s;
    if (cost < best_cost - 1e-9) best = s, best_cost = cost;
  }
  return best;
}

template <int Bits, int RP, int BN>
int launch_variant(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  using S = WgShape<Bits, RP, BN>;
  constexpr auto kernel = wgmma_gemm_kernel<Bits, RP, BN>;
  if (const int e = allow_smem_once<kernel>(g.device, S::kSmem); e != 0) return e;
  const int64_t row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles, batch_tiles = (g.batch + BN - 1) / BN;
  if (row_ctas * batch_tiles > INT32_MAX) return static_cast<int>(cudaErrorInvalidValue);
  const int64_t slots = int64_t{std::max(1, ctas_per_sm<kernel>(g.device, kThreads, S::kSmem))} * g.sm_count;
  int splits = choose_splits(row_ctas * batch_tiles, slots, g.col_tiles, 4 * g.batch * g.rows);
  const int tiles_per_split = (g.col_tiles + splits - 1) / splits;
  splits = (g.col_tiles + tiles_per_split - 1) / tiles_per_split;
  float* partial = nullptr;
  const int64_t count = g.batch * g.rows;
  if (splits > 1) {
    const cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(float) * splits * count, stream);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  if (splits > 65535) return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(row_ctas * batch_tiles), static_cast<unsigned>(splits));
  kernel<<<grid, kThreads, S::kSmem, stream>>>(g, ex, tiles_per_split, partial);
  return finish_gemm_launch(cudaGetLastError(), partial, splits, g, stream);
}

template <int Bits, int RP, int BN>
int launch_fitting(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  return launch_variant<Bits, RP, wg_fits(Bits, RP, BN) ? BN : BN / 2>(g, ex, stream);
}

template <int Bits, int BN>
int launch_bn(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  return with_rank_tiles(g, [&](auto rp) { return launch_fitting<Bits, decltype(rp)::value, BN>(g, ex, stream); });
}

template <int Bits>
int launch_bits(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  // Activation rows per CTA: 64 up to batch 64, 128 up to 128, else 256 (128 where 256 do not fit: rank 128);
  // HILO_GEMM_BN=64|128|256 forces a width for sweeps.
  static const int forced = env_override("HILO_GEMM_BN", 64, 256, 0);
  const int bn = forced == 64 || forced == 128 || forced == 256 ? forced : g.batch <= 64 ? 64 : g.batch <= 128 ? 128 : 256;
  if (bn == 64) return launch_bn<Bits, 64>(g, ex, stream);
  if (bn == 256) return launch_bn<Bits, 256>(g, ex, stream);
  return launch_bn<Bits, 128>(g, ex, stream);
}

std::atomic<int> wgmma_forced{-1};

}  // namespace

bool sm90a_device(int device) {
#if defined(HILO_HAVE_SM90A)
  static std::mutex mu;
  static std::map<int, bool> known;
  const std::lock_guard lock(mu);
  if (const auto it = known.find(device); it != known.end()) return it->second;
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    (void)cudaGetLastError();  // the query's own error, not the caller's
    major = 0;
  }
  return known[device] = major == 9;
#else
  (void)device;
  return false;
#endif
}

void force_wgmma_gemm(int mode) { wgmma_forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed); }

bool use_wgmma_gemm(const MmaArgs& g) {
  static const int env = env_override("HILO_GEMM_WGMMA", 0, 1, -1);
  if (!sm90a_device(g.device)) return false;
  const int f = wgmma_forced.load(std::memory_order_relaxed);
  if (f >= 0) return f != 0;
  // Every batch of 33 and more: measured on an H100 against mma.sync (docs/results/lords-cuda.md, 2026-12-06).
  return g.batch >= 33 && env != 0;
}

int launch_wgmma_gemm(const MmaArgs& g, const GemmExtras& ex, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, ex, stream); });
}

}  // namespace hilo::lords::cuda_detail
