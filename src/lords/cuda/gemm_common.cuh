// Helpers of the two batch GEMMs (mma_gemm.cu on mma.sync, wgmma_gemm.cu on Hopper's wgmma). On the device: both
// decode a warp's 16 x 16 step of codes into the same bf16 A fragment (mma.m16n8k16's layout, which is also each
// warp's slice of wgmma's register A operand), with the same pair table, scales and rounding, so they give the same
// weights, and stage their chunks alike. On the host: the split-k tail of a launch and the dispatch over padded ranks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../gpu_layout.hpp"
#include "mma_common.cuh"
#include "mma_gemv.hpp"

namespace hilo::lords::cuda_detail {

constexpr int kChunkBlocks = 4;  // scale blocks a 128-column chunk touches at most (blocks are >= 32 columns)
constexpr int kGemmRowTiles = 8;  // 16-row weight tiles per CTA (one per warp)

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The k = 8 form (A: rows g, g + 8 at k 2t, 2t + 1; B: k 2t, 2t + 1 at column g): LoRDS' scale product for an odd
// last group of 8 ranks.
__device__ __forceinline__ void mma_bf16_k8(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a0), "r"(a1), "r"(b0));
}

// LoRDS' scale product S = B A runs over R8 groups of 8 ranks (0: block-wise): an m16n8k16 per two groups and an
// m16n8k8 for an odd last one. So the B = 64 parity rank of the 14336-wide layers, 49, costs 7 groups instead of its
// padded 64 ranks' 8, and rank 24 costs 3 instead of 4. The stored factors stay padded to rank_pad_of(R8) (zeros past
// the rank); the groups read only the first 8 R8 ranks of each row.
constexpr int k16_groups(int r8) { return (r8 + 1) / 2; }
constexpr int rank_pad_of(int r8) { return r8 <= 2 ? 16 : r8 <= 4 ? 32 : r8 <= 8 ? 64 : 128; }
// bf16 per staged A^T row: the 8 R8 ranks used, plus 8 where that is an even number of 16-byte pieces, so that the
// 8 rows of each ldmatrix matrix start in distinct banks (a row stride of an odd number of 16-byte pieces).
constexpr int a_t_stride(int r8) { return r8 % 2 ? 8 * r8 : 8 * r8 + 8; }

__device__ __forceinline__ uint32_t bf16x2_bits(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  const __nv_bfloat162 p = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
  return *reinterpret_cast<const uint32_t*>(&p);
}

// The scale block of column `col` (a shift for power-of-two blocks).
__device__ __forceinline__ int block_of(const MmaArgs& g, int col) {
  return g.block_shift >= 0 ? col >> g.block_shift : col / g.block;
}

// The GEMMs' pair table, [pair][32 lanes] of bf16 pairs (32 copies: conflict-free lookups; Copies = 16 halves it
// for the cluster-decoded GEMM, where lanes l and l + 16 share a copy: 2-way conflicts), from the fp16 codebook
// values in the kernel's parameters (pair p = value[p % 2^Bits] | value[p / 2^Bits] << 16, as gpu_layout::pair_table),
// so no global load gates it: loaded from global memory, the table waited behind the CTA's code loads for 29% of the
// small-batch GEMM's samples (H100, 4096x4096, batch 16, Nsight Compute). Lane i holds value i and the others take it
// by shuffle (indexing the parameters per pair made divergent constant loads). All `threads` threads (whole warps)
// call it.
template <int Bits, int Copies = 32>
__device__ __forceinline__ void fill_bf16_pair_table(uint32_t* lut, const uint16_t (&values_h)[16], int threads) {
  constexpr int kPairs = 1 << (2 * Bits), kMask = (1 << Bits) - 1, kQuads = Copies / 4;
  static_assert(kPairs * kQuads % 32 == 0, "every lane of a warp takes the same number of iterations");
  const uint16_t own = values_h[threadIdx.x & kMask];
  const float value = __half2float(*reinterpret_cast<const __half*>(&own));
  for (int e = static_cast<int>(threadIdx.x); e < kPairs * kQuads; e += threads) {
    const int p = e / kQuads;
    const uint32_t v = bf16x2_bits(__shfl_sync(~0u, value, p & kMask), __shfl_sync(~0u, value, p >> Bits));
    reinterpret_cast<uint4*>(lut)[e] = make_uint4(v, v, v, v);
  }
}

// The 4 pair-table entries of step s for this lane (lut_lane: the table's address + 4 x (lane % Copies)).
template <int Bits, int Copies = 32>
__device__ __forceinline__ void lookup_pairs(const uint32_t (&codes)[2 * Bits], int s, uint32_t lut_lane,
                                             uint32_t (&pair)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) pair[q] = lds_u32(lut_lane + pair_offset<Bits, Copies>(codes, 4 * s + q));
}

// The same from a table of 256-byte rows (fill_bf16_pair_table with 64 copies; lanes read the first 32), whose 4-bit
// lookup address is one byte permute (lut_offset) instead of a permute and a multiply-add: lut_base is the table's
// address, lane4 = 4 x lane.
template <int Bits>
__device__ __forceinline__ void lookup_pairs_rows256(const uint32_t (&codes)[2 * Bits], int s, uint32_t lut_base,
                                                     uint32_t lane4, uint32_t (&pair)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) pair[q] = lds_u32(lut_base + lut_offset<Bits>(codes, 4 * s + q, lane4));
}

// LoRDS: the warp's 16 rows of B (bf16 [rows][rank_pad], from row0) as the A operand of the scale mma (rank as k),
// G groups of 16 ranks (an odd last group of 8 uses the first two words).
template <int G>
__device__ __forceinline__ void load_b_factors(const uint16_t* b, int64_t row0, int rank_pad, int lane,
                                               uint32_t (&bfac)[G][4]) {
  const uint16_t* brow = b + (row0 + lane / 4) * rank_pad + 2 * (lane % 4);
#pragma unroll
  for (int j = 0; j < G; ++j) {
    bfac[j][0] = *reinterpret_cast<const uint32_t*>(brow + 16 * j);
    bfac[j][1] = *reinterpret_cast<const uint32_t*>(brow + 8 * rank_pad + 16 * j);
    bfac[j][2] = *reinterpret_cast<const uint32_t*>(brow + 16 * j + 8);
    bfac[j][3] = *reinterpret_cast<const uint32_t*>(brow + 8 * rank_pad + 16 * j + 8);
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x2(uint32_t addr, uint32_t& r0, uint32_t& r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(addr));
}

// LoRDS: A^T's fragments of step s (columns 16 s .. + 15 of the chunk, two 8-column halves n), the B operand of the
// scale mma, from the staged chunk a_t ([128][AStride] bf16): one ldmatrix.x4 per 16 ranks j, whose matrix m = lane / 8
// covers half m / 2 at ranks 16 j + 8 (m % 2) .. + 7, and for an odd last group of 8 ranks one ldmatrix.x2, whose
// matrix m (lanes 0-15 give the addresses) covers half m.
template <int R8, int AStride>
__device__ __forceinline__ void load_a_t_frags(const uint16_t* a_t, int s, int lane,
                                               uint32_t (&afr)[2][k16_groups(R8)][2]) {
  const int m = lane / 8;
  const uint32_t base = smem_u32(a_t + (16 * s + 8 * (m / 2) + lane % 8) * AStride + 8 * (m % 2));
#pragma unroll
  for (int j = 0; j < R8 / 2; ++j) {
    uint32_t r[4];
    ldmatrix_x4(base + 32 * j, r);
    afr[0][j][0] = r[0];
    afr[0][j][1] = r[1];
    afr[1][j][0] = r[2];
    afr[1][j][1] = r[3];
  }
  if constexpr (R8 % 2 == 1) {
    constexpr int j = R8 / 2;
    ldmatrix_x2(smem_u32(a_t + (16 * s + 8 * (m % 2) + lane % 8) * AStride + 16 * j), afr[0][j][0], afr[1][j][0]);
    afr[0][j][1] = afr[1][j][1] = 0;  // (unused by the k = 8 mma)
  }
}

// LoRDS: S = B A for rows (g, g + 8) x columns (2t, 2t + 1) of each 8-column half of a step, one mma per 16 ranks
// and half (k = 8 for an odd last group). The mma's output fragment has exactly the A fragment's layout.
template <int R8>
__device__ __forceinline__ void scale_mma(const uint32_t (&bfac)[k16_groups(R8)][4],
                                          const uint32_t (&afr)[2][k16_groups(R8)][2], float (&sc)[2][4]) {
#pragma unroll
  for (int n = 0; n < 2; ++n) {
    sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
    for (int j = 0; j < R8 / 2; ++j) mma_bf16(sc[n], bfac[j], afr[n][j][0], afr[n][j][1]);
    if constexpr (R8 % 2 == 1) mma_bf16_k8(sc[n], bfac[R8 / 2][0], bfac[R8 / 2][1], afr[n][R8 / 2][0]);
  }
}

// LoRDS weights: S rounded to bf16, then value * S as one bf16x2 multiply (rounded): two instructions per pair. (The
// f32 form with one rounding took five per pair, 20 of the small-batch GEMM's ~69 instructions per step; this one
// measured 1.00-1.05x faster at batches 4-1024, docs/results/lords-cuda.md.)
__device__ __forceinline__ void lords_weights(const uint32_t (&pair)[4], const float (&sc)[2][4], uint32_t (&a)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q)
    a[q] = bf16x2_mul(pair[q], bf16x2_bits(sc[q / 2][2 * (q % 2)], sc[q / 2][2 * (q % 2) + 1]));
}

// Block-wise weights: value * scale, one bf16x2 multiply per pair (exact product, rounded once). scl: the bf16 scales
// of rows g (low half) and g + 8 (high half).
__device__ __forceinline__ void blockwise_weights(const uint32_t (&pair)[4], uint32_t scl, uint32_t (&a)[4]) {
  const uint32_t s0 = __byte_perm(scl, 0, 0x1010), s1 = __byte_perm(scl, 0, 0x3232);
  a[0] = bf16x2_mul(pair[0], s0);
  a[1] = bf16x2_mul(pair[1], s1);
  a[2] = bf16x2_mul(pair[2], s0);
  a[3] = bf16x2_mul(pair[3], s1);
}

// Block-wise: for each 16-column step s of chunk c, its scale block relative to the chunk's first, in bits 2s, 2s + 1
// (a chunk touches at most 4 blocks): one word per chunk, so the step loop does no block arithmetic.
__device__ __forceinline__ uint32_t chunk_step_blocks(const MmaArgs& g, int c) {
  const int col0 = c * gpu_layout::kTileCols, blk0 = block_of(g, col0);
  uint32_t packed = 0;
#pragma unroll
  for (int s = 0; s < gpu_layout::kStepsPerTile; ++s)
    packed |= static_cast<uint32_t>(block_of(g, col0 + 16 * s) - blk0) << (2 * s);
  return packed;
}

// The scales of step s's block for rows g, g + 8 of this warp's tile. sc_base: the staged scales of the chunk
// ([kChunkBlocks][16 rows] per tile) + gq; step_blocks: chunk_step_blocks of the chunk.
__device__ __forceinline__ uint32_t step_scales(const uint16_t* sc_base, uint32_t step_blocks, int s) {
  const uint16_t* sb = sc_base + (step_blocks >> (2 * s) & 3) * gpu_layout::kTileRows;
  return static_cast<uint32_t>(sb[0]) | static_cast<uint32_t>(sb[8]) << 16;
}

// Block-wise: the scales chunk c needs of the CTA's 8 row tiles from row_cta x 8 (tiled scales are contiguous per
// tile), [8 tiles][kChunkBlocks][16 rows] bf16 at dst: 64 pieces of 16 bytes, copied by threads 0-63 (no commit).
__device__ __forceinline__ void stage_chunk_scales(const MmaArgs& g, int row_cta, int c, uint16_t* dst) {
  if (threadIdx.x >= kGemmRowTiles * kChunkBlocks * 2) return;
  const int tile = threadIdx.x / (kChunkBlocks * 2), part = threadIdx.x % (kChunkBlocks * 2);
  const int smt = row_cta * kGemmRowTiles + tile, blk = block_of(g, c * gpu_layout::kTileCols) + part / 2;
  const bool in = smt < g.row_tiles && blk < g.scale_blocks;
  const uint16_t* src = g.scales + ((static_cast<int64_t>(smt) * g.scale_blocks + blk) * gpu_layout::kTileRows + part % 2 * 8);
  cp_async16(smem_u32(dst + (tile * kChunkBlocks * 2 + part) * 8), in ? src : g.scales, in ? 16 : 0);
}

// LoRDS: Cols columns of A^T from column col0 (bf16 [cols][RankPad], zero padded; the GEMMs stage whole chunks of
// 128, the cluster-decoded GEMM its CTA's part), their first 8 Pieces ranks, into [Cols][AStride] bf16 at dst, by
// `Threads` threads, of which this is `thread` (no commit).
template <int RankPad, int Pieces, int AStride, int Threads, int Cols = gpu_layout::kTileCols>
__device__ __forceinline__ void stage_chunk_a_t(const uint16_t* a_t, int64_t col0, uint16_t* dst, int thread) {
  constexpr int kRowsPerPass = Threads / Pieces;
  constexpr int kPerThread = (Cols + kRowsPerPass - 1) / kRowsPerPass;
  const int piece = thread % Pieces, row = thread / Pieces;
  if (row >= kRowsPerPass) return;  // (the threads left over where Pieces does not divide Threads)
  const uint16_t* src = a_t + (col0 + row) * RankPad + piece * 8;
  const uint32_t d0 = smem_u32(dst) + (row * AStride + piece * 8) * 2;
#pragma unroll 8  // (whole for 256 threads; a producer warp's 64 copies at rank 128 would not fit its registers)
  for (int k = 0; k < kPerThread; ++k)
    if (row + k * kRowsPerPass < Cols)
      cp_async16(d0 + k * kRowsPerPass * AStride * 2, src + k * kRowsPerPass * RankPad, 16);
}

// y = bf16(sum over splits in order of the partial sums [splits][count]) on `stream` (mma_gemm.cu).
int launch_sum_splits(const float* partial, int splits, int64_t count, uint16_t* y, int sm_count, cudaStream_t stream);

// How a GEMM (mma.sync or wgmma) was launched: plainly, or by programmatic dependent launch (the kernel may start
// while the previous kernel on the stream still runs: it touches only weights before griddep_wait, and x, y and
// split-k sums after it), and then whether it lets the next kernel start at once (griddepcontrol.launch_dependents
// first thing: the next kernel's CTAs take the SMs this grid leaves idle, or those its last CTAs free, and request
// their weights there).
enum GemmPdl : int { kGemmPlain = 0, kGemmEarly = 1, kGemmEarlyTrigger = 2 };
// Adds the launch attribute to cfg (attrs: cfg's attributes so far, room for one more) where PDL is on (HILO_PDL),
// and says how; HILO_GEMM_TRIGGER=0 leaves the trigger to each CTA's exit, for A/B runs.
inline GemmPdl gemm_pdl_launch(cudaLaunchConfig_t& cfg, cudaLaunchAttribute* attrs) {
  static const bool trigger = env_flag("HILO_GEMM_TRIGGER", true);
  if (!add_pdl_attribute(cfg, attrs)) return kGemmPlain;
  return trigger ? kGemmEarlyTrigger : kGemmEarly;
}
__device__ __forceinline__ void gemm_pdl_start(int pdl) {
  if (pdl == kGemmEarlyTrigger) griddep_launch_dependents();
}

// The tail of a GEMM launch: `launched` is the kernel launch's error; with a partial-sum buffer (split k), the second
// kernel adds the splits into y, and the buffer is freed on the stream either way. Returns a CUDA error code.
inline int finish_gemm_launch(cudaError_t launched, float* partial, int splits, const MmaArgs& g, cudaStream_t stream) {
  int e = static_cast<int>(launched);
  if (partial) {
    if (e == 0) e = launch_sum_splits(partial, splits, g.batch * g.rows, g.y, g.sm_count, stream);
    cudaFreeAsync(partial, stream);
  }
  return e != 0 ? e : static_cast<int>(cudaGetLastError());
}

// HILO_GEMM_SPLIT=1..64: the split-k count both GEMMs take instead of their rules, for sweeps (0: the rules).
inline int forced_gemm_splits() {
  static const int forced = env_override("HILO_GEMM_SPLIT", 1, 64, 0);
  return forced;
}

// Calls f(std::integral_constant<int, R8>{}) with R8 = the groups of 8 ranks LoRDS' scale product runs (2, 3, 4, 7, 8
// or 16: the rank rounded up to the next of these within its padded rank), or 0 for block-wise (the GEMM kernels'
// template argument); cudaErrorInvalidValue for another padded rank. HILO_GEMM_RANK8=0 runs every padded rank, as
// before the groups of 8 (for A/B runs).
template <class F>
int with_rank_groups(const MmaArgs& g, F&& f) {
  if (!g.lords) return f(std::integral_constant<int, 0>{});
  static const bool by_eight = env_flag("HILO_GEMM_RANK8", true);
  const int r8 = by_eight ? (g.rank + 7) / 8 : g.rank_pad / 8;
  switch (g.rank_pad) {
    case 16: return f(std::integral_constant<int, 2>{});
    case 32: return r8 <= 3 ? f(std::integral_constant<int, 3>{}) : f(std::integral_constant<int, 4>{});
    case 64: return r8 <= 7 ? f(std::integral_constant<int, 7>{}) : f(std::integral_constant<int, 8>{});
    case 128: return f(std::integral_constant<int, 16>{});
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace hilo::lords::cuda_detail
