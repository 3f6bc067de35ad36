// The LoRDS GEMM with its scale tile on wgmma, batches 2-256 (sm_90a; see wgmma_scale_gemm.hpp).
//
// Why: at a few activation rows the scale tile S = B A costs 2 x 8 ceil(r / 8) FLOPs per weight against the
// product's 2 x batch, and the mma.sync GEMM (mma_gemm.cu) computes it per warp and 16-column step, in the decode
// warps' own instruction stream: about 69 instructions per step, so it runs at about half the batch-1 GEMV's speed.
// Here each warpgroup computes S for 64 rows x 64 columns with K16 wgmma.m64n64k16 (the warps' rows of B as the
// register A operand, A^T's chunk as the shared-memory B operand), whose accumulators are laid out exactly as the
// register A operand of the product (FlashAttention's trick for P): per 16-column step a lane converts its S values
// to bf16 and multiplies them by the decoded codes (two instructions per pair, as lords_weights does), then one
// wgmma.m64nBNk16 multiplies the weights by the activations. S costs the same at any batch, so it pays up to 256
// rows (two tiles of 128, each computing S), where the wgmma GEMMs' per-step scale work is dearer.
//
// Pipeline per warpgroup, in halves of a 128-column chunk (4 steps): S of the next half is issued before the current
// half's weights are formed, so the tensor pipe computes S(u + 1) while the warps convert S(u) (two S buffers of 32
// registers), and the weights are double-buffered, so converting S(u) waits for S(u) alone, not for the product of
// half u - 1. The product is wgmma.m64nBNk16 with BN = 16, 32, 64 or 128 activation rows per CTA. At 128 the 64
// accumulators leave room for one S buffer and one weight set only (body_wide).
//
// The warps issue about as many instructions per half as the tensor pipe has cycles of work in it, so the loop is
// kept short (twenty-first session, docs/results/lords-cuda.md): descriptors advanced from the rings' (one add per
// wgmma, not four uniform instructions), lookup addresses of one byte permute each (the pair table in 256-byte rows,
// lut_offset), bodies of four chunks (a body ends by draining its wgmmas).
//
// The producer lane brings each chunk's codes (the CTA's 8 tiles, bulk copies), x (TMA: BN rows, swizzled, as the
// batch GEMM does) and A^T (TMA: 128-byte swizzled rows, one column's 64 ranks, the B operand's K-major layout) into
// a ring of kSlots slots. Two earlier builds were slower (twentieth session, docs/results/lords-cuda.md): A^T staged
// by the producer warp's cp.async into the same layout ran 14336x4096 at 37 µs, and with the codes moved into the
// ring as well at 46 µs (consumers waiting for the slots); by TMA it runs at 25.
//
// Tiles of 256 activation rows (wide_tiles, off by default until measured: twenty-eighth session): S once per 256
// rows at any batch past 128, where the wgmma GEMM computes it on mma.sync in its decode warps' stream. The 128
// accumulators leave no registers for B's factors (ptxas serialised every wgmma with them there), so the warps store
// their rows of B into shared memory once and S takes its A operand from there (wgmma_m64n64k16_bf16_ss).
//
// Same weights and rounding as the mma.sync GEMM (S rounded to bf16, times the code's value, rounded); f32
// accumulation; k split over CTAs with partial sums added in split order. Only the summation order inside the tensor
// cores differs.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "../../cuda/tensor_map.hpp"
#include "../../cuda/tma.cuh"
#include "../gpu_layout.hpp"
#include "gemm_common.cuh"
#include "wgmma_gemm.hpp"
#include "wgmma_gemm_parts.cuh"
#include "wgmma_rs.cuh"
#include "wgmma_scale_gemm.hpp"

namespace hilo::lords::cuda_detail {
namespace {

using gpu_layout::kTileCols;

constexpr int kMostRows = 128;  // activation rows per CTA (wgmma's N of the product): 16, 32, 64 or 128
constexpr int kMostBatch = 256;  // batches past 128 take tiles of 128 activation rows (S computed once per tile)
// Or, where wide_tiles() says so, tiles of 256 rows at any batch past 128: S once per 256 rows, as the wgmma GEMM
// computes it, but on wgmma instead of in the decode warps' stream; its 128 accumulators leave the ring 2 slots.
constexpr int kWideRows = 256;
constexpr int kDepth = 4;      // chunks per loop body (every wgmma completes at its end)
constexpr int kABytes = kTileCols * 128;  // A^T of a chunk: 128 columns x 128 bytes (64 ranks, swizzled)

template <int Bits, int BN>
struct WsShape {
  static constexpr int kWords = 2 * Bits, kTileBytes = 256 * Bits;
  // The pair table in rows of 256 bytes (64 copies; lookup_pairs_rows256: one byte permute per 4-bit lookup address),
  // except at 4 bits and 128 activation rows: there its 64 KB would leave room for 2 ring slots of 56 KB, so it has
  // 32 copies (lookup_pairs: a permute and a multiply-add per address) and the ring 3 slots.
  static constexpr bool kRows256 = Bits < 4 || BN <= 64;
  static constexpr int kLutCopies = kRows256 ? 64 : 32, kLutBytes = wg_lut_bytes(Bits, kLutCopies);
  static constexpr int kXBytes = wg_x_bytes(BN), kHalfBytes = kXBytes / 2;
  static constexpr int kCodeBytes = kGemmRowTiles * kTileBytes;  // a chunk of the CTA's 8 row tiles
  // Ring slots (codes, x, A^T of a chunk): as many as fit beside the table, at most 6 (the producer runs up to 5
  // chunks ahead); 3-5 at 32-128 activation rows.
  static constexpr int kSlotBytes = kXBytes + kABytes + kCodeBytes + 16;
  // At 256 rows the warps' rows of B stay in shared memory (the scale tile's A operand from there: kScaleSs), 128
  // bytes per row (64 ranks, swizzled), since 128 accumulators leave no registers for them: 2 ring slots.
  static constexpr bool kScaleSs = BN > kMostRows;
  static constexpr int kBBytes = kScaleSs ? kWgCtaRows * 128 : 0, kXRing = kLutBytes + kBBytes;
  static constexpr int kSlots = std::min(6, (kWgMaxSmem - kXRing) / kSlotBytes);
  static constexpr int kSmem = kXRing + kSlots * kSlotBytes;
  static_assert(kLutBytes % 1024 == 0 && kXBytes % 1024 == 0 && kSmem <= kWgMaxSmem && kSlots >= 2);
  static_assert(BN * kWgOutStride * 2 <= kSlots * kXBytes);  // the epilogue stages its tile over the x ring
};

// A warp's codes of one chunk (load_tile's layout) from shared memory at `tile`.
template <int Bits>
__device__ __forceinline__ void load_tile_shared(uint32_t tile, int lane, uint32_t (&w)[2 * Bits]) {
  if constexpr (Bits == 3) {
#pragma unroll
    for (int j = 0; j < 3; ++j)
      asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n"
                   : "=r"(w[2 * j]), "=r"(w[2 * j + 1])
                   : "r"(tile + 8 * (j * 32 + lane)));
  } else {
#pragma unroll
    for (int j = 0; j < Bits / 2; ++j)
      asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                   : "=r"(w[4 * j]), "=r"(w[4 * j + 1]), "=r"(w[4 * j + 2]), "=r"(w[4 * j + 3])
                   : "r"(tile + 16 * (j * 32 + lane)));
  }
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// S for 64 rows of the warpgroup x 64 columns (the half of a chunk's A^T that a_half describes): K16 k-steps over
// the ranks, the first overwriting d. One commit group.
template <int K16>
__device__ __forceinline__ void issue_scale_tile(float (&d)[32], const uint32_t (&bfac)[K16][4], uint64_t a_half) {
  wgmma_fence();
#pragma unroll
  for (int k = 0; k < K16; ++k) wgmma_m64n64k16_bf16_rs(d, bfac[k], smem_desc_advance(a_half, 32 * k), k > 0 ? 1u : 0u);
  wgmma_commit();
}
// The same with the warpgroup's rows of B in shared memory (b_rows: their descriptor, 128-byte swizzled rows).
template <int K16>
__device__ __forceinline__ void issue_scale_tile_ss(float (&d)[32], uint64_t b_rows, uint64_t a_half) {
  wgmma_fence();
#pragma unroll
  for (int k = 0; k < K16; ++k)
    wgmma_m64n64k16_bf16_ss(d, smem_desc_advance(b_rows, 32 * k), smem_desc_advance(a_half, 32 * k), k > 0 ? 1u : 0u);
  wgmma_commit();
}

// A warp's rows of B (load_b_factors' fragments) into the CTA's B tile at b_tile: row 16 warp + lane / 4 (+ 8), 128
// bytes each, its 16-byte pieces swizzled as TMA's 128-byte mode places them (swizzle128), so that a wgmma
// descriptor reads them as a K-major operand. Then the fence that lets the async proxy (wgmma) see them.
template <int K16>
__device__ __forceinline__ void store_b_rows(const uint32_t (&bfac)[K16][4], unsigned char* b_tile, int warp,
                                             int lane) {
#pragma unroll
  for (int j = 0; j < K16; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = 16 * warp + lane / 4 + 8 * (e & 1), piece = 2 * j + (e >> 1);
      *reinterpret_cast<uint32_t*>(b_tile + cuda_ptx::swizzle128(row, piece) + 4 * (lane % 4)) = bfac[j][e];
    }
  fence_proxy_async();
}

// The weights of step q of a half (columns 16 q .. + 15 of its 64) from the code pairs and S: S's n-tiles 2q, 2q + 1
// are the step's two 8-column halves, in the mma C layout lords_weights takes.
__device__ __forceinline__ void scaled_weights(const uint32_t (&pair)[4], const float (&s)[32], int q,
                                               uint32_t (&w)[4]) {
  float sc[2][4];
#pragma unroll
  for (int n = 0; n < 2; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) sc[n][e] = s[4 * (2 * q + n) + e];
  lords_weights(pair, sc, w);
}
#endif

template <int Bits, int R8, int BN>
__global__ void __launch_bounds__(kWgThreads, 1)
    wgmma_scale_gemm_kernel(MmaArgs g, int tiles_per_split, float* partial, WgTail sum,
                            const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap a_map, int pdl,
                            int ahead, int late_first) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = WsShape<Bits, BN>;
  constexpr int kSlots = S::kSlots;
  constexpr int K16 = k16_groups(R8), kRankPad = rank_pad_of(R8);
  static_assert(kRankPad <= 64, "A^T's rows are 128 bytes: at most 64 ranks");
  extern __shared__ __align__(1024) unsigned char smem[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);
  const uint32_t b_tile = smem_u32(smem) + S::kLutBytes;  // (kScaleSs: the CTA's rows of B)
  const uint32_t x_ring = smem_u32(smem) + S::kXRing, a_ring = x_ring + kSlots * S::kXBytes;
  const uint32_t code_ring = a_ring + kSlots * kABytes, bars = code_ring + kSlots * S::kCodeBytes;
  // Per slot: full (the chunk's codes, x and A^T landed: two expect_tx arrivals, codes and A^T, then x), empty (the 8
  // consumer warps are done with all three).
  const auto full = [&](int slot) { return bars + 8 * slot; };
  const auto empty = [&](int slot) { return bars + 8 * (kSlots + slot); };
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const WgWork work = wg_work_of(sum, tiles_per_split, g.col_tiles);  // (split k added in the kernel: sum, dp_ctas 0)
  // The output tile: row CTAs fastest, then tiles of BN activation rows (batches past 128).
  const int row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles;
  const int row_cta = work.tile % row_ctas, b0 = work.tile / row_ctas * BN, c0 = work.c0, c1 = work.c1;
  // A tile past the rows decodes tile 0 (its codes are copied as tile 0's); its rows are never written.
  const auto tile_of = [&](int w) {
    const int mt = row_cta * kGemmRowTiles + w;
    return mt < g.row_tiles ? mt : 0;
  };
  // Chunk c's weights (codes and A^T) into its slot (the producer lane); its x separately (issue_x), since a CTA
  // launched early requests the first slots' weights before griddep_wait and their x after it.
  const auto issue_weights = [&](int c) {
    const int slot = (c - c0) % kSlots;
    // A^T's chunk: 128 columns x 64 ranks (zeros past rank_pad), swizzled by TMA as the B operand wants.
    cuda_ptx::mbar_arrive_expect_tx(full(slot), S::kCodeBytes + kABytes);
    cuda_ptx::tma_load_2d(a_ring + slot * kABytes, &a_map, 0, c * kTileCols, full(slot));
    for (int w = 0; w < kGemmRowTiles; ++w)
      cuda_ptx::bulk_copy_g2s(code_ring + slot * S::kCodeBytes + w * S::kTileBytes,
                              g.codes + (static_cast<int64_t>(tile_of(w)) * g.col_tiles + c) * S::kTileBytes,
                              S::kTileBytes, full(slot));
  };
  const auto issue_x = [&](int c) {
    const int slot = (c - c0) % kSlots;
    tma_x_chunk<BN>(x_ring + slot * S::kXBytes, &x_map, c, b0, full(slot));
  };
  // Launched early (`pdl`, GemmPdl), the CTA touches only weights (codes, A^T, B, the codebook) before griddep_wait.
  gemm_pdl_start(pdl);
  // The producer lane sets up the barriers and requests the first slots' chunks while the consumers load B and fill
  // the pair table (a CTA of few chunks, as on 1024x4096, would otherwise wait for them after the barrier): the first
  // `ahead` chunks' weights while the previous kernel may still run (0 for a plain launch), then their x; the other
  // first slots chunk by chunk, so that the first chunk's x is not queued behind later chunks' weights.
  // `late_first`: before the CTA barrier only the early weights (or, launched plainly, the first chunk), the wait and
  // the rest after it, so that the consumers' barrier does not wait for the previous kernel or the producer's copies
  // (Nsight, 4096x4096 at batch 16: 20% of the stall samples sat on that barrier). `late_first` 2: no request before
  // it, and the CTA barrier only publishes the mbarriers: the consumers fill the pair table alone and meet at a named
  // barrier of their own, so they wait for no producer work at all (the producer warpgroup fills nothing).
  const bool producer_lane = threadIdx.x == kGemmRowTiles * 32;
  const auto issue_both = [&](int from, int to) {
    for (int c = from; c < to; ++c) issue_weights(c), issue_x(c);
  };
  if (producer_lane) {
    for (int s = 0; s < kSlots; ++s) {
      cuda_ptx::mbar_init(full(s), 2);
      cuda_ptx::mbar_init(empty(s), kGemmRowTiles);
    }
    cuda_ptx::mbar_init_fence();
    const int first_end = min(c0 + kSlots, c1), ahead_end = min(c0 + ahead, first_end);
    if (late_first < 2)
      for (int c = c0; c < ahead_end; ++c) issue_weights(c);
    if (!late_first || (late_first == 1 && ahead == 0)) {
      cuda_ptx::griddep_wait();  // x may still be written by the previous kernel
      for (int c = c0; c < ahead_end; ++c) issue_x(c);
      issue_both(ahead_end, late_first ? min(c0 + 1, first_end) : first_end);  // (late_first: ahead_end is c0)
    }
  }
  uint32_t bfac[K16][4];
  if (warp < kGemmRowTiles)
    load_b_factors<K16>(g.b, static_cast<int64_t>(tile_of(warp)) * gpu_layout::kTileRows, kRankPad, lane, bfac);
  if constexpr (S::kScaleSs)
    if (warp < kGemmRowTiles) store_b_rows<K16>(bfac, smem + S::kLutBytes, warp, lane);  // (before the barriers)
  if (late_first == 2) {
    __syncthreads();  // the mbarriers initialised
    if (warp < kGemmRowTiles) {
      fill_bf16_pair_table<Bits, S::kLutCopies>(lut, g.values_h, kWgConsumers);
      cuda_ptx::named_barrier_sync<kWgConsumers>(1);
    }
  } else {
    fill_bf16_pair_table<Bits, S::kLutCopies>(lut, g.values_h, kWgThreads);
    __syncthreads();
  }

  if (warp >= kGemmRowTiles) {  // the producer: chunk c once the consumers are done with its slot's last chunk
    cuda_ptx::setmaxnreg_dec<wg_producer_regs(1)>();
    if (!producer_lane) return;
    if (late_first) {  // the first slots not requested before the barrier (the same ranges as above)
      const int first_end = min(c0 + kSlots, c1), ahead_end = min(c0 + ahead, first_end);
      if (late_first == 2)
        for (int c = c0; c < ahead_end; ++c) issue_weights(c);
      if (late_first == 2 || ahead > 0) {
        cuda_ptx::griddep_wait();  // x may still be written by the previous kernel
        for (int c = c0; c < ahead_end; ++c) issue_x(c);
        issue_both(ahead_end, first_end);
      } else {
        issue_both(c0 + 1, first_end);
      }
    }
    for (int c = c0 + kSlots; c < c1; ++c) {
      const int i = c - c0;
      cuda_ptx::mbar_wait(empty(i % kSlots), (i / kSlots - 1) & 1);
      issue_weights(c);
      issue_x(c);
    }
    return;
  }

  cuda_ptx::setmaxnreg_inc<wg_consumer_regs(1)>();
  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
  const uint32_t lut_base = smem_u32(lut), lane4 = 4 * lane;
  const auto slot_of = [&](int c) { return (c - c0) % kSlots; };
  // The wgmma descriptors of half h of slot s's A^T and x, advanced from the rings' (one add per wgmma, where
  // smem_desc_sw128 per address costs four uniform instructions: 8 wgmmas per half).
  const uint64_t a_desc = cuda_ptx::smem_desc_sw128(a_ring), x_desc = cuda_ptx::smem_desc_sw128(x_ring);
  const auto a_half_desc = [&](int s, int h) { return smem_desc_advance(a_desc, s * kABytes + h * 64 * 128); };
  const auto x_half_desc = [&](int s, int h) { return smem_desc_advance(x_desc, s * S::kXBytes + h * S::kHalfBytes); };
  // S of half h of a chunk into d, from the warps' rows of B (registers, or shared memory at 256 rows).
  const uint64_t b_rows = cuda_ptx::smem_desc_sw128(b_tile + warp / 4 * 64 * 128);
  const auto scale_tile = [&](float(&d)[32], uint64_t a_half) {
    if constexpr (S::kScaleSs)
      issue_scale_tile_ss<K16>(d, b_rows, a_half);
    else
      issue_scale_tile<K16>(d, bfac, a_half);
  };
  const auto wait_chunk = [&](int c) { cuda_ptx::mbar_wait(full(slot_of(c)), ((c - c0) / kSlots) & 1); };
  const auto load_codes = [&](int c, uint32_t(&codes)[S::kWords]) {
    load_tile_shared<Bits>(code_ring + slot_of(c) * S::kCodeBytes + warp * S::kTileBytes, lane, codes);
  };
  // Chunk c's slot back to the producer once its products have completed (__syncwarp: every lane's reads came first).
  const auto release_chunk = [&](int c) {
    __syncwarp();
    if (lane == 0) cuda_ptx::mbar_arrive(empty(slot_of(c)));
  };
  // Half h of a chunk: its weights from the codes and S into w, then the product with x (one commit group).
  const auto multiply_half = [&](const uint32_t(&codes)[S::kWords], int h, const float(&s)[32], uint32_t(&w)[4][4],
                                 uint64_t x_half) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      uint32_t pair[4];
      if constexpr (S::kRows256)
        lookup_pairs_rows256<Bits>(codes, 4 * h + q, lut_base, lane4, pair);
      else
        lookup_pairs<Bits>(codes, 4 * h + q, lut_base + lane4, pair);
      scaled_weights(pair, s, q, w[q]);
    }
    wgmma_fence();
#pragma unroll
    for (int q = 0; q < 4; ++q) wgmma_bf16_rs<BN>(acc, w[q], smem_desc_advance(x_half, 32 * q));
    wgmma_commit();
  };
  // A body of ND chunks (kDepth, or 2 and 1 for the chunks left over): every wgmma it issues completes at its end, and
  // nothing in it branches around a wgmma. (Values carried around the loop would sit in registers that in-flight
  // wgmmas use, and a run-time exit with wgmmas in flight: either makes ptxas serialise every wgmma.)
  const auto body = [&](int cb, auto nd) {
    constexpr int ND = decltype(nd)::value;
    float sbuf[2][32];
    uint32_t w[2][4][4], codes[2][S::kWords];  // half u's weights in w[u % 2], chunk d's codes in codes[d % 2]
    wait_chunk(cb);
    load_codes(cb, codes[0]);
    scale_tile(sbuf[0], a_half_desc(slot_of(cb), 0));
#pragma unroll
    for (int u = 0; u < 2 * ND; ++u) {  // half u % 2 of chunk cb + u / 2
      const int d = u / 2, h = u % 2, c = cb + d;
      if (u + 1 < 2 * ND) {  // S of the next half while this one's weights are formed
        const int cn = cb + (u + 1) / 2;
        if (h == 1) {
          wait_chunk(cn);
          load_codes(cn, codes[(d + 1) % 2]);
        }
        scale_tile(sbuf[(u + 1) % 2], a_half_desc(slot_of(cn), (u + 1) % 2));
        // S of this half is done (and the product of two halves back, whose weights w[u % 2] are overwritten now);
        // the previous half's product may still run. At u = 0 the newest two groups are S(0) and S(1).
        if (u == 0)
          wgmma_wait<1>();
        else
          wgmma_wait<2>();
      } else {
        wgmma_wait<1>();  // S of this half (the previous half's product may still run)
      }
      if (h == 1 && d > 0) release_chunk(c - 1);  // the previous chunk's products have completed
      multiply_half(codes[d % 2], h, sbuf[u % 2], w[u % 2], x_half_desc(slot_of(c), h));
    }
    wgmma_wait<0>();
    release_chunk(cb + ND - 1);  // the body's last chunk
  };
  // The same at 128 activation rows, whose 64 accumulators leave room for one S buffer and one set of weights (with
  // two of each, ptxas serialises every wgmma): S(u + 1) is issued after the product of half u, into the registers
  // that half's weights were formed from, and both complete before half u + 1's weights are formed. The tensor pipe
  // runs the product and S(u + 1) while this warpgroup waits; the other warpgroup's conversions fill that time.
  const auto body_wide = [&](int cb, auto nd) {
    constexpr int ND = decltype(nd)::value;
    float sbuf[32];
    uint32_t w[4][4], codes[2][S::kWords];
    wait_chunk(cb);
    load_codes(cb, codes[0]);
    scale_tile(sbuf, a_half_desc(slot_of(cb), 0));
#pragma unroll
    for (int u = 0; u < 2 * ND; ++u) {
      const int d = u / 2, h = u % 2, c = cb + d;
      wgmma_wait<0>();  // S(u), and before it the product of half u - 1
      if (h == 1 && d > 0) release_chunk(c - 1);  // the previous chunk's products have completed
      multiply_half(codes[d % 2], h, sbuf, w, x_half_desc(slot_of(c), h));
      if (u + 1 < 2 * ND) {
        const int cn = cb + (u + 1) / 2;
        if (h == 1) {
          wait_chunk(cn);
          load_codes(cn, codes[(d + 1) % 2]);
        }
        scale_tile(sbuf, a_half_desc(slot_of(cn), (u + 1) % 2));
      }
    }
    wgmma_wait<0>();
    release_chunk(cb + ND - 1);  // the body's last chunk
  };
  const auto run_body = [&](int cb, auto nd) {
    if constexpr (BN > 64)
      body_wide(cb, nd);
    else
      body(cb, nd);
  };
  int cb = c0;
  for (; cb + kDepth <= c1; cb += kDepth) run_body(cb, std::integral_constant<int, kDepth>{});
  if (cb + 2 <= c1) run_body(cb, std::integral_constant<int, 2>{}), cb += 2;  // the last chunks
  if (cb < c1) run_body(cb, std::integral_constant<int, 1>{});
  fence_operands(acc);
  cuda_ptx::griddep_wait();  // (long since returned: the producer's wait came before every x) y and partial after it
  // (The flag of tail_sum and the epilogue's staging lie over the x ring, which no consumer reads any more.)
  if (work.tail_q >= 0 && !tail_sum<BN>(acc, sum, work, smem + S::kXRing)) return;  // another part adds this tile
  store_wg_tile<BN>(g, acc, partial, work.split, row_cta, b0, smem + S::kXRing);
#else
  (void)g, (void)tiles_per_split, (void)partial, (void)sum, (void)x_map, (void)a_map, (void)pdl, (void)ahead;
  (void)late_first;
  __trap();  // the launcher picks this kernel only where sm_90a code runs
#endif
}

// Split k: the chunk ranges that fill one wave of SMs (one CTA each) best, as the batch-1 GEMV does: a grid of a
// wave or less, never split past kMostSplits or below 2 chunks per split. HILO_GEMM_SPLIT forces a count.
constexpr int kMostSplits = 16;
int scale_gemm_splits(int64_t tiles, int sm_count, int col_tiles) {
  if (const int forced = forced_gemm_splits(); forced > 0) return std::min(forced, col_tiles);
  const int64_t most =
      std::min<int64_t>({kMostSplits, std::max(1, col_tiles / 2), sm_count / std::max<int64_t>(1, tiles)});
  return static_cast<int>(std::max<int64_t>(1, most));
}

template <int Bits, int R8, int BN>
int launch_variant(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  using S = WsShape<Bits, BN>;
  constexpr auto kernel = wgmma_scale_gemm_kernel<Bits, R8, BN>;
  if (const int e = allow_smem_once<kernel>(g.device, S::kSmem); e != 0) return e;
  const int64_t tiles = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles * ((g.batch + BN - 1) / BN);
  WgLaunchPlan p;
  const int splits = scale_gemm_splits(tiles, g.sm_count, g.col_tiles);
  if (const int e = plan_wg_launch(g, tiles, g.sm_count, BN, stream, p, splits, wg_tail_part_floats(BN)); e != 0)
    return e;
  // A^T [cols padded to whole chunks][rank_pad] in boxes of 128 columns x 64 ranks.
  CUtensorMap a_map;
  const int64_t a_rows = int64_t{g.col_tiles} * kTileCols;
  if (const int e = cuda_host::encode_bf16_rows_map(&a_map, ex.a_t, a_rows, g.rank_pad, kTileCols); e != 0)
    return finish_gemm_launch(static_cast<cudaError_t>(e), p.partial, p.splits, g, stream);
  // Tiles of 256 rows (several waves at batch 1024 on the wide layers): the wgmma GEMM's split of the last wave.
  WgTail sum = p.sum;
  void* tail_buffer = nullptr;
  dim3 grid = p.grid(tiles);
  if constexpr (BN == kWideRows)
    if (const int e = plan_wg_tail(g, tiles, g.sm_count, wg_tail_part_floats(BN), stream, p, sum, grid, tail_buffer);
        e != 0)
      return e;
  cudaLaunchConfig_t cfg = wg_launch_config(grid, kWgThreads, S::kSmem, stream);
  cudaLaunchAttribute attrs[1];
  const GemmPdl pdl = gemm_pdl_launch(cfg, attrs);
  // Launched early, the first chunks' weights that a CTA requests before griddepcontrol.wait: every first slot's
  // where this kernel follows the previous call directly (one split, or split k added in the kernel: a CTA on an idle
  // SM waits long for the previous call), the first chunk's alone with a per-call partial buffer, where the sum kernel
  // stands between two calls, the wait returns at once and the first chunk's x would queue behind five chunks' weights
  // (H200, twenty-fourth session: 4096x4096 at batches 4-16 1.03-1.05x faster with one, 14336x4096 unsplit 1.01x
  // slower). HILO_GEMM_PDL_AHEAD=1..6 forces a count.
  static const int forced_ahead = env_override("HILO_GEMM_PDL_AHEAD", 1, 6, 0);
  const int ahead = pdl == kGemmPlain ? 0 : forced_ahead > 0 ? forced_ahead : p.partial ? 1 : S::kSlots;
  // The first slots' requests after the CTA barrier (the kernel's `late_first`): off by default until a device has
  // run it (written in the twenty-seventh session, after its device time was spent); HILO_GEMM_LATE_FIRST=1 turns it
  // on, 2 takes every request past a barrier that only publishes the mbarriers (twenty-eighth session).
  static const int late_first = env_override("HILO_GEMM_LATE_FIRST", 0, 2, 0);
  const cudaError_t launched = cudaLaunchKernelEx(&cfg, kernel, g, p.tiles_per_split, p.partial, sum, p.x_map, a_map,
                                                  pdl, ahead, late_first);
  if (tail_buffer) cudaFreeAsync(tail_buffer, stream);
  return finish_gemm_launch(launched, p.partial, p.splits, g, stream);
}

std::atomic<int> scale_gemm_forced{-1}, wide_tiles_forced{-1};

// Tiles of 256 activation rows past 128 rows, at any batch (kWideRows): written in the twenty-eighth session, whose
// device time never came, so off until a device has run and measured it. HILO_GEMM_WGS_WIDE=1 turns it on.
bool wide_tiles(const MmaArgs& g) {
  static const int env = env_override("HILO_GEMM_WGS_WIDE", 0, 1, 0);
  const int f = wide_tiles_forced.load(std::memory_order_relaxed);
  // (TMA's coordinates are 32-bit: the batch stays below 2^31, as in the wgmma GEMM.)
  return g.batch > kMostRows && g.batch <= INT32_MAX - kWideRows && (f >= 0 ? f != 0 : env != 0);
}

}  // namespace

void force_wgmma_scale_gemm(int mode) {
  scale_gemm_forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed);
}

void force_wgmma_scale_gemm_wide(int mode) {
  wide_tiles_forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed);
}

bool wgmma_scale_gemm_can_run(const MmaArgs& g) {
  return g.lords && g.rank_pad <= 64 && (g.batch <= kMostBatch || wide_tiles(g));
}

bool wgmma_scale_gemm_by_default(const MmaArgs& g) {
  // H100, twenty-second session (docs/results/lords-cuda.md), every bit width. At padded rank 32 and 64: 1.30-2.09x
  // the mma.sync GEMM at batches 4-32, 1.32-2.75x the wgmma GEMM at 64, 1.20-1.60x at 128 and 1.00-1.20x at 256 (two
  // tiles of 128: S is computed twice, so past 256 the wgmma GEMMs keep it). At padded rank 16 (1024x4096's rank 12)
  // a tie at 4-16 (0.97-1.03x), 1.03-1.11x at 32-128 and 1.24-1.26x at 256.
  return wgmma_scale_gemm_can_run(g) && (g.rank_pad >= 32 || g.batch > 16);
}

bool use_wgmma_scale_gemm(const MmaArgs& g) {
  static const int env = env_override("HILO_GEMM_WGS", 0, 1, -1);
  if (!wgmma_scale_gemm_can_run(g) || !sm90a_device(g.device)) return false;
  const int f = scale_gemm_forced.load(std::memory_order_relaxed);
  if (f >= 0) return f != 0;
  if (env >= 0) return env == 1;
  return wgmma_scale_gemm_by_default(g);
}

int launch_wgmma_scale_gemm(const MmaArgs& g, const GemmExtras& ex, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) {
    return with_rank_groups(g, [&](auto r8) -> int {
      constexpr int kR8 = decltype(r8)::value;
      if constexpr (kR8 == 0 || rank_pad_of(kR8) > 64) {
        return static_cast<int>(cudaErrorInvalidValue);  // (use_wgmma_scale_gemm declines these)
      } else {
        constexpr int kBits = decltype(bits)::value;
        if (g.batch <= 16) return launch_variant<kBits, kR8, 16>(g, ex, stream);
        if (g.batch <= 32) return launch_variant<kBits, kR8, 32>(g, ex, stream);
        if (g.batch <= 64) return launch_variant<kBits, kR8, 64>(g, ex, stream);
        if (wide_tiles(g)) return launch_variant<kBits, kR8, kWideRows>(g, ex, stream);
        return launch_variant<kBits, kR8, kMostRows>(g, ex, stream);
      }
    });
  });
}

}  // namespace hilo::lords::cuda_detail
