// The decode scoring kernels on Hopper's warpgroup MMA (sm_90a): the few query rows of one request (next_n <= 4)
// against that request's keys. Decode reads every key once and does ~120 FLOP per byte at next_n = 1, so the kernel
// is built for bytes in flight, not MMA width:
//
// - one warpgroup per CTA and up to five CTAs per SM; keys stream through a 4-stage cp.async ring of 64-key tiles
//   (a page of DeepGEMM's paged cache, or 64 pooled rows), written 128B-swizzled, K-major;
// - the tile is the MMA's M (64 keys) and each query row's H heads its N (m64nHk32, H = 32 or 64), so next_n = 1
//   computes nothing it throws away (the prefill kernel's N is 16 rows x heads);
// - the sum over heads stays in each thread (its H / 4 columns) plus two quad shuffles; a negative key scale is
//   applied as relu(x s) = |s| relu(-x) with a per-key sign in the epilogue.
//
// Two front ends share the mainloop: key ranges of one source per request (flat decode over the paged cache, HISA's
// block stage over the pooled cache) and HISA's token stage (the union blocks of a request's rows). Scores differ
// from the CPU's by f32 accumulation order only, as for the other kernels.
#pragma once

#include <algorithm>

#include "runtime.cuh"
#include "score_keys.cuh"
#include "wgmma.cuh"

namespace hilo::hisa::cuda_detail {

constexpr int kDecThreads = 128;   // one warpgroup
constexpr int kDecTileKeys = 64;   // keys per stage: the MMA's M, one cache page
constexpr int kDecStages = 4;
constexpr int kDecMaxRows = 4;     // query rows per request (next_n) the kernel takes
constexpr int kDecMaxCtaBlocks = 32;  // token stage: union blocks per CTA (their slots sit in shared memory)
// The flat front end's tiles per CTA at most: their page numbers are read once into shared memory (a block-table
// load in front of every tile's copies was 15.8% of the kernel's stall samples; staged, the flat decode call is up
// to 1% faster, H100). The token stage reads them per tile: staging its few tiles per CTA made HISA decode 1-5%
// slower (the reads, in series, and a barrier before its first copies).
constexpr int kDecMaxPages = 32;

// Shared memory: q rows (R x H rows of 128 bytes, swizzled), the key ring, the keys' scales, the rows' weights, the
// token stage's slot of each of the CTA's blocks per row and the page numbers of the CTA's tiles (paged cache).
template <int H, int R>
struct DecLayout {
  static constexpr int kTileBytes = kDecTileKeys * kDim;
  static constexpr int kQ = 0;
  static constexpr int kKeys = kQ + R * H * kDim;
  static constexpr int kScales = kKeys + kDecStages * kTileBytes;
  static constexpr int kWeights = kScales + kDecStages * kDecTileKeys * 4;
  static constexpr int kAux = kWeights + R * H * 4;
  static constexpr int kPages = kAux + kDecMaxCtaBlocks * R * 4;
  static constexpr int kBytes = kPages + kDecMaxPages * 4;
  static constexpr size_t kSmem = kBytes + 1024;  // slack to align the base to 1024 bytes
};

template <int H, int R>
struct DecSmem {
  uint8_t* q;
  uint8_t* keys;
  float* scales;
  float* w;
  int32_t* aux;    // [block of the CTA][row]
  int32_t* pages;  // [tile of the CTA] (flat front end, paged cache)
  __device__ explicit DecSmem(uint8_t* raw) {
    uint8_t* base = raw + ((1024 - (smem_u32(raw) & 1023)) & 1023);
    q = base + DecLayout<H, R>::kQ;
    keys = base + DecLayout<H, R>::kKeys;
    scales = reinterpret_cast<float*>(base + DecLayout<H, R>::kScales);
    w = reinterpret_cast<float*>(base + DecLayout<H, R>::kWeights);
    aux = reinterpret_cast<int32_t*>(base + DecLayout<H, R>::kAux);
    pages = reinterpret_cast<int32_t*>(base + DecLayout<H, R>::kPages);
  }
};

// A tile of 64 keys: codes of consecutive rows (128 bytes apart) and their scales; rows at or past `valid` are
// zero-filled and never emitted.
struct DecTile {
  const uint8_t* codes;
  const float* scales;
  int valid;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// q rows first .. first + rows - 1 (zero rows up to R) and their weights; completes with the first tile's group.
template <int H, int R>
__device__ inline void dec_stage_queries(const DecSmem<H, R>& sm, const uint8_t* q, const float* w, int64_t first,
                                         int rows) {
  for (int c = threadIdx.x; c < R * H * 8; c += kDecThreads) {
    const int n = c / 8, chunk = c % 8, r = n / H;
    const uint8_t* src = q + ((first + (r < rows ? r : 0)) * H + n % H) * kDim + chunk * 16;
    cp_async16(smem_u32(sm.q + swizzle128(n, chunk)), src, r < rows ? 16 : 0);
  }
  for (int i = threadIdx.x; i < R * H; i += kDecThreads) sm.w[i] = i < rows * H ? w[first * H + i] : 0.0f;
}

// The mainloop over tiles 0 .. tiles - 1: tile_at(i) names tile i's keys; emit(i, row, offset, score) receives the
// score of every (row, offset), offsets past the tile's valid rows included (scores of zero rows): the front end
// decides what is kept. Shared memory written before it (weights, sm.aux) is published by its first barrier.
template <int H, int R, class TileAt, class Emit>
__device__ inline void dec_mainloop(const DecSmem<H, R>& sm, int tiles, TileAt tile_at, Emit emit) {
  constexpr int kTileBytes = DecLayout<H, R>::kTileBytes;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad = lane & 3;
  const int key_row = warp * 16 + lane / 4;  // the thread's first key of a tile (+8: its second)
  const auto load = [&](int i) {
    if (i < tiles) {
      const int stage = i % kDecStages;
      const DecTile t = tile_at(i);
      uint8_t* dst = sm.keys + stage * kTileBytes;
#pragma unroll
      for (int c = threadIdx.x; c < kDecTileKeys * 8; c += kDecThreads) {
        const int r = c / 8, chunk = c % 8;
        const bool ok = r < t.valid;
        cp_async16(smem_u32(dst + swizzle128(r, chunk)), t.codes + (ok ? r : 0) * kDim + chunk * 16, ok ? 16 : 0);
      }
      if (threadIdx.x < kDecTileKeys) {
        const bool ok = static_cast<int>(threadIdx.x) < t.valid;
        cp_async4(smem_u32(sm.scales + stage * kDecTileKeys + threadIdx.x), t.scales + (ok ? threadIdx.x : 0),
                  ok ? 4 : 0);
      }
    }
    cp_async_commit();  // empty groups past the end keep the wait count uniform
  };
  // The thread's weights: heads 8j + 2 quad + e of each row.
  float2 wr[R][H / 8];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < H / 8; ++j) wr[r][j] = make_float2(0.0f, 0.0f);
#pragma unroll
  for (int i = 0; i < kDecStages - 1; ++i) load(i);
  for (int i = 0; i < tiles; ++i) {
    cp_async_wait<kDecStages - 2>();
    fence_proxy_async();
    __syncthreads();  // tile i landed for every thread; every thread is done with tile i - 1's stage
    if (i == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < H / 8; ++j) wr[r][j] = *reinterpret_cast<const float2*>(sm.w + r * H + 8 * j + 2 * quad);
    }
    load(i + kDecStages - 1);
    const int stage = i % kDecStages;
    const uint32_t a_addr = smem_u32(sm.keys + stage * kTileBytes);
    float acc[R][H / 2];
    wgmma_fence();
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int kk = 0; kk < kDim / 32; ++kk)
        wgmma_m64nHk32_e4m3<H>(acc[r], smem_desc_sw128(a_addr + 32 * kk),
                               smem_desc_sw128(smem_u32(sm.q + r * H * kDim) + 32 * kk), kk > 0);
    wgmma_commit();
    const float s0 = sm.scales[stage * kDecTileKeys + key_row], s1 = sm.scales[stage * kDecTileKeys + key_row + 8];
    const float sign0 = s0 < 0.0f ? -1.0f : 1.0f, sign1 = s1 < 0.0f ? -1.0f : 1.0f;
    wgmma_wait<0>();
#pragma unroll
    for (int r = 0; r < R; ++r) {
      fence_operands(acc[r]);
      float p0[2] = {0.0f, 0.0f}, p1[2] = {0.0f, 0.0f};
#pragma unroll
      for (int j = 0; j < H / 8; ++j) {
        p0[j & 1] = fmaf(fmaxf(acc[r][4 * j] * sign0, 0.0f), wr[r][j].x, p0[j & 1]);
        p0[j & 1] = fmaf(fmaxf(acc[r][4 * j + 1] * sign0, 0.0f), wr[r][j].y, p0[j & 1]);
        p1[j & 1] = fmaf(fmaxf(acc[r][4 * j + 2] * sign1, 0.0f), wr[r][j].x, p1[j & 1]);
        p1[j & 1] = fmaf(fmaxf(acc[r][4 * j + 3] * sign1, 0.0f), wr[r][j].y, p1[j & 1]);
      }
      float part0 = p0[0] + p0[1], part1 = p1[0] + p1[1];
      part0 += __shfl_xor_sync(0xFFFFFFFFu, part0, 1);
      part1 += __shfl_xor_sync(0xFFFFFFFFu, part1, 1);
      part0 += __shfl_xor_sync(0xFFFFFFFFu, part0, 2);
      part1 += __shfl_xor_sync(0xFFFFFFFFu, part1, 2);
      // Lane 0 of the quad emits the first key, lane 1 the second (relu(x s) = |s| relu(sign(s) x)). Every offset
      // is emitted, zero-filled rows too: the front ends keep what their rows see.
      if (quad < 2) emit(i, r, key_row + 8 * quad, quad == 0 ? part0 * fabsf(s0) : part1 * fabsf(s1));
    }
  }
  cp_async_wait<0>();
}
#endif

// Flat front end: request g = blockIdx.y (source p.source_begin + g, rows p.row_begin + g * group_rows ..) against
// tiles_per_cta tiles from key p.key_begin + blockIdx.x * tiles_per_cta * 64 (p.key_begin a multiple of 64). Row r
// sees keys [lo[r], hi[r]) within [p.key_begin, p.key_end); Out::write as for score_keys_kernel.
template <int H, int R, class Keys, class Out>
__global__ void __launch_bounds__(kDecThreads) score_decode_kernel(ScoreParams p, Keys keys, Out out,
                                                                   int tiles_per_cta) {
  early_launch_prologue();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t dec_smem_raw[];
  const DecSmem<H, R> sm(dec_smem_raw);
  const int group_first = p.row_begin + blockIdx.y * p.group_rows;
  const int rows = min(p.group_rows, p.row_end - group_first);
  const int source = p.source_begin + blockIdx.y;
  const int64_t cta_begin = p.key_begin + static_cast<int64_t>(blockIdx.x) * tiles_per_cta * kDecTileKeys;
  const int64_t cta_end = min64(cta_begin + static_cast<int64_t>(tiles_per_cta) * kDecTileKeys,
                                min64(p.key_end, keys.size(source)));
  int64_t lo[R], hi[R], span_lo = INT64_MAX, span_hi = INT64_MIN;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    lo[r] = r < rows ? max64(p.lo[group_first + r], cta_begin) : 0;
    hi[r] = r < rows ? min64(p.hi[group_first + r], cta_end) : 0;
    if (lo[r] < hi[r]) span_lo = min64(span_lo, lo[r]), span_hi = max64(span_hi, hi[r]);
  }
  if (span_lo >= span_hi) return;  // uniform over the CTA
  const int64_t first = span_lo / kDecTileKeys * kDecTileKeys;
  const int tiles = static_cast<int>(ceil_div(span_hi - first, kDecTileKeys));  // <= tiles_per_cta <= kDecMaxPages
  constexpr bool kPaged = std::is_same_v<Keys, PagedKeys>;
  if constexpr (kPaged) {  // the CTA's page numbers, read once (the first tiles' copies are issued before any barrier)
    for (int t = threadIdx.x; t < tiles; t += kDecThreads)
      sm.pages[t] = keys.page_index(source, first + t * kDecTileKeys);
    __syncthreads();
  }
  dec_stage_queries<H, R>(sm, p.q, p.w, group_first, rows);
  dec_mainloop<H, R>(
      sm, tiles,
      [&](int i) {
        const int64_t base = first + static_cast<int64_t>(i) * kDecTileKeys;
        const int valid = static_cast<int>(min64(kDecTileKeys, span_hi - base));
        if constexpr (kPaged) {
          const uint8_t* page = keys.page_at(sm.pages[i]);
          return DecTile{page, reinterpret_cast<const float*>(page + kDecTileKeys * kDim), valid};
        } else {
          return DecTile{keys.row(source, base), keys.scales_at(source, base), valid};
        }
      },
      [&](int i, int r, int offset, float v) {
        const int64_t key = first + static_cast<int64_t>(i) * kDecTileKeys + offset;
        if (key >= lo[r] && key < hi[r]) out.write(group_first + r, source, key, v);
      });
#endif
}

// Token front end (HISA stage 2 in decode): request t = blockIdx.x (its rows t * group_rows .., its keys source t)
// scores the union blocks u = blockIdx.y, blockIdx.y + gridDim.y, ... (at most kDecMaxCtaBlocks) of its rows,
// block / 64 tiles each; a row's scores are kept only for the blocks it kept: cand[row][slot * block + offset],
// slot = the block's place in its kept list. It writes every entry of every kept block (NaN where the row cannot
// see the key), so cand needs no NaN fill first.
template <int H, int R>
__global__ void __launch_bounds__(kDecThreads)
    token_scores_decode_kernel(const uint8_t* q, const float* w, const int32_t* row_lo, const int32_t* row_hi,
                               int rows, int group_rows, PagedKeys keys, int block, const int32_t* kept,
                               const int32_t* kept_count, int cap, const int32_t* union_blocks,
                               const uint32_t* union_mask, const int32_t* union_count, float* cand) {
  early_launch_prologue();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t dec_smem_raw[];
  const DecSmem<H, R> sm(dec_smem_raw);
  const int request = blockIdx.x, first = request * group_rows, n_rows = min(group_rows, rows - first);
  const int n_union = union_count[request], tiles_per_block = block / kDecTileKeys;
  const int blocks_here = n_union > static_cast<int>(blockIdx.y) ? ceil_div(n_union - blockIdx.y, gridDim.y) : 0;
  if (blocks_here == 0) return;
  const int32_t* blocks = union_blocks + static_cast<int64_t>(request) * group_rows * cap;
  // union_mask null: one row per request, whose union is its kept list (run_hisa passes kept and kept_count).
  const uint32_t* masks = union_mask ? union_mask + static_cast<int64_t>(request) * group_rows * cap : nullptr;
  const int64_t n_keys = keys.size(request);
  int64_t lo[R], hi[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    lo[r] = r < n_rows ? row_lo[first + r] : 0;
    hi[r] = r < n_rows ? row_hi[first + r] : 0;
  }
  const auto union_index = [&](int i) { return blockIdx.y + (i / tiles_per_block) * gridDim.y; };
  const auto tile_key = [&](int i) {
    return static_cast<int64_t>(blocks[union_index(i)]) * block + (i % tiles_per_block) * kDecTileKeys;
  };
  // Per (block of this CTA, row): the block's place in the row's kept list, or -1 when the row did not keep it. One
  // row: the union is its kept list. Else binary searches, all at once (they are dependent global loads).
  for (int c = threadIdx.x; c < blocks_here * R; c += kDecThreads) {
    const int r = c % R, u = blockIdx.y + (c / R) * gridDim.y;
    int slot = -1;
    if (r < n_rows && (!masks || (masks[u] >> r & 1u))) {
      if (group_rows == 1) {
        slot = u;
      } else {
        const int32_t* list = kept + static_cast<int64_t>(first + r) * cap;
        int a = 0, b = kept_count[first + r];
        while (a < b) {
          const int mid = (a + b) / 2;
          if (list[mid] < blocks[u]) a = mid + 1; else b = mid;
        }
        slot = a;
      }
    }
    sm.aux[c] = slot;
  }
  dec_stage_queries<H, R>(sm, q, w, first, n_rows);
  dec_mainloop<H, R>(
      sm, blocks_here * tiles_per_block,
      [&](int i) {
        const int64_t base = tile_key(i);
        const int valid = static_cast<int>(max64(0, min64(kDecTileKeys, n_keys - base)));
        const int64_t at = valid > 0 ? base : 0;  // a tile past the request's end reads nothing: any page will do
        return DecTile{keys.row(request, at), keys.scales_at(request, at), valid};
      },
      [&](int i, int r, int offset, float v) {
        const int slot = sm.aux[(i / tiles_per_block) * R + r];
        const int64_t key = tile_key(i) + offset;
        if (slot >= 0)  // every entry of a kept block: the score, or NaN (no candidate) where the row cannot see
          cand[(static_cast<int64_t>(first + r) * cap + slot) * block + (i % tiles_per_block) * kDecTileKeys +
               offset] = key >= lo[r] && key < hi[r] ? v : __int_as_float(0x7FC00000);
      });
#endif
}

// Rows staged per CTA for next_n rows per request: 1, 2 or 4 (next_n = 3 runs with one zero row).
inline int decode_kernel_rows(int next_n) { return next_n <= 1 ? 1 : next_n <= 2 ? 2 : 4; }

template <class F>
void with_decode_rows(int next_n, F&& f) {
  switch (decode_kernel_rows(next_n)) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
  }
}

// CTAs of `kernel` (kDecThreads threads, `smem` bytes) that fit the GPU at once, asked once per kernel and device.
template <auto Kernel>
int decode_wave(size_t smem) {
  static int known[64] = {};
  int& per_sm = current_device_entry(known);
  if (per_sm == 0) {
    HILO_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, kDecThreads, smem));
    per_sm = std::max(per_sm, 1);
  }
  return per_sm * multiprocessor_count();
}

// How many of a request's `units` (tiles, or union blocks) one CTA takes, for `groups` requests: the split that
// minimises (waves of CTAs) x (units per CTA + a CTA's fixed cost in units: staging q, filling the pipeline),
// preferring fewer, longer CTAs on ties. A plain "enough CTAs" rule left a last wave 10-30% full (b64 x 64K: 2048
// CTAs, waves of 660); without the fixed cost the arithmetic picks one-tile CTAs for large batches (H200, that rule:
// b128 x 64K 0.42 -> 0.63 ms).
inline int decode_units_per_cta(int64_t groups, int64_t units, int wave, int max_per, int fixed_units) {
  int best = 1;
  int64_t best_cost = INT64_MAX;
  for (int per = std::max(1, max_per); per >= 1; --per) {
    const int64_t ctas = groups * ((units + per - 1) / per);
    const int64_t cost = (ctas + wave - 1) / wave * (per + fixed_units);
    if (cost < best_cost) best = per, best_cost = cost;
  }
  return best;
}

}  // namespace hilo::hisa::cuda_detail
