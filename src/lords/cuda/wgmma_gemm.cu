// The batch GEMM on wgmma (sm_90a; see wgmma_gemm.hpp). Work split: a CTA of two consumer warpgroups owns 128 weight
// rows (warp w decodes the 16-row tile w; warpgroup h multiplies rows 64 h .. + 63 as wgmma's M), BN activation rows
// (wgmma's N) and a range of 128-column chunks (k). A producer warp brings each chunk's activations by TMA into a ring
// of shared-memory slots, in wgmma's 128-byte-swizzled K-major layout (two 64-column boxes), and LoRDS' A^T by
// cp.async into a ring of its own; an mbarrier per slot says it has landed, another that both warpgroups are done with
// it (no CTA barrier in the main loop). Each consumer warp decodes its tile one 16-column step ahead of its
// warpgroup's wgmma, from codes (and block-wise scales) prefetched two chunks ahead in registers, while the two
// previous steps' wgmmas may still run, also across chunks.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "../../cuda/tensor_map.hpp"
#include "../../cuda/tma.cuh"
#include "../gpu_layout.hpp"
#include "gemm_common.cuh"
#include "split_workspace.hpp"
#include "wgmma_cluster_gemm.hpp"
#include "wgmma_gemm.hpp"
#include "wgmma_gemm_parts.cuh"
#include "wgmma_rs.cuh"

namespace hilo::lords::cuda_detail {
namespace {

using cuda_ptx::mbar_arrive;
using cuda_ptx::mbar_init;
using cuda_ptx::mbar_init_fence;
using cuda_ptx::mbar_wait;
using cuda_ptx::setmaxnreg_dec;
using cuda_ptx::setmaxnreg_inc;
using cuda_ptx::cp_async_mbar_arrive;
using cuda_ptx::smem_desc_sw128;
using gpu_layout::kTileCols;
using gpu_layout::kTileRows;
constexpr int kSteps = kWgSteps;
constexpr int kThreads = kWgThreads;
constexpr int kMaxSmem = kWgMaxSmem;
// CTAs per SM: two for block-wise at 64 activation rows (few registers; 96 KB of shared memory), so that small grids
// can split k over twice the slots; else one.
constexpr int wg_ctas_per_sm(int r8, int bn) { return r8 == 0 && bn == 64 ? 2 : 1; }

// Shared memory: the pair table; a ring of x slots (BN activation rows x 128 columns, swizzled); for LoRDS a ring of
// kASlots A^T slots (128 columns x the ranks of the scale product); two mbarriers per slot. Block-wise scales travel
// in registers.
// Two A^T slots are enough: the producer stages A^T of chunk c + 1 right after x of chunk c, into the slot of chunk
// c - 1, which the consumers release at that chunk's step 6, before they release chunk c - 1's x (the producer's
// next wait, at chunk c's step 1).
constexpr int kASlots = 2;
constexpr int wg_a_bytes(int r8) { return r8 > 0 ? 2 * kTileCols * a_t_stride(r8) : 0; }
constexpr int wg_smem_bytes(int bits, int r8, int bn, int slots) {
  const int a_slots = r8 > 0 ? kASlots : 0;
  return wg_lut_bytes(bits) + slots * wg_x_bytes(bn) + a_slots * wg_a_bytes(r8) + 16 * (slots + a_slots);
}
// Whether two x slots fit: not 256 activation rows at rank 128 (launch_fitting halves them there).
constexpr bool wg_fits(int bits, int r8, int bn) { return wg_smem_bytes(bits, r8, bn, 2) <= kMaxSmem; }

template <int Bits, int R8, int BN>
struct WgShape {
  static constexpr bool kLords = R8 > 0;
  static constexpr int kCtas = wg_ctas_per_sm(R8, BN);
  static constexpr int kWords = 2 * Bits, kTileBytes = 256 * Bits;
  static constexpr int kLutBytes = wg_lut_bytes(Bits);
  static constexpr int kHalfBytes = BN * 128;  // 64 columns of the chunk for all BN rows (one TMA box, swizzled)
  static constexpr int kXBytes = wg_x_bytes(BN);
  static constexpr int kABytes = wg_a_bytes(R8);
  static_assert(kXBytes == 2 * kHalfBytes && wg_fits(Bits, R8, BN));
  static_assert(kLutBytes % 1024 == 0 && kXBytes % 1024 == 0);  // swizzled tiles start 1024-byte aligned
  // x slots: as many as fit, up to 4 (the producer runs up to kSlots - 1 chunks ahead of the consumers).
  static constexpr int kSlots = wg_smem_bytes(Bits, R8, BN, 4) <= kMaxSmem   ? 4
                                : wg_smem_bytes(Bits, R8, BN, 3) <= kMaxSmem ? 3
                                                                             : 2;
  static constexpr int kASlotsUsed = kLords ? kASlots : 0;
  static constexpr int kSmem = wg_smem_bytes(Bits, R8, BN, kSlots);
  static_assert(BN * kWgOutStride * 2 <= 2 * kXBytes);
  static constexpr int kDepth = 2;  // chunks of codes per warp in the register ring
};

template <int Bits, int R8, int BN>
__global__ void __launch_bounds__(kThreads, wg_ctas_per_sm(R8, BN))
    wgmma_gemm_kernel(MmaArgs g, GemmExtras ex, int tiles_per_split, float* partial, WgTail tail,
                      const __grid_constant__ CUtensorMap x_map, int pdl) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = WgShape<Bits, R8, BN>;
  extern __shared__ __align__(1024) unsigned char smem[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);  // [pairs][32]
  unsigned char* ring = smem + S::kLutBytes;          // [kSlots] x slots, then [kASlotsUsed] A^T slots
  const uint32_t ring_u32 = smem_u32(ring), a_ring = ring_u32 + S::kSlots * S::kXBytes;
  const uint32_t bars = a_ring + S::kASlotsUsed * S::kABytes;
  // Per x slot: full (the chunk's x landed), empty (both warpgroups are done with it); likewise per A^T slot.
  const auto full = [&](int slot) { return bars + 8 * slot; };
  const auto empty = [&](int slot) { return bars + 8 * (S::kSlots + slot); };
  const auto a_full = [&](int slot) { return bars + 16 * S::kSlots + 8 * slot; };
  const auto a_empty = [&](int slot) { return bars + 16 * S::kSlots + 8 * (kASlots + slot); };
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  // The CTA's output tile: row tiles (128 weight rows) fastest, then batch tiles (BN activation rows); blockIdx.y is
  // the split (k range), or the tail's CTAs split the last wave's tiles (wg_work_of). (Grouping row tiles into waves,
  // so that a wave reads fewer codes from DRAM, measured no different on 14336x4096 at batch 1024: 2026-12-06.)
  const WgWork work = wg_work_of(tail, tiles_per_split, g.col_tiles);
  const int row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles;
  const int row_cta = work.tile % row_ctas, batch_tile = work.tile / row_ctas;
  const int split = work.split, c0 = work.c0, c1 = work.c1;
  const int b0 = batch_tile * BN;  // (the launcher keeps the batch below 2^31)
  const auto a_ptr_of = [&](int c) {
    return reinterpret_cast<uint16_t*>(ring + S::kSlots * S::kXBytes + (c - c0) % kASlots * S::kABytes);
  };
  gemm_pdl_start(pdl);
  if (threadIdx.x == 0) {
    for (int s = 0; s < S::kSlots; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kGemmRowTiles);
    }
    for (int s = 0; s < S::kASlotsUsed; ++s) {
      mbar_init(a_full(s), 32);
      mbar_init(a_empty(s), kGemmRowTiles);
    }
    mbar_init_fence();
  }

  // The consumers request their first codes (and block-wise scales, LoRDS' B factors) before the table is filled.
  const int mt = row_cta * kGemmRowTiles + warp;
  const int mtc = mt < g.row_tiles ? mt : 0;  // a tile past the end decodes tile 0; its rows are never written
  const uint8_t* codes = g.codes + static_cast<int64_t>(mtc) * g.col_tiles * S::kTileBytes;
  constexpr int PD = S::kDepth;
  uint32_t code_ring[PD][S::kWords];       // slot d holds chunk c0 + d + k PD
  uint32_t scale_lo[PD], scale_hi[PD];     // block-wise: the chunk's scales (load_chunk_scales)
  uint32_t bfac[S::kLords ? k16_groups(R8) : 1][4];  // LoRDS: the warp's rows of B
  if (warp < kGemmRowTiles)
    load_first_operands<Bits, R8, PD>(g, codes, mtc, c0, c1, lane, code_ring, scale_lo, scale_hi, bfac);
  fill_bf16_pair_table<Bits>(lut, g.values_h, kThreads);
  __syncthreads();  // the table and the barriers are ready (one barrier for all warps: the producer's too)

  if (warp >= kGemmRowTiles) {  // the producer: chunk c into its slots once their last chunks are consumed
    setmaxnreg_dec<wg_producer_regs(S::kCtas)>();
    if (warp > kGemmRowTiles) return;
    const auto stage_a_t = [&](int c) {  // LoRDS: A^T of chunk c, by the 32 lanes (block-wise: nothing)
      if constexpr (S::kLords) {
        const int i = c - c0;
        if (i >= kASlots) mbar_wait(a_empty(i % kASlots), (i / kASlots - 1) & 1);
        stage_chunk_a_t<rank_pad_of(R8), R8, a_t_stride(R8), 32>(ex.a_t, int64_t{c} * kTileCols, a_ptr_of(c),
                                                                  lane);
        cp_async_mbar_arrive(a_full(i % kASlots));
      }
    };
    stage_a_t(c0);
    griddep_wait();  // launched early (pdl), x may still be written by the previous kernel
    for (int c = c0; c < c1; ++c) {
      const int i = c - c0, slot = i % S::kSlots;
      if (i >= S::kSlots) mbar_wait(empty(slot), (i / S::kSlots - 1) & 1);
      if (lane == 0) tma_x_chunk<BN>(ring_u32 + slot * S::kXBytes, &x_map, c, b0, full(slot));
      // A^T runs a chunk ahead of x (a few KB), so that the consumers never wait for it.
      if (c + 1 < c1) stage_a_t(c + 1);
    }
    cp_async_wait<0>();
    return;
  }

  setmaxnreg_inc<wg_consumer_regs(S::kCtas)>();
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
      const int i = c - c0, slot = i % S::kSlots;
      mbar_wait(full(slot), (i / S::kSlots) & 1);
      const uint32_t x_slot = ring_u32 + slot * S::kXBytes;
      const uint32_t step_blocks = S::kLords ? 0 : chunk_step_blocks(g, c);
      const uint32_t chunk_sc = S::kLords ? 0 : chunk_scales(g, c, t, scale_lo[d], scale_hi[d]);
      const uint16_t* a_t = a_ptr_of(c);
      const auto decode = [&](int s, uint32_t (&w)[4]) {
        uint32_t pair[4];
        lookup_pairs<Bits>(code_ring[d], s, lut_lane, pair);
        if constexpr (S::kLords) {
          uint32_t afr[2][k16_groups(R8)][2];
          float sc[2][4];
          load_a_t_frags<R8, a_t_stride(R8)>(a_t, s, lane, afr);
          scale_mma<R8>(bfac, afr, sc);
          lords_weights(pair, sc, w);
        } else {
          blockwise_weights(pair, __shfl_sync(0xffffffffu, chunk_sc, 4 * gq + (step_blocks >> (2 * s) & 3)), w);
        }
      };
      if constexpr (S::kLords) mbar_wait(a_full(i % kASlots), (i / kASlots) & 1);
      decode(0, a[0]);  // a[0]: step 4 of the previous chunk, complete (at most steps 5-7 are in flight)
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        wgmma_fence();
        wgmma_bf16_rs<BN>(acc, a[s % 4], smem_desc_sw128(x_slot + s / 4 * S::kHalfBytes + s % 4 * 32));
        wgmma_commit();
        if (s + 1 < kSteps) {
          wgmma_wait<2>();  // steps s - 2 and older are done: a[(s + 1) % 4] is free
          // After step 1: every wgmma of the previous chunk has completed.
          if (s == 1 && i > 0 && lane == 0) mbar_arrive(empty((i - 1) % S::kSlots));
          decode(s + 1, a[(s + 1) % 4]);
          // A^T is done with after the last decode (__syncwarp: every lane's ldmatrix reads come before lane 0's
          // release).
          if constexpr (S::kLords)
            if (s == 6) {
              __syncwarp();
              if (lane == 0) mbar_arrive(a_empty(i % kASlots));
            }
        }
      }
      if (c + PD < c1)
        load_chunk_operands<Bits, S::kLords>(g, codes, mtc, c + PD, lane, code_ring[d], scale_lo[d], scale_hi[d]);
    }
    wgmma_wait<0>();
  }
  fence_operands(acc);
  griddep_wait();  // (long since returned: x came after the producer's) the partial sums and y after it

  if (work.tail_q >= 0 && !tail_sum<BN>(acc, tail, work, ring)) return;  // another part adds this tile
  store_wg_tile<BN>(g, acc, partial, split, row_cta, b0, ring);
#else
  (void)g, (void)ex, (void)tiles_per_split, (void)partial, (void)tail, (void)x_map, (void)pdl;
  __trap();  // the launcher picks this kernel only where sm_90a code runs
#endif
}

template <int Bits, int R8, int BN>
int launch_variant(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  using S = WgShape<Bits, R8, BN>;
  constexpr auto kernel = wgmma_gemm_kernel<Bits, R8, BN>;
  if (const int e = allow_smem_once<kernel>(g.device, S::kSmem); e != 0) return e;
  const int64_t row_ctas = (g.row_tiles + kGemmRowTiles - 1) / kGemmRowTiles, batch_tiles = (g.batch + BN - 1) / BN;
  // (The tail split adds at most kTailMostSplits x slots CTAs.)
  if (row_ctas * batch_tiles > INT32_MAX / 2) return static_cast<int>(cudaErrorInvalidValue);
  const int64_t slots = int64_t{std::max(1, ctas_per_sm<kernel>(g.device, kThreads, S::kSmem))} * g.sm_count;
  WgLaunchPlan p;
  const int64_t tiles = row_ctas * batch_tiles;
  constexpr int64_t kPartFloats = wg_tail_part_floats(BN);
  if (const int e = plan_wg_launch(g, tiles, slots, BN, stream, p, 0, kPartFloats); e != 0) return e;
  // Split k added in the kernel (p.sum), or a grid of several waves whose last wave's tiles split k (WgTail).
  WgTail tail;
  void* tail_buffer = nullptr;
  dim3 grid;
  if (const int e = plan_wg_tail(g, tiles, slots, kPartFloats, stream, p, tail, grid, tail_buffer); e != 0) return e;
  cudaLaunchConfig_t cfg = wg_launch_config(grid, kThreads, S::kSmem, stream);
  cudaLaunchAttribute attrs[1];
  const GemmPdl pdl = gemm_pdl_launch(cfg, attrs);
  const cudaError_t launched = cudaLaunchKernelEx(&cfg, kernel, g, ex, p.tiles_per_split, p.partial, tail, p.x_map, pdl);
  if (tail_buffer) cudaFreeAsync(tail_buffer, stream);
  return finish_gemm_launch(launched, p.partial, p.splits, g, stream);
}

template <int Bits, int R8, int BN>
int launch_fitting(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  return launch_variant<Bits, R8, wg_fits(Bits, R8, BN) ? BN : BN / 2>(g, ex, stream);
}

template <int Bits, int BN>
int launch_bn(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  return with_rank_groups(g, [&](auto r8) { return launch_fitting<Bits, decltype(r8)::value, BN>(g, ex, stream); });
}

template <int Bits>
int launch_bits(const MmaArgs& g, const GemmExtras& ex, cudaStream_t stream) {
  // Activation rows per CTA: 64 up to batch 64, 128 up to 128, else 256 (128 where 256 do not fit: rank 128);
  // HILO_GEMM_BN=64|128|256 forces a width for sweeps.
  static const int forced = env_override("HILO_GEMM_BN", 64, 256, 0);
  const int bn = forced == 64 || forced == 128 || forced == 256 ? forced : g.batch <= 64 ? 64 : g.batch <= 128 ? 128 : 256;
  if (bn == 64) return launch_bn<Bits, 64>(g, ex, stream);
  // The cluster kernel where its rule (or HILO_GEMM_XDECODE) takes it; where it declines at launch (no cluster can be
  // resident, or by default more waves than the one-CTA kernel), the one-CTA kernel below.
  if (const int cluster = bn == 256 ? wgmma_cluster_size(g) : 1; cluster > 1)
    if (const int e = launch_wgmma_cluster_gemm(g, ex, cluster, stream); e != cudaErrorInvalidConfiguration) return e;
  if (bn == 256) return launch_bn<Bits, 256>(g, ex, stream);
  return launch_bn<Bits, 128>(g, ex, stream);
}

std::atomic<int> wgmma_forced{-1};

}  // namespace

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

// The tail split's cost model, in units of one whole tile's time: the tail's parts run in ceil(rem splits / slots)
// waves of 1 / splits of a tile plus a fixed cost per part (its prologue: codes, pair table, first chunk), and the last
// part adds every part's partial sums (read back from L2). Taken where it saves at least kTailMinGain of a tile.
// Example, 14336x4096 at batch 1024 on 132 SMs: 448 tiles, 3 whole waves and 52 tiles left: 2 splits, cost 0.61.
namespace {
constexpr double kTailPartCost = 0.05, kTailSumCost = 0.03, kTailMinGain = 0.1;
constexpr int kTailMostSplits = 8;
constexpr int64_t kTailBytes = int64_t{32} << 20;  // the partial sums stay in L2
std::atomic<int> tail_forced_slots{0}, tail_forced_splits{0};
}  // namespace

void force_wgmma_tail(int slots, int splits) {
  tail_forced_slots.store(std::max(-1, slots), std::memory_order_relaxed);
  tail_forced_splits.store(std::max(0, splits), std::memory_order_relaxed);
}

WgTailPlan choose_tail_split(int64_t ctas, int64_t slots, int col_tiles, int64_t tile_bytes) {
  static const bool on = env_flag("HILO_GEMM_TAIL", true);
  const int forced_slots = tail_forced_slots.load(std::memory_order_relaxed);
  const int forced_splits = tail_forced_splits.load(std::memory_order_relaxed);
  if (forced_slots > 0) slots = forced_slots;
  if ((!on && forced_slots == 0) || forced_slots < 0 || slots <= 0 || ctas <= slots || col_tiles < 2) return {};
  const int64_t whole = (ctas - 1) / slots, rem = ctas - whole * slots;  // rem: 1 .. slots tiles in the last wave
  int best = 1;
  double best_cost = 1.0 - kTailMinGain;
  for (int s = 2; s <= std::min(kTailMostSplits, col_tiles / 2); ++s) {
    if (rem * s * tile_bytes > kTailBytes) break;
    const double waves = static_cast<double>((rem * s + slots - 1) / slots);
    const double cost = waves * (1.0 / s + kTailPartCost) + kTailSumCost * s;
    if (cost < best_cost) best = s, best_cost = cost;
  }
  if (forced_slots > 0 && forced_splits > 0) best = std::min(forced_splits, col_tiles);
  WgTailPlan plan;
  plan.tiles_per_split = (col_tiles + best - 1) / best;
  plan.splits = (col_tiles + plan.tiles_per_split - 1) / plan.tiles_per_split;
  if (plan.splits <= 1) return {};
  plan.dp_ctas = whole * slots;
  return plan;
}

int plan_wg_launch(const MmaArgs& g, int64_t ctas, int64_t slots, int bn, cudaStream_t stream, WgLaunchPlan& plan,
                   int splits, int64_t part_floats) {
  plan.splits = splits > 0 ? std::min(splits, g.col_tiles)
                           : choose_splits(ctas, slots, g.col_tiles, 4 * g.batch * g.rows);
  plan.tiles_per_split = (g.col_tiles + plan.splits - 1) / plan.splits;
  plan.splits = (g.col_tiles + plan.tiles_per_split - 1) / plan.tiles_per_split;
  if (plan.splits > 65535) return static_cast<int>(cudaErrorInvalidValue);
  if (const int e = cuda_host::encode_bf16_rows_map(&plan.x_map, g.x, g.batch, g.cols, bn); e != 0) return e;
  plan.partial = nullptr;
  plan.sum = WgTail{};
  if (plan.splits > 1 && part_floats > 0)
    if (const SplitWorkspace* ws = split_workspace(g.device, stream, ctas * plan.splits, part_floats, ctas,
                                                   static_cast<int>(part_floats / kWgConsumers))) {
      plan.sum = WgTail{0, plan.splits, plan.tiles_per_split, ws->partial, ws->counters};
      return 0;
    }
  if (plan.splits > 1) {
    const size_t bytes = sizeof(float) * plan.splits * g.batch * g.rows;
    if (const cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&plan.partial), bytes, stream); e != cudaSuccess)
      return static_cast<int>(e);
  }
  return 0;
}

namespace {
// The last-wave split's parts (tail_tiles x tail.splits of part_floats floats) and counters: the stream's workspace
// where they fit, else a per-call buffer (`owned`, freed by the caller behind the launch) with its counters zeroed.
// Returns a CUDA error code.
int bind_tail_storage(const MmaArgs& g, int64_t part_floats, int64_t tail_tiles, cudaStream_t stream, WgTail& tail,
                      void*& owned) {
  const int64_t parts = tail_tiles * tail.splits;
  const int per_thread = static_cast<int>(part_floats / kWgConsumers);
  if (const SplitWorkspace* ws = split_workspace(g.device, stream, parts, part_floats, tail_tiles, per_thread)) {
    tail.partial = ws->partial, tail.arrivals = ws->counters;
    return 0;
  }
  const int64_t part_bytes = 4 * part_floats * parts;
  if (const cudaError_t e = cudaMallocAsync(&owned, part_bytes + 4 * tail_tiles, stream); e != cudaSuccess)
    return static_cast<int>(e);
  tail.partial = static_cast<float*>(owned);
  tail.arrivals = reinterpret_cast<int*>(static_cast<char*>(owned) + part_bytes);
  if (const cudaError_t e = cudaMemsetAsync(tail.arrivals, 0, 4 * tail_tiles, stream); e != cudaSuccess) {
    cudaFreeAsync(owned, stream);
    owned = nullptr;
    return static_cast<int>(e);
  }
  return 0;
}
}  // namespace

int plan_wg_tail(const MmaArgs& g, int64_t tiles, int64_t slots, int64_t part_floats, cudaStream_t stream,
                 const WgLaunchPlan& plan, WgTail& tail, dim3& grid, void*& owned) {
  tail = plan.sum, grid = plan.grid(tiles), owned = nullptr;
  if (plan.splits != 1) return 0;
  const WgTailPlan tp = choose_tail_split(tiles, slots, g.col_tiles, 4 * part_floats);
  if (tp.splits <= 1) return 0;
  tail = WgTail{static_cast<int>(tp.dp_ctas), tp.splits, tp.tiles_per_split, nullptr, nullptr};
  if (const int e = bind_tail_storage(g, part_floats, tiles - tp.dp_ctas, stream, tail, owned); e != 0) return e;
  grid = dim3(static_cast<unsigned>(tp.dp_ctas + (tiles - tp.dp_ctas) * tp.splits));
  return 0;
}

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
bool wgmma_gemm_forced_on() { return wgmma_forced.load(std::memory_order_relaxed) == 1; }

bool use_wgmma_gemm(const MmaArgs& g) {
  static const int env = env_override("HILO_GEMM_WGMMA", 0, 1, -1);
  if (!sm90a_device(g.device)) return false;
  const int f = wgmma_forced.load(std::memory_order_relaxed);
  if (f >= 0) return f != 0;
  // Every batch of 33 and more: measured on an H100 against mma.sync (docs/results/lords-cuda.md, 2026-12-06).
  // (TMA's coordinates are 32-bit: the batch stays below 2^31.)
  return g.batch >= 33 && g.batch <= INT32_MAX - 256 && env != 0;
}

int launch_wgmma_gemm(const MmaArgs& g, const GemmExtras& ex, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, ex, stream); });
}

}  // namespace hilo::lords::cuda_detail
