// The wgmma batch GEMM over clusters of activation tiles (sm_90a; see wgmma_cluster_gemm.hpp). The one-CTA kernel
// (wgmma_gemm.cu) decodes a CTA's 128 weight rows once per tile of 256 activation rows: at batch 1024 every weight is
// decoded four times, and LoRDS' scale product S = B A (2 x 8 ceil(r / 8) FLOPs per weight, on mma.sync in the
// consumers' instruction stream) costs 22% of the main product at rank 49. Here the C CTAs of a cluster share the
// weight rows and take C consecutive activation tiles: CTA r decodes only steps r 8/C .. of each 128-column chunk (8
// steps of 16 columns) and writes each decoded bf16 fragment to its own shared memory and, by st.async, to the same
// place in its peers', whose mbarrier counts the bytes. The consumer warps then load each step's A fragment with one
// 16-byte shared load, and the decode (with the rank product) costs 1 / C per CTA. Same weights, same rounding, same
// summation order as the one-CTA kernel: the outputs are bitwise equal.
//
// Per chunk c and consumer warp w (16 weight rows), a ring of two weight slots, each [8 warps][8 steps][32 lanes] x
// 16 bytes (32 KB):
//  - w_full(slot, w), local: one arrival (the warp itself, announcing the (C - 1) peers' bytes) + those bytes;
//  - w_empty(slot, w): C arrivals, one from warp w of every CTA once its wgmmas have read the slot's fragments (the
//    last one has issued); a warp writes chunk c into every CTA's slot only after all C have released chunk c - 2.
// Warp w decodes its part of chunk c + 1 between the wgmmas of chunk c, from codes loaded two chunks ahead. Every
// remote write and arrival a CTA receives is awaited by that CTA (w_full for the data, its next write for w_empty),
// so no CTA exits while a peer still touches its shared memory.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "../../cuda/tma.cuh"
#include "gemm_common.cuh"
#include "wgmma_cluster_gemm.hpp"
#include "wgmma_gemm_parts.cuh"
#include "wgmma_rs.cuh"

namespace hilo::lords::cuda_detail {
namespace {

using namespace cuda_ptx;
using gpu_layout::kTileCols;
using gpu_layout::kTileRows;

constexpr int kBN = 256;       // activation rows per CTA (the one-CTA kernel's width above batch 128)
constexpr int kXSlots = 2;     // x ring: 2 x 64 KB
constexpr int kWSlots = 2;     // decoded-weight ring: 2 x 32 KB
constexpr int kASlots = 2;     // LoRDS: A^T of the CTA's columns
constexpr int kFragBytes = 512;  // one warp's A fragment of one step: 32 lanes x 16 bytes
constexpr int kWBytes = kGemmRowTiles * kWgSteps * kFragBytes;

template <int Bits, int R8, int C>
struct ClusterShape {
  static constexpr bool kLords = R8 > 0;
  static constexpr int kOwn = kWgSteps / C;  // steps of each chunk this CTA decodes
  static constexpr int kCopies = Bits == 4 ? 16 : 32;  // 4-bit: a 16 KB table, so that the rings fit
  static constexpr int kWords = 2 * Bits, kTileBytes = 256 * Bits;
  static constexpr int kLutBytes = wg_lut_bytes(Bits, kCopies);
  static constexpr int kXBytes = wg_x_bytes(kBN), kHalfBytes = kXBytes / 2;
  static constexpr int kACols = 16 * kOwn;
  static constexpr int kABytes = kLords ? kACols * a_t_stride(R8) * 2 : 0;
  static constexpr int kASlotsUsed = kLords ? kASlots : 0;
  static constexpr int kXOff = kLutBytes, kWOff = kXOff + kXSlots * kXBytes, kAOff = kWOff + kWSlots * kWBytes;
  static constexpr int kBarOff = kAOff + kASlotsUsed * kABytes;
  static constexpr int kBars = 2 * kXSlots + 2 * kASlotsUsed + 2 * kWSlots * kGemmRowTiles;
  static constexpr int kSmem = kBarOff + 8 * kBars;
  static constexpr int kRecvBytes = (C - 1) * kOwn * kFragBytes;  // a warp's bytes from its peers per chunk
  static constexpr int kDepth = 2;  // chunks of codes per warp in the register ring
  static_assert(kLutBytes % 1024 == 0 && kSmem <= kWgMaxSmem && kWgSteps % C == 0);
  static_assert(kBN * kWgOutStride * 2 <= kXSlots * kXBytes);
};

// Whether a cluster variant fits: at most 8 groups of 8 ranks (rank 128's A^T does not fit beside the rings).
constexpr bool cluster_fits(int r8) { return r8 <= 8; }

__device__ __forceinline__ void lds_v4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void sts_v4(uint32_t addr, const uint32_t (&r)[4]) {
  asm volatile("st.shared.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
}

// The lane's codes of steps `first` .. of a chunk as steps 0 ..: its bit string (8 codes of Bits bits per step)
// shifted right by first x 8 Bits bits. `first` is the cluster rank's first step, a run-time value: indexing the
// code registers with it would put them in local memory, so each possible shift is formed with constant indices and
// the rank's chosen by selects (a few instructions per chunk).
template <int Bits, int C>
__device__ __forceinline__ void own_codes(const uint32_t (&w)[2 * Bits], int rank, uint32_t (&out)[2 * Bits]) {
  constexpr int kWords = 2 * Bits, kOwnBits = kWgSteps / C * 8 * Bits;
#pragma unroll
  for (int j = 0; j < kWords; ++j) out[j] = 0;
#pragma unroll
  for (int r = 0; r < C; ++r) {
#pragma unroll
    for (int j = 0; j < (kOwnBits + 31) / 32; ++j) {
      const int bit = r * kOwnBits + 32 * j, wi = bit / 32, sh = bit % 32;
      const uint32_t hi = wi + 1 < kWords ? w[wi + 1] : 0u;
      const uint32_t v = sh == 0 ? w[wi] : __funnelshift_r(w[wi], hi, sh);
      out[j] = rank == r ? v : out[j];
    }
  }
}

template <int Bits, int R8, int C>
__global__ void __launch_bounds__(kWgThreads, 1)
    wgmma_cluster_gemm_kernel(MmaArgs g, GemmExtras ex, int tiles_per_split, float* partial,
                              const __grid_constant__ CUtensorMap x_map, int pdl) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = ClusterShape<Bits, R8, C>;
  extern __shared__ __align__(1024) unsigned char smem[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);  // [pairs][kCopies]
  const uint32_t base = smem_u32(smem);
  const uint32_t x_ring = base + S::kXOff, w_ring = base + S::kWOff, bars = base + S::kBarOff;
  const auto full = [&](int slot) { return bars + 8 * slot; };
  const auto empty = [&](int slot) { return bars + 8 * (kXSlots + slot); };
  const auto a_full = [&](int slot) { return bars + 8 * (2 * kXSlots + slot); };
  const auto a_empty = [&](int slot) { return bars + 8 * (2 * kXSlots + kASlots + slot); };
  const auto w_full = [&](int slot, int w) {
    return bars + 8 * (2 * kXSlots + 2 * S::kASlotsUsed + slot * kGemmRowTiles + w);
  };
  const auto w_empty = [&](int slot, int w) {
    return bars + 8 * (2 * kXSlots + 2 * S::kASlotsUsed + (kWSlots + slot) * kGemmRowTiles + w);
  };
  const auto a_slot = [&](int c, int c0) {
    return reinterpret_cast<uint16_t*>(smem + S::kAOff + (c - c0) % kASlots * S::kABytes);
  };
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  // Cluster rank r takes activation tile C x (cluster's group) + r of the cluster's 128 weight rows; clusters run over
  // row tiles fastest, then groups of C activation tiles; blockIdx.y is the split (k range).
  const int rank = static_cast<int>(cooperative_groups::this_cluster().block_rank());
  const int row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles;
  const int cluster = static_cast<int>(blockIdx.x) / C;
  const int row_cta = cluster % row_ctas, batch_tile = cluster / row_ctas * C + rank;
  const int split = blockIdx.y;
  const int c0 = split * tiles_per_split, c1 = min(c0 + tiles_per_split, g.col_tiles);
  gemm_pdl_start(pdl);
  const int b0 = batch_tile * kBN;
  const int first_step = rank * S::kOwn;  // this CTA's steps of every chunk: first_step .. + kOwn - 1
  if (threadIdx.x == 0) {
    for (int s = 0; s < kXSlots; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kGemmRowTiles);
    }
    for (int s = 0; s < S::kASlotsUsed; ++s) {
      mbar_init(a_full(s), 32);
      mbar_init(a_empty(s), kGemmRowTiles);
    }
    for (int s = 0; s < kWSlots; ++s)
      for (int w = 0; w < kGemmRowTiles; ++w) {
        mbar_init(w_full(s, w), 1);
        mbar_init(w_empty(s, w), C);
      }
    mbar_init_fence();
  }

  // The consumers request their first codes (and block-wise scales, LoRDS' B factors) before the table is filled.
  const int mt = row_cta * kGemmRowTiles + warp;
  const int mtc = mt < g.row_tiles ? mt : 0;  // a tile past the end decodes tile 0; its rows are never written
  const uint8_t* codes = g.codes + static_cast<int64_t>(mtc) * g.col_tiles * S::kTileBytes;
  constexpr int PD = S::kDepth;
  uint32_t code_ring[PD][S::kWords];  // slot d holds chunk c0 + d + k PD
  uint32_t scale_lo[PD], scale_hi[PD];
  uint32_t bfac[S::kLords ? k16_groups(R8) : 1][4];
  const auto load_codes = [&](int c, uint32_t(&ring)[S::kWords], uint32_t& lo, uint32_t& hi) {
    load_chunk_operands<Bits, S::kLords>(g, codes, mtc, c, lane, ring, lo, hi);
  };
  if (warp < kGemmRowTiles)
    load_first_operands<Bits, R8, PD>(g, codes, mtc, c0, c1, lane, code_ring, scale_lo, scale_hi, bfac);
  fill_bf16_pair_table<Bits, S::kCopies>(lut, g.values_h, kWgThreads);
  // The tables and every CTA's barriers are ready (mbar_init_fence) before any peer writes or arrives.
  cooperative_groups::this_cluster().sync();

  if (warp >= kGemmRowTiles) {  // the producer: x by TMA, A^T of this CTA's columns by cp.async
    setmaxnreg_dec<wg_producer_regs(1)>();
    if (warp > kGemmRowTiles) return;
    const auto stage_a_t = [&](int c) {
      if constexpr (S::kLords) {
        const int i = c - c0;
        if (i >= kASlots) mbar_wait(a_empty(i % kASlots), (i / kASlots - 1) & 1);
        stage_chunk_a_t<rank_pad_of(R8), R8, a_t_stride(R8), 32, S::kACols>(
            ex.a_t, int64_t{c} * kTileCols + 16 * first_step, a_slot(c, c0), lane);
        cp_async_mbar_arrive(a_full(i % kASlots));
      }
    };
    // A^T runs two chunks ahead of x: the consumers decode chunk c + 1 while they multiply chunk c.
    stage_a_t(c0);
    if (c0 + 1 < c1) stage_a_t(c0 + 1);
    griddep_wait();  // launched early (pdl), x may still be written by the previous kernel
    for (int c = c0; c < c1; ++c) {
      const int i = c - c0, slot = i % kXSlots;
      if (i >= kXSlots) mbar_wait(empty(slot), (i / kXSlots - 1) & 1);
      if (lane == 0) tma_x_chunk<kBN>(x_ring + slot * S::kXBytes, &x_map, c, b0, full(slot));
      if (c + 2 < c1) stage_a_t(c + 2);
    }
    cp_async_wait<0>();
    return;
  }

  setmaxnreg_inc<wg_consumer_regs(1)>();
  const uint32_t lut_lane = smem_u32(lut) + 4 * (lane % S::kCopies);
  const uint32_t w_lane = w_ring + (warp * kWgSteps * 32 + lane) * 16;  // + slot x kWBytes + step x kFragBytes
  // Own step k of chunk c (own: own_codes of the chunk's codes): decoded, stored here and sent to the peers' slot of
  // chunk c.
  const auto decode_send = [&](int c, int k, const uint32_t(&own)[S::kWords], uint32_t step_blocks,
                               uint32_t chunk_sc) {
    const int s = first_step + k, i = c - c0;
    uint32_t pair[4], w[4];
    lookup_pairs<Bits, S::kCopies>(own, k, lut_lane, pair);
    if constexpr (S::kLords) {
      uint32_t afr[2][k16_groups(R8)][2];
      float sc[2][4];
      load_a_t_frags<R8, a_t_stride(R8)>(a_slot(c, c0), k, lane, afr);
      scale_mma<R8>(bfac, afr, sc);
      lords_weights(pair, sc, w);
    } else {
      blockwise_weights(pair, __shfl_sync(0xffffffffu, chunk_sc, 4 * gq + (step_blocks >> (2 * s) & 3)), w);
    }
    const uint32_t dst = w_lane + (i % kWSlots) * kWBytes + s * kFragBytes;
    sts_v4(dst, w);
#pragma unroll
    for (int r = 1; r < C; ++r) {
      const uint32_t peer = (rank + r) % C;
      st_async_16(cluster_addr(dst, peer), w, cluster_addr(w_full(i % kWSlots, warp), peer));
    }
  };
  // Before the first own step of chunk c: the slot is free in every CTA, and (LoRDS) A^T has landed.
  const auto before_decode = [&](int c) {
    const int i = c - c0;
    if (i >= kWSlots) mbar_wait(w_empty(i % kWSlots, warp), (i / kWSlots - 1) & 1);
    if constexpr (S::kLords) mbar_wait(a_full(i % kASlots), (i / kASlots) & 1);
  };
  // After the last: A^T's slot is released, and the warp's own arrival on its w_full announces the peers' bytes.
  const auto after_decode = [&](int c) {
    const int i = c - c0;
    if constexpr (S::kLords) {
      __syncwarp();  // every lane's ldmatrix reads come before lane 0's release
      if (lane == 0) mbar_arrive(a_empty(i % kASlots));
    }
    if (lane == 0) mbar_arrive_expect_tx(w_full(i % kWSlots, warp), S::kRecvBytes);
  };
  // A step's block-wise scales: the chunk's packed blocks and scales (nothing for LoRDS).
  const auto blocks_of = [&](int c) { return S::kLords ? 0u : chunk_step_blocks(g, c); };

  {  // chunk c0's own steps, before the loop
    before_decode(c0);
    const uint32_t sc = S::kLords ? 0 : chunk_scales(g, c0, t, scale_lo[0], scale_hi[0]);
    uint32_t own[S::kWords];
    own_codes<Bits, C>(code_ring[0], rank, own);
#pragma unroll
    for (int k = 0; k < S::kOwn; ++k) decode_send(c0, k, own, blocks_of(c0), sc);
    after_decode(c0);
    if (c0 + PD < c1) load_codes(c0 + PD, code_ring[0], scale_lo[0], scale_hi[0]);
  }

  float acc[kBN / 2];
#pragma unroll
  for (int i = 0; i < kBN / 2; ++i) acc[i] = 0.0f;
  // The steps of chunk c after whose wgmma an own step of chunk c + 1 is decoded: spread over the chunk.
  constexpr int kEvery = kWgSteps / S::kOwn;
  // Chunk cb + D, D a template argument so that the code ring's slots are constants (registers, not a stack frame).
  const auto chunk = [&]<int D>(int cb, uint32_t(&a)[4][4]) {
    constexpr int nd = (D + 1) % PD;  // the ring slot of chunk c + 1
    const int c = cb + D;
    if (c >= c1) return;
    const int i = c - c0, xs = i % kXSlots;
    const bool next = c + 1 < c1;
    mbar_wait(full(xs), (i / kXSlots) & 1);
    mbar_wait(w_full(i % kWSlots, warp), (i / kWSlots) & 1);
    __syncwarp();  // the warp's own stores of the slot
    const uint32_t x_slot = x_ring + xs * S::kXBytes, w_slot = w_lane + (i % kWSlots) * kWBytes;
    const uint32_t next_blocks = next ? blocks_of(c + 1) : 0;
    const uint32_t next_sc = S::kLords || !next ? 0 : chunk_scales(g, c + 1, t, scale_lo[nd], scale_hi[nd]);
    // Fragments are loaded two steps ahead (a short-scoreboard stall before each wgmma when it was one: Nsight,
    // fourteenth session): steps 0 and 1 here, step s + 2 after step s's wgmma has issued.
    lds_v4(w_slot, a[0]);
    lds_v4(w_slot + kFragBytes, a[1]);
    uint32_t own[S::kWords];
#pragma unroll
    for (int s = 0; s < kWgSteps; ++s) {
      wgmma_fence();
      wgmma_bf16_rs<kBN>(acc, a[s % 4], smem_desc_sw128(x_slot + s / 4 * S::kHalfBytes + s % 4 * 32));
      wgmma_commit();
      // After the last step's wgmma has issued (it read every lane's registers, so every load of the slot has
      // returned): release the slot in every CTA, unless no chunk reuses it. A data dependence, not a fence: the
      // arrivals keep the default CTA-scope semantics (cluster scope put a GPU-wide MEMBAR before each).
      if (s + 1 == kWgSteps && lane == 0 && c + kWSlots < c1)
#pragma unroll
        for (int r = 0; r < C; ++r) mbar_arrive_cluster(cluster_addr(w_empty(i % kWSlots, warp), r));
      // Steps s - 2 and older are done: a[(s + 2) % 4] is free for step s + 2; after the last two steps the wait
      // frees a[0] and a[1] for the next chunk's first loads.
      if (s != kWgSteps - 2) wgmma_wait<2>();
      if (s == 1 && i > 0 && lane == 0) mbar_arrive(empty((i - 1) % kXSlots));
      if (s + 2 < kWgSteps) lds_v4(w_slot + (s + 2) * kFragBytes, a[(s + 2) % 4]);
      if (s % kEvery == 0 && next) {
        const int k = s / kEvery;
        if (k == 0) {
          before_decode(c + 1);
          own_codes<Bits, C>(code_ring[nd], rank, own);
        }
        decode_send(c + 1, k, own, next_blocks, next_sc);
        if (k + 1 == S::kOwn) {
          after_decode(c + 1);
          if (c + 1 + PD < c1) load_codes(c + 1 + PD, code_ring[nd], scale_lo[nd], scale_hi[nd]);
        }
      }
    }
  };
  static_assert(PD == 2);
  for (int cb = c0; cb < c1; cb += PD) {
    uint32_t a[4][4];  // loaded steps, as in the one-CTA kernel (local to the body: see wgmma_gemm.cu)
    chunk.template operator()<0>(cb, a);
    chunk.template operator()<1>(cb, a);
    wgmma_wait<0>();
  }
  fence_operands(acc);
  griddep_wait();  // (long since returned: x came after the producer's) the partial sums and y after it
  store_wg_tile<kBN>(g, acc, partial, split, row_cta, b0, smem + S::kXOff);
#else
  (void)g, (void)ex, (void)tiles_per_split, (void)partial, (void)x_map, (void)pdl;
  __trap();  // the launcher picks this kernel only where sm_90a code runs
#endif
}

std::atomic<int> cluster_forced{-1};

// -1: the default rule; 0 / 1: force_wgmma_cluster_gemm's or HILO_GEMM_XDECODE's choice (the test hook first).
int cluster_mode() {
  static const int env = env_override("HILO_GEMM_XDECODE", 0, 1, -1);
  const int forced = cluster_forced.load(std::memory_order_relaxed);
  return forced >= 0 ? forced : env;
}

template <int Bits, int R8, int C>
int launch_variant(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  using S = ClusterShape<Bits, R8, C>;
  constexpr auto kernel = wgmma_cluster_gemm_kernel<Bits, R8, C>;
  if (const int e = allow_smem_once<kernel>(g.device, S::kSmem); e != 0) return e;
  const int64_t row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles, batch_tiles = (g.batch + kBN - 1) / kBN;
  if (batch_tiles % C != 0 || row_ctas * batch_tiles > INT32_MAX) return static_cast<int>(cudaErrorInvalidValue);
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = C;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg =
      wg_launch_config(dim3(static_cast<unsigned>(row_ctas * batch_tiles), 1), kWgThreads, S::kSmem, stream);
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  // Resident clusters: fewer than SMs / C where a GPC's SM count is not a multiple of C.
  const int clusters = clusters_resident<kernel>(g.device, cfg);
  if (clusters <= 0) return static_cast<int>(cudaErrorInvalidConfiguration);  // (the caller falls back)
  static const bool info = env_flag("HILO_GEMM_XDECODE_INFO", false);
  if (info) fprintf(stderr, "[wgmma cluster GEMM] C = %d, %d clusters resident\n", C, clusters);
  const int64_t cluster_waves = (row_ctas * batch_tiles / C + clusters - 1) / clusters;
  const int64_t cta_waves = (row_ctas * batch_tiles + g.sm_count - 1) / std::max(1, g.sm_count);
  // The default also wants a grid of at least a wave of clusters (it was not measured with split k).
  if (cluster_mode() < 0 && (cluster_waves > cta_waves || row_ctas * batch_tiles / C < clusters))
    return static_cast<int>(cudaErrorInvalidConfiguration);
  WgLaunchPlan p;
  if (const int e = plan_wg_launch(g, row_ctas * batch_tiles, int64_t{clusters} * C, kBN, stream, p); e != 0) return e;
  cfg.gridDim.y = static_cast<unsigned>(p.splits);
  const GemmPdl pdl = gemm_pdl_launch(cfg, attr);
  return finish_gemm_launch(cudaLaunchKernelEx(&cfg, kernel, g, ex, p.tiles_per_split, p.partial, p.x_map, pdl),
                            p.partial, p.splits, g, stream);
}

template <int C>
int launch_cluster(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  return with_bits(g.bits, [&](auto bits) {
    constexpr int Bits = decltype(bits)::value;
    return with_rank_groups(g, [&](auto r8) {
      constexpr int R8 = decltype(r8)::value;
      if constexpr (cluster_fits(R8)) return launch_variant<Bits, R8, C>(g, ex, stream);
      return static_cast<int>(cudaErrorInvalidValue);
    });
  });
}

}  // namespace

void force_wgmma_cluster_gemm(int mode) { cluster_forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed); }

int wgmma_cluster_size(const MmaArgs& g) {
  const int mode = cluster_mode();
  if (mode == 0) return 1;
  if (g.lords && !cluster_fits(g.rank_pad / 8)) return 1;  // (the padded rank's groups bound with_rank_groups' R8)
  const int64_t tiles = (g.batch + kBN - 1) / kBN;
  if (mode == 1) {  // HILO_GEMM_XDECODE_C=2 or 4 asks for that size (where it divides the tiles), for sweeps
    static const int size = env_override("HILO_GEMM_XDECODE_C", 2, 4, 0);
    if (size == 2 || size == 4) return tiles % size == 0 ? size : 1;
    return tiles % 4 == 0 ? 4 : tiles % 2 == 0 ? 2 : 1;
  }
  // The default: where it measured faster (H100, 2026-12-06, docs/results/lords-cuda.md): LoRDS at ranks 49-64
  // (7-8 groups of 8: the scale product it saves is largest) in clusters of 4, 1.21x on 14336x4096 at batch 1024.
  // Clusters of 2 tied with the one-CTA kernel for LoRDS, and block-wise lost with either (it saves only the decode).
  // launch_variant also requires that the clusters take no more waves than the one-CTA kernel's CTAs would (an
  // H100 holds 30 clusters of 4, not 33: 4096x14336 at batch 1024 took 2 waves of clusters, 1.6x slower), and that
  // they fill a wave at least.
  return g.lords && g.rank > 48 && tiles % 4 == 0 ? 4 : 1;
}

int launch_wgmma_cluster_gemm(const MmaArgs& g, const GemmExtras& ex, int cluster, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (cluster == 4) return launch_cluster<4>(g, ex, stream);
  if (cluster == 2) return launch_cluster<2>(g, ex, stream);
  return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace hilo::lords::cuda_detail
