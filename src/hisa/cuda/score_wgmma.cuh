// The scoring kernels on Hopper's warpgroup MMA (sm_90a): fp8 keys against a group of 16 query rows.
//
// A CTA holds its 16 query rows in shared memory for all its key tiles (16 x H x 128 bytes, loaded once) and
// streams the keys through a two-stage cp.async ring of 128-key tiles. Two warpgroups each own 64 keys of a tile:
// keys are the MMA's M dimension (A, 64 x 32 per k-step) and (query row, head) pairs its N dimension (B, 128 per
// bank: 4 rows x 32 heads, permuted so that each thread's columns are heads of one row), both K-major from
// 128B-swizzled shared memory, so the sum over heads stays inside each thread (no shuffles). The MMAs of the next
// bank run while the epilogue (relu, weights, sum over heads, key scale) of the previous one reads its
// accumulators: two banks of 64 registers.
//
// One mainloop, two front ends: the flat indexer's key ranges (same ScoreParams and output contract as
// score_keys_kernel: scores of keys outside a row's [lo, hi) are not written) and HISA's token stage (the union
// blocks of a tile of rows, block = 128). H = 32 or 64. Scores differ from the CPU's by f32 accumulation order
// only (docs/hisa.md, GPU section).
#pragma once

#include <algorithm>
#include <type_traits>

#include "hisa_kernels.cuh"
#include "runtime.cuh"
#include "score_decode.cuh"
#include "score_keys.cuh"
#include "wgmma.cuh"

namespace hilo::hisa::cuda_detail {

constexpr int kWgTileKeys = 128;       // keys per pipeline stage (64 per warpgroup)
constexpr int kWgKeysPerCta = 2048;    // keys per CTA: the q rows are loaded once per this many keys
constexpr int kWgRows = kMaxGroupRows;

// The mainloop's shape. Narrow (the default): two warpgroups, each its 64 keys of a tile against all 16 rows in banks
// of N = 128 (4 rows x 32 heads), two banks of 64 accumulators in flight. Wide (FlatTuning::wide_mainloop, not yet
// measured): four warpgroups, a pair per 64 keys splitting the 16 rows (8 each), in banks of N = 64 (4 rows x 16
// heads), two banks of 32 accumulators in flight: twice the warps per SM to hide the epilogue's weight loads, at
// ~100 registers instead of ~250 (docs/notes/gpu-indexer.md, "The flat baseline's merges").
template <bool Wide>
struct WgShape {
  static constexpr int kGroups = Wide ? 4 : 2;
  static constexpr int kThreads = 128 * kGroups;
  static constexpr int kRowHalves = Wide ? 2 : 1;  // warpgroups per 64 keys
  static constexpr int kBankN = Wide ? 64 : 128;   // (row, head) columns per MMA
  static constexpr int kAcc = kBankN / 2;          // accumulators per thread per bank
};

template <int H>
struct WgLayout {
  static constexpr int kQBytes = kWgRows * H * kDim;        // swizzled q rows
  static constexpr int kTileBytes = kWgTileKeys * kDim;     // one stage of keys
  static constexpr int kQ = 0;
  static constexpr int kKeys = kQ + kQBytes;                // 2 stages
  static constexpr int kWStride = H + 4;                    // floats per weight row (padding spreads the banks)
  static constexpr int kWeights = kKeys + 2 * kTileBytes;
  static constexpr int kRows = kWeights + kWgRows * kWStride * 4;  // per row: lo, hi (int64) and a front end's int64
  // A front end's per-tile data, copied with the tiles' keys: two tiles' 16 int32 (16-byte aligned), four int32.
  static constexpr int kTileData = kRows + kWgRows * 3 * 8;
  static constexpr int kBytes = kTileData + (2 * kWgRows + 4) * 4;
  static constexpr size_t kSmem = kBytes + 1024;            // slack to align the base to 1024 bytes
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Issues the 4 k-steps of one bank: the warpgroup's 64 keys (A) x the bank's N (query row, head) pairs (B).
template <int N>
__device__ __forceinline__ void wg_issue(float (&acc)[N / 2], uint32_t a_addr, uint32_t b_addr) {
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kDim / 32; ++kk) {
    if constexpr (N == 128)
      wgmma_m64n128k32_e4m3(acc, smem_desc_sw128(a_addr + 32 * kk), smem_desc_sw128(b_addr + 32 * kk), kk > 0);
    else
      wgmma_m64n64k32_e4m3(acc, smem_desc_sw128(a_addr + 32 * kk), smem_desc_sw128(b_addr + 32 * kk), kk > 0);
  }
  wgmma_commit();
}
#endif

// The B operand (q) is staged with its rows permuted so that the sum over heads never leaves a thread: with banks of
// N columns, each bank holds 4 query rows and N / 4 heads: bank b holds rows 4 * (b / (H / (N / 4))) .. + 3 and heads
// (N / 4) * (b % (H / (N / 4))) .., and its column 8j + 2t + e (the columns thread t of each quad holds) is (query row
// 4 * (b / (H / (N / 4))) + t, head (N / 4) * (b % (H / (N / 4))) + 2j + e).
template <int H, int N>
__host__ __device__ __forceinline__ void wg_b_row(int n, int& row, int& head) {
  constexpr int kHeads = N / 4, kPerRowGroup = H / kHeads;
  const int bank = n / N, c = n % N, j = c / 8, t = (c % 8) / 2, e = c % 2;
  row = 4 * (bank / kPerRowGroup) + t;
  head = kHeads * (bank % kPerRowGroup) + 2 * j + e;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Adds bank b's share of sum_h w[h] relu(acc) for the thread's query row and its two keys (rows g, g + 8 of the
// warp's 16) to part0 / part1. Eight independent fma chains keep two warps per scheduler busy.
template <int H, int N>
__device__ __forceinline__ void wg_bank_sum(const float (&acc)[N / 2], int bank, const float* s_w, float& part0,
                                            float& part1) {
  constexpr int kHeads = N / 4, kPerRowGroup = H / kHeads;
  const int t = threadIdx.x & 3;
  const float* w = s_w + (4 * (bank / kPerRowGroup) + t) * WgLayout<H>::kWStride + kHeads * (bank % kPerRowGroup);
  float p0[4] = {}, p1[4] = {};
#pragma unroll
  for (int m = 0; m < N / 16; ++m) {
    const float4 wv = *reinterpret_cast<const float4*>(w + 4 * m);  // heads 4m .. 4m + 3 = columns j = 2m, 2m + 1
    const int i = 8 * m;
    p0[0] = fmaf(fmaxf(acc[i], 0.0f), wv.x, p0[0]);
    p0[1] = fmaf(fmaxf(acc[i + 1], 0.0f), wv.y, p0[1]);
    p1[0] = fmaf(fmaxf(acc[i + 2], 0.0f), wv.x, p1[0]);
    p1[1] = fmaf(fmaxf(acc[i + 3], 0.0f), wv.y, p1[1]);
    p0[2] = fmaf(fmaxf(acc[i + 4], 0.0f), wv.z, p0[2]);
    p0[3] = fmaf(fmaxf(acc[i + 5], 0.0f), wv.w, p0[3]);
    p1[2] = fmaf(fmaxf(acc[i + 6], 0.0f), wv.z, p1[2]);
    p1[3] = fmaf(fmaxf(acc[i + 7], 0.0f), wv.w, p1[3]);
  }
  part0 += (p0[0] + p0[1]) + (p0[2] + p0[3]);
  part1 += (p1[0] + p1[1]) + (p1[2] + p1[3]);
}

// Shared memory of a wgmma CTA, aligned for the swizzled tiles.
template <int H>
struct WgSmem {
  uint8_t* q;
  uint8_t* keys;
  float* w;
  int64_t* rows;       // [16][3]
  int32_t* tile_row_data;  // [2][16]: per tile (ring of 2), a front end's value per row
  int32_t* tile_data;      // [4]: per tile (ring of 4), a front end's value
  __device__ explicit WgSmem(uint8_t* raw) {
    // Offsetting the shared array (not casting through an integer) keeps the compiler's knowledge that these are
    // shared-memory addresses (LDS, not generic loads).
    uint8_t* base = raw + ((1024 - (smem_u32(raw) & 1023)) & 1023);
    q = base + WgLayout<H>::kQ;
    keys = base + WgLayout<H>::kKeys;
    w = reinterpret_cast<float*>(base + WgLayout<H>::kWeights);
    rows = reinterpret_cast<int64_t*>(base + WgLayout<H>::kRows);
    tile_row_data = reinterpret_cast<int32_t*>(base + WgLayout<H>::kTileData);
    tile_data = tile_row_data + 2 * kWgRows;
  }
};

// Copies q rows [first, first + rows) (zero rows up to 16, swizzled, in the bank order of banks of N) and their
// weights; starts a cp.async group that the first tile's group completes with.
template <int H, bool Wide>
__device__ inline void wg_stage_queries(const WgSmem<H>& sm, const uint8_t* q, const float* w, int first, int rows) {
  using S = WgShape<Wide>;
  for (int c = threadIdx.x; c < kWgRows * H * 8; c += S::kThreads) {
    const int n = c / 8, chunk = c % 8;
    int r, head;
    wg_b_row<H, S::kBankN>(n, r, head);
    const uint8_t* src = q + ((static_cast<int64_t>(first) + (r < rows ? r : 0)) * H + head) * kDim + chunk * 16;
    cp_async16(smem_u32(sm.q + swizzle128(n, chunk)), src, r < rows ? 16 : 0);
  }
  for (int i = threadIdx.x; i < kWgRows * H; i += S::kThreads)
    sm.w[(i / H) * WgLayout<H>::kWStride + i % H] = i < rows * H ? w[static_cast<int64_t>(first) * H + i] : 0.0f;
}

// The mainloop: key tiles 0..tiles-1 of `source`, tile i covering keys [begin(i), begin(i) + 128) below end(i)
// (keys past it are zero rows). fetch(i) runs on every thread as tile i's keys are copied and may add cp.async copies
// of its own to tile i's group: they land, visible to every thread, by the barrier that publishes tile i (before
// emit(i) and before tile i + 1's copies are issued). emit(i, row, offset, score) receives each (row, key) score.
template <int H, bool Wide, class Keys, class Begin, class End, class Fetch, class Emit>
__device__ inline void wg_mainloop(const WgSmem<H>& sm, const Keys& keys, int source, int tiles, Begin begin, End end,
                                   Fetch fetch, Emit emit) {
  using L = WgLayout<H>;
  using S = WgShape<Wide>;
  constexpr int N = S::kBankN, kPerRowGroup = H / (N / 4);
  const auto load_tile = [&](int tile, int stage) {
    const int64_t base = begin(tile), stop = end(tile);
    uint8_t* dst = sm.keys + stage * L::kTileBytes;
    for (int c = threadIdx.x; c < kWgTileKeys * 8; c += S::kThreads) {
      const int r = c / 8, chunk = c % 8;
      const bool ok = base + r < stop;
      cp_async16(smem_u32(dst + swizzle128(r, chunk)), keys.row(source, ok ? base + r : base) + chunk * 16,
                 ok ? 16 : 0);
    }
    fetch(tile);
    cp_async_commit();
  };
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int key_half = Wide ? wg % 2 : wg, row_half = Wide ? wg / 2 : 0;
  const int key_row = key_half * 64 + warp * 16 + lane / 4;  // the thread's first key in a tile (+8: its second)
  // Each thread reads the scales of its own two keys into registers, a tile ahead (no shared-memory hand-off).
  const auto key_scale = [&](int tile, int offset) {
    const int64_t key = begin(tile) + key_row + offset;
    return key < end(tile) ? keys.scale(source, key) : 0.0f;
  };
  load_tile(0, 0);
  float next0 = key_scale(0, 0), next1 = key_scale(0, 8);
  constexpr int kBanks = kWgRows * H / N / S::kRowHalves;  // banks of this warpgroup
  const int bank0 = row_half * kBanks;                       // a multiple of kPerRowGroup: whole rows per warpgroup
  float acc0[S::kAcc] = {}, acc1[S::kAcc] = {};
  for (int tile = 0; tile < tiles; ++tile) {
    const int stage = tile & 1;
    if (tile + 1 < tiles) {
      load_tile(tile + 1, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    fence_proxy_async();
    float scale0 = next0, scale1 = next1;
    if (tile + 1 < tiles) next0 = key_scale(tile + 1, 0), next1 = key_scale(tile + 1, 8);
    // The barrier that publishes this stage (every thread's copies landed and were fenced) also tells whether a key
    // has a negative scale. Such keys are negated in place (fp8 sign bits) and scaled by |s|: relu(x * s) =
    // |s| * relu(-x), so the epilogue only ever post-multiplies a non-negative scale.
    if (__syncthreads_or(scale0 < 0.0f || scale1 < 0.0f)) {
      uint8_t* tile_codes = sm.keys + stage * L::kTileBytes;
      const int quarter = lane & 3;  // the 4 lanes sharing a key split its 8 chunks
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        if ((half ? scale1 : scale0) >= 0.0f) continue;
        if (Wide && row_half != 0) continue;  // one warpgroup per key flips it (the wide shape has two per key)
        for (int chunk = 2 * quarter; chunk < 2 * quarter + 2; ++chunk) {
          uint4* c = reinterpret_cast<uint4*>(tile_codes + swizzle128(key_row + 8 * half, chunk));
          uint4 v = *c;
          v.x ^= 0x80808080u, v.y ^= 0x80808080u, v.z ^= 0x80808080u, v.w ^= 0x80808080u;
          *c = v;
        }
      }
      scale0 = fabsf(scale0), scale1 = fabsf(scale1);
      fence_proxy_async();
      __syncthreads();
    }
    const uint32_t a_addr = smem_u32(sm.keys + stage * L::kTileBytes + key_half * 64 * kDim);
    const uint32_t q_addr = smem_u32(sm.q) + bank0 * N * kDim;
    // Banks alternate between acc0 and acc1; bank b + 1 is issued before bank b's epilogue.
    wg_issue<N>(acc0, a_addr, q_addr);
    float part0 = 0.0f, part1 = 0.0f;
#pragma unroll
    for (int b = 0; b < kBanks; ++b) {
      float(&cur)[S::kAcc] = (b & 1) ? acc1 : acc0;
      float(&next)[S::kAcc] = (b & 1) ? acc0 : acc1;
      if (b + 1 < kBanks) {
        wg_issue<N>(next, a_addr, q_addr + (b + 1) * N * kDim);
        wgmma_wait<1>();
      } else {
        wgmma_wait<0>();
      }
      fence_operands(cur);
      wg_bank_sum<H, N>(cur, bank0 + b, sm.w, part0, part1);
      if ((b + 1) % kPerRowGroup == 0) {  // the thread's query row is complete: relu(x s) = s relu(x) for s >= 0
        const int row = 4 * ((bank0 + b) / kPerRowGroup) + (lane & 3);
        emit(tile, row, key_row, part0 * scale0);
        emit(tile, row, key_row + 8, part1 * scale1);
        part0 = part1 = 0.0f;
      }
    }
    __syncthreads();  // every warpgroup is done with this stage before the next load overwrites it
  }
}
#endif

// Flat front end: rows [p.row_begin, p.row_end) in groups of 16 (blockIdx.y) against kWgKeysPerCta keys per CTA.
template <int H, bool Wide, class Out>
__global__ void __launch_bounds__(WgShape<Wide>::kThreads, 1)
    score_keys_wgmma_kernel(ScoreParams p, DenseKeys keys, Out out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(H == 32 || H == 64, "the wgmma kernel takes 32 or 64 heads");
  extern __shared__ uint8_t wg_smem_raw[];
  const WgSmem<H> sm(wg_smem_raw);
  const int group_first = p.row_begin + blockIdx.y * p.group_rows;
  const int rows = min(p.group_rows, p.row_end - group_first);
  const int64_t cta_begin = p.key_begin + static_cast<int64_t>(blockIdx.x) * kWgKeysPerCta;
  const int64_t cta_end = min64(cta_begin + kWgKeysPerCta, min64(p.key_end, keys.n));
  int64_t span_lo = INT64_MAX, span_hi = INT64_MIN;  // union of the rows' ranges within the CTA's keys
  for (int r = 0; r < kWgRows; ++r) {
    int64_t lo = 0, hi = 0;
    if (r < rows) {
      lo = max64(p.lo[group_first + r], cta_begin);
      hi = min64(p.hi[group_first + r], cta_end);
    }
    if (lo < hi) span_lo = min64(span_lo, lo), span_hi = max64(span_hi, hi);
    if (threadIdx.x == 0) sm.rows[3 * r] = lo, sm.rows[3 * r + 1] = hi;
  }
  if (span_lo >= span_hi) return;  // uniform: every thread computed the same span
  const int64_t first_tile = cta_begin + (span_lo - cta_begin) / kWgTileKeys * kWgTileKeys;
  wg_stage_queries<H, Wide>(sm, p.q, p.w, group_first, rows);
  wg_mainloop<H, Wide>(
      sm, keys, 0, ceil_div(span_hi - first_tile, kWgTileKeys),
      [&](int tile) { return first_tile + static_cast<int64_t>(tile) * kWgTileKeys; }, [&](int) { return cta_end; },
      [](int) {},
      [&](int tile, int row, int offset, float v) {
        const int64_t key = first_tile + static_cast<int64_t>(tile) * kWgTileKeys + offset;
        if (key >= sm.rows[3 * row] && key < sm.rows[3 * row + 1]) out.write(group_first + row, 0, key, v);
      });
#endif
}

// Token front end (HISA stage 2, block = 128): CTA (tile of 16 rows, blockIdx.y of gridDim.y) scores the union
// blocks u = blockIdx.y, blockIdx.y + gridDim.y, ... of its tile for all 16 rows; a row's scores are kept only for
// the blocks it kept and the keys it sees: cand[row][slot * 128 + offset], slot = the block's place in its list
// (union_slots, -1 where the row did not keep the block). The block numbers and slots travel with the keys' copies,
// so no tile waits for a global load of its own: tile i's copies bring tile i's 16 slots and the block number of
// tile i + 2, the first tile whose keys are issued after tile i is published.
template <int H, bool Wide, class Keys>
__global__ void __launch_bounds__(WgShape<Wide>::kThreads, 1)
    token_scores_wgmma_kernel(const uint8_t* q, const float* w, const int32_t* row_lo, const int32_t* row_hi,
                              int rows, int source_per_tile, Keys keys, int cap, const int32_t* union_blocks,
                              const int32_t* union_slots, const int32_t* union_count, float* cand) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(H == 32 || H == 64, "the wgmma kernel takes 32 or 64 heads");
  extern __shared__ uint8_t wg_smem_raw[];
  const WgSmem<H> sm(wg_smem_raw);
  const int tile_id = blockIdx.x, first = tile_id * kWgRows, n_rows = min(kWgRows, rows - first);
  const int source = source_per_tile ? tile_id : 0;
  const int n_union = union_count[tile_id];
  const int tiles = n_union > static_cast<int>(blockIdx.y) ? ceil_div(n_union - blockIdx.y, gridDim.y) : 0;
  if (tiles == 0) return;
  const int32_t* blocks = union_blocks + union_offset(tile_id, kWgRows, cap);
  const int32_t* slots = union_slots + union_offset(tile_id, kWgRows, cap) * kWgRows;
  const auto entry = [&](int tile) { return blockIdx.y + static_cast<int64_t>(tile) * gridDim.y; };
  if (threadIdx.x < kWgRows) {
    const int r = threadIdx.x;
    sm.rows[3 * r] = r < n_rows ? row_lo[first + r] : 0;
    sm.rows[3 * r + 1] = r < n_rows ? row_hi[first + r] : 0;
  } else if (threadIdx.x < kWgRows + 2) {  // the block numbers of tiles 0 and 1 (later ones come with the copies)
    const int tile = threadIdx.x - kWgRows;
    sm.tile_data[tile] = tile < tiles ? blocks[entry(tile)] : 0;
  }
  wg_stage_queries<H, Wide>(sm, q, w, first, n_rows);
  __syncthreads();
  const int64_t n_keys = keys.size(source);
  const auto block_of = [&](int tile) { return static_cast<int64_t>(sm.tile_data[tile & 3]); };
  wg_mainloop<H, Wide>(
      sm, keys, source, tiles, [&](int tile) { return block_of(tile) * kWgTileKeys; },
      [&](int tile) { return min64((block_of(tile) + 1) * kWgTileKeys, n_keys); },
      [&](int tile) {
        if (threadIdx.x < kWgRows / 4)
          cp_async16(smem_u32(sm.tile_row_data + (tile & 1) * kWgRows + 4 * threadIdx.x),
                     slots + entry(tile) * kWgRows + 4 * threadIdx.x, 16);
        else if (threadIdx.x == kWgRows / 4 && tile + 2 < tiles)
          cp_async4(smem_u32(sm.tile_data + ((tile + 2) & 3)), blocks + entry(tile + 2), 4);
      },
      [&](int tile, int row, int offset, float v) {
        const int slot = sm.tile_row_data[(tile & 1) * kWgRows + row];
        const int64_t key = block_of(tile) * kWgTileKeys + offset;
        if (slot >= 0 && key >= sm.rows[3 * row] && key < sm.rows[3 * row + 1])
          cand[((first + row) * static_cast<int64_t>(cap) + slot) * kWgTileKeys + offset] = v;
      });
#endif
}

// True when the wgmma kernel was compiled (sm_90a among the targets), the current device is a 9.x one and the
// tuning switch is on.
inline bool wgmma_usable() {
#if defined(HILO_HAVE_SM90A)
  return flat_tuning().wgmma && device_attribute<cudaDevAttrComputeCapabilityMajor>() == 9;
#else
  return false;
#endif
}

// Calls f with std::bool_constant<FlatTuning::wide_mainloop> (the wgmma mainloop's shape, WgShape).
template <class F>
void with_mainloop_shape(F&& f) {
  if (flat_tuning().wide_mainloop) f(std::true_type{});
  else f(std::false_type{});
}

// Scores rows [p.row_begin, p.row_end) in groups of p.group_rows against keys [p.key_begin, p.key_end): the wgmma
// kernel for dense keys with 32 or 64 heads where usable, else the mma.sync kernel.
template <int H, class Keys, class Out>
void launch_score_keys(const ScoreParams& p, const Keys& keys, const Out& out, cudaStream_t stream) {
  const int64_t len = p.key_end - p.key_begin;
  const int groups = ceil_div(p.row_end - p.row_begin, p.group_rows);
  if (len <= 0 || groups <= 0) return;
  if constexpr ((std::is_same_v<Keys, PagedKeys> || std::is_same_v<Keys, PooledCacheKeys>) && (H == 32 || H == 64)) {
    // Decode: one request's next_n rows per CTA group against its own keys.
    if (p.group_rows <= kDecMaxRows && p.key_begin % kDecTileKeys == 0 && wgmma_usable()) {
      with_decode_rows(p.group_rows, [&](auto rows) {
        constexpr int R = decltype(rows)::value;
        constexpr size_t smem = DecLayout<H, R>::kSmem;
        allow_smem<score_decode_kernel<H, R, Keys, Out>>(smem);
        // At most kDecMaxPages (32) tiles per CTA: the paged kernel keeps their page numbers in shared memory.
        const int tiles_per_cta = decode_units_per_cta(groups, ceil_div(len, kDecTileKeys),
                                                       decode_wave<score_decode_kernel<H, R, Keys, Out>>(smem),
                                                       kDecMaxPages, 3);
        launch_early(score_decode_kernel<H, R, Keys, Out>,
                     dim3(ceil_div(len, int64_t{tiles_per_cta} * kDecTileKeys), groups), kDecThreads, smem, stream, p,
                     keys, out, tiles_per_cta);
      });
      return;
    }
  }
  if constexpr (std::is_same_v<Keys, DenseKeys> && (H == 32 || H == 64)) {
    if (p.group_rows == kWgRows && wgmma_usable()) {
      with_mainloop_shape([&](auto wide) {
        constexpr bool Wide = decltype(wide)::value;
        allow_smem<score_keys_wgmma_kernel<H, Wide, Out>>(WgLayout<H>::kSmem);
        score_keys_wgmma_kernel<H, Wide, Out>
            <<<dim3(ceil_div(len, kWgKeysPerCta), groups), WgShape<Wide>::kThreads, WgLayout<H>::kSmem, stream>>>(
                p, keys, out);
        HILO_CUDA_LAUNCHED("score_keys_wgmma_kernel");
      });
      return;
    }
  }
  const size_t smem = score_keys_smem<H>(p.group_rows);
  allow_smem<score_keys_kernel<H, Keys, Out>>(smem);
  score_keys_kernel<H, Keys, Out>
      <<<dim3(ceil_div(len, kKeysPerCta), groups), kScoreWarps * 32, smem, stream>>>(p, keys, out);
  HILO_CUDA_LAUNCHED("score_keys_kernel");
}

// Whether HISA's token stage runs on the decode wgmma kernel (decode: a tile is one request's next_n rows over its
// own pages), which writes every candidate entry itself.
template <int H, class Keys>
bool decode_token_kernel_applies(bool per_tile_source, int tile_rows, int block) {
  return std::is_same_v<Keys, PagedKeys> && (H == 32 || H == 64) && per_tile_source && tile_rows <= kDecMaxRows &&
         block % kDecTileKeys == 0 && wgmma_usable();
}

// HISA's token stage: the rows of each tile against the union of their kept blocks, into cand. The wgmma kernel
// for 32 or 64 heads, tiles of 16 rows and blocks of 128 where usable, else the mma.sync kernel. Either way the
// grid spreads each tile's union blocks over up to 16 CTAs, enough for two CTAs per SM in all.
template <int H, class Keys>
void launch_token_scores(const uint8_t* q, const float* w, const int32_t* lo, const int32_t* hi, int rows,
                         int tile_rows, bool per_tile_source, const Keys& keys, int block, const int32_t* kept,
                         const int32_t* kept_count, int cap, const int32_t* union_blocks, const uint32_t* union_mask,
                         const int32_t* union_slots, const int32_t* union_count, float* cand, cudaStream_t stream) {
  const int tiles = ceil_div(rows, tile_rows);
  if constexpr (std::is_same_v<Keys, PagedKeys> && (H == 32 || H == 64)) {
    if (decode_token_kernel_applies<H, Keys>(per_tile_source, tile_rows, block)) {
      with_decode_rows(tile_rows, [&](auto r) {
        constexpr int R = decltype(r)::value;
        constexpr size_t smem = DecLayout<H, R>::kSmem;
        allow_smem<token_scores_decode_kernel<H, R>>(smem);
        // Union blocks per CTA for the largest possible union (cap blocks per row), so that no CTA gets more than
        // kDecMaxCtaBlocks (the kernel's shared-memory table of slots).
        const int max_union = tile_rows * cap;
        const int per = decode_units_per_cta(tiles, max_union, decode_wave<token_scores_decode_kernel<H, R>>(smem),
                                             kDecMaxCtaBlocks, 2);
        const int spread = ceil_div(max_union, per);
        launch_early(token_scores_decode_kernel<H, R>, dim3(tiles, spread), kDecThreads, smem, stream, q, w, lo, hi,
                     rows, tile_rows, keys, block, kept, kept_count, cap, union_blocks, union_mask, union_count, cand);
      });
      return;
    }
  }
  if constexpr (H == 32 || H == 64) {
    if (block == kWgTileKeys && tile_rows == kWgRows && wgmma_usable()) {
      constexpr size_t smem = WgLayout<H>::kSmem;
      const int spread = std::max(1, std::min(16, (2 * multiprocessor_count() + tiles - 1) / std::max(tiles, 1)));
      with_mainloop_shape([&](auto wide) {
        constexpr bool Wide = decltype(wide)::value;
        allow_smem<token_scores_wgmma_kernel<H, Wide, Keys>>(smem);
        token_scores_wgmma_kernel<H, Wide, Keys><<<dim3(tiles, spread), WgShape<Wide>::kThreads, smem, stream>>>(
            q, w, lo, hi, rows, per_tile_source ? 1 : 0, keys, cap, union_blocks, union_slots, union_count, cand);
        HILO_CUDA_LAUNCHED("token_scores_wgmma_kernel");
      });
      return;
    }
  }
  const size_t smem = token_scores_smem<H>(tile_rows, cap);
  allow_smem<token_scores_kernel<H, Keys>>(smem);
  const int spread = std::max(1, std::min(16, 2 * multiprocessor_count() / std::max(tiles, 1)));
  token_scores_kernel<H, Keys><<<dim3(tiles, spread), kScoreWarps * 32, smem, stream>>>(
      q, w, lo, hi, rows, tile_rows, per_tile_source ? 1 : 0, keys, block, kept, kept_count, cap, union_blocks,
      union_mask, union_count, cand);
  HILO_CUDA_LAUNCHED("token_scores_kernel");
}

}  // namespace hilo::hisa::cuda_detail
