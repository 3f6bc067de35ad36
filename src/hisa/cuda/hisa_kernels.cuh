// HISA's GPU stages besides scoring and top-k: pooling, input validation, block plans, tile unions, token scores.
#pragma once

#include <cub/block/block_scan.cuh>

#include "../../core/float8.hpp"
#include "block_sort.cuh"
#include "score_keys.cuh"

namespace hilo::hisa::cuda_detail {

// Exact fp8 e4m3 -> f32 (the same arithmetic as the CPU's AVX-512 packer).
__device__ __forceinline__ float e4m3_to_f32(uint8_t code) {
  const uint32_t mag = code & 0x7Fu;
  if (mag == 0x7Fu) return __uint_as_float(0x7FC00000u);
  float f = __uint_as_float(mag << 20) * 0x1p120f;
  return (code & 0x80u) ? -f : f;
}

// ---- Pooling: block b = mean over its rows of k * k_scale, in row order, then fp8 with scale amax/448 ----
// One CTA of 128 threads (one per d) per block; __fmul_rn/__fadd_rn/__fdiv_rn keep the CPU's exact operations.
template <class Keys>
__device__ inline void pool_block(const Keys& keys, int source, int64_t first, int64_t count, uint8_t* codes,
                                  float* scale_out) {
  __shared__ float s_max[4];
  const int d = threadIdx.x;
  float sum = 0.0f;
  for (int64_t n = first; n < first + count; ++n)
    sum = __fadd_rn(sum, __fmul_rn(e4m3_to_f32(keys.row(source, n)[d]), keys.scale(source, n)));
  const float mean = __fdiv_rn(sum, static_cast<float>(count));
  float m = fabsf(mean);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
  if (d % 32 == 0) s_max[d / 32] = m;
  __syncthreads();
  const float amax = fmaxf(fmaxf(s_max[0], s_max[1]), fmaxf(s_max[2], s_max[3]));
  const float scale = amax == 0.0f ? 1.0f : __fdiv_rn(amax, 448.0f);
  codes[d] = amax == 0.0f ? uint8_t{0} : hilo::fp8::encode_e4m3(__fdiv_rn(mean, scale));
  if (d == 0) *scale_out = scale;
  __syncthreads();
}

static __global__ void pool_dense_kernel(DenseKeys keys, int block, uint8_t* codes, float* scales) {
  const int64_t b = blockIdx.x;
  const int64_t first = b * block;
  pool_block(keys, 0, first, min64(block, keys.n - first), codes + b * kDim, scales + b);
}

// Decode: brings every request's pooled rows up to `new_len` (its keys). Blocks from the first one holding a token
// not pooled yet (or all, if the request shrank: slot reuse) are pooled again from their rows.
static __global__ void pool_cache_kernel(PagedKeys keys, const int32_t* new_len, const int32_t* pooled_len, int block,
                                  int max_blocks, uint8_t* codes, float* scales) {
  early_launch_prologue();
  const int r = blockIdx.x;
  const int64_t len = new_len[r], old = pooled_len[r];
  const int64_t first_block = len < old ? 0 : old / block;
  const int64_t blocks = (len + block - 1) / block;
  for (int64_t b = first_block + blockIdx.y; b < blocks; b += gridDim.y) {
    const int64_t first = b * block;
    const int64_t slot = static_cast<int64_t>(r) * max_blocks + b;
    pool_block(keys, r, first, min64(block, len - first), codes + slot * kDim, scales + slot);
  }
}

static __global__ void store_lengths_kernel(const int32_t* new_len, int32_t* pooled_len, int batch) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < batch) pooled_len[r] = new_len[r];
}

// ---- Validation: the first offending index of each check (atomicMin keeps the smallest: deterministic) ----
__device__ __forceinline__ void note(unsigned long long* slot, int64_t i) {
  atomicMin(slot, static_cast<unsigned long long>(i));
}

static __global__ void check_prefill_kernel(const int32_t* ks, const int32_t* ke, int64_t S, int64_t N, const uint8_t* q,
                                     int64_t q_n, const float* w, int64_t w_n, const uint8_t* k, int64_t k_n,
                                     const float* k_scale, Violations* v) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < max(max(q_n, k_n), S); i += stride) {
    if (i < S && (ks[i] < 0 || ks[i] > ke[i] || ke[i] > N)) note(&v->range, i);
    if (i < q_n && (q[i] & 0x7F) == 0x7F) note(&v->q, i);
    if (i < w_n && !isfinite(w[i])) note(&v->w, i);
    if (i < k_n && (k[i] & 0x7F) == 0x7F) note(&v->k, i);
    if (i < N && !isfinite(k_scale[i])) note(&v->k_scale, i);
  }
}

// Decode: context lengths, block-table entries of the pages in use, q and w, and the cache rows [from[r], len[r])
// of each request (every visible row for flat decode; for HISA only the rows its cache has not pooled yet).
static __global__ void check_decode_kernel(const int32_t* lens, int64_t n_lens, int64_t capacity, PagedKeys keys,
                                    int64_t num_pages, int batch, const int32_t* req_len, const int32_t* from,
                                    const uint8_t* q, int64_t q_n, const float* w, int64_t w_n, Violations* v) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (int64_t i = tid; i < n_lens; i += stride)
    if (lens[i] < 0 || lens[i] > capacity) note(&v->lens, i);
  for (int64_t i = tid; i < static_cast<int64_t>(batch) * keys.max_pages; i += stride) {
    const int r = static_cast<int>(i / keys.max_pages);
    const int64_t p = i % keys.max_pages;
    const int64_t len = min64(max(req_len[r], 0), capacity);
    if (p * 64 < len && (keys.table[i] < 0 || keys.table[i] >= num_pages)) note(&v->table, i);
  }
  for (int64_t i = tid; i < q_n; i += stride)
    if ((q[i] & 0x7F) == 0x7F) note(&v->q, i);
  for (int64_t i = tid; i < w_n; i += stride)
    if (!isfinite(w[i])) note(&v->w, i);
}

// The rows to scan are only read once the block table is known to be valid (second launch).
static __global__ void check_cache_rows_kernel(PagedKeys keys, int batch, const int32_t* from, Violations* v) {
  const int r = blockIdx.y;
  if (r >= batch) return;
  const int64_t len = keys.lengths[r], first = from ? from[r] : 0;
  for (int64_t pos = first + blockIdx.x * static_cast<int64_t>(blockDim.x / 8) + threadIdx.x / 8; pos < len;
       pos += static_cast<int64_t>(gridDim.x) * (blockDim.x / 8)) {
    const uint4 c = *reinterpret_cast<const uint4*>(keys.row(r, pos) + 16 * (threadIdx.x % 8));
    const uint32_t words[4] = {c.x, c.y, c.z, c.w};
    bool bad = threadIdx.x % 8 == 0 && !isfinite(keys.scale(r, pos));
    for (uint32_t word : words)
      for (int byte = 0; byte < 4; ++byte) bad |= ((word >> (8 * byte)) & 0x7Fu) == 0x7Fu;
    if (bad) note(&v->k, static_cast<int64_t>(r) * (int64_t{1} << 40) + pos);
  }
}

// ---- HISA block plan ----
// Per row: eligible blocks [first, last]; if more than m are eligible and more than topk keys are visible, stage 1
// scores the middle ones [first + 1, last) (block_lo/hi), else every eligible block is kept.
struct BlockPlan {
  int32_t *block_lo, *block_hi;  // null: not asked for (decode_rows_kernel)
  int block, m, topk;
  __device__ void write(int r, int64_t lo, int64_t hi) const {
    int32_t blo = 0, bhi = 0;
    if (lo < hi) {
      const int64_t first = lo / block, last = (hi + block - 1) / block - 1;
      if (last - first + 1 > m && hi - lo > topk)
        blo = static_cast<int32_t>(first + 1), bhi = static_cast<int32_t>(last);
    }
    block_lo[r] = blo, block_hi[r] = bhi;
  }
};

static __global__ void block_plan_kernel(const int32_t* ks, const int32_t* ke, int rows, BlockPlan plan) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < rows) plan.write(r, ks[r], ke[r]);
}

// ---- Decode row plan: visible length of row (r, j), and each request's length; one warp per request ----
// A request whose length is outside [0, max_pages * 64] or whose used block-table entries point outside the cache
// sees no keys, so its rows get no candidates (-1). With check_finite such values are reported as errors before this
// runs; without it (no synchronisation) this keeps every read inside the cache.
constexpr int kDecodeRowsWarps = 4;
// (isolate = false on the checked path: the validation kernel then sees the lengths as given.)
// HISA decode also gets, in the same launch, its block plan (plan.block_lo set) and the pooled cache's new lengths
// (pooled.len set, on the unchecked path only: the old ones go to pooled.previous for pool_cache_kernel).
struct PooledLengths {
  int32_t* len;
  int32_t* previous;
};

static __global__ void decode_rows_kernel(const int32_t* lens, bool per_token, int batch, int next_n, int block,
                                          const int32_t* table, int max_pages, int64_t num_pages, bool isolate,
                                          int32_t* row_hi, int32_t* row_lo, int32_t* req_len, int32_t* req_blocks,
                                          BlockPlan plan, PooledLengths pooled) {
  early_launch_prologue();
  const int r = blockIdx.x * kDecodeRowsWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= batch) return;
  const int64_t capacity = static_cast<int64_t>(max_pages) * 64;
  int longest = 0;
  bool ok = true;
  for (int j = 0; j < next_n; ++j) {
    const int len = per_token ? lens[r * next_n + j] : lens[r];
    ok = ok && len >= 0 && len <= capacity;
    longest = max(longest, per_token ? len : max(0, len - next_n + j + 1));
  }
  const int pages = ok ? (longest + 63) / 64 : 0;
  for (int p = lane; p < pages; p += 32) {
    const int32_t e = table[static_cast<int64_t>(r) * max_pages + p];
    ok = ok && e >= 0 && e < num_pages;
  }
  ok = __all_sync(0xFFFFFFFFu, ok) || !isolate;
  if (!ok) longest = 0;
  for (int j = lane; j < next_n; j += 32) {
    const int vis = !ok ? 0 : per_token ? lens[r * next_n + j] : max(0, lens[r] - next_n + j + 1);
    row_hi[r * next_n + j] = vis;
    row_lo[r * next_n + j] = 0;
    if (plan.block_lo) plan.write(r * next_n + j, 0, vis);
  }
  if (lane == 0) {
    req_len[r] = longest;
    if (req_blocks) req_blocks[r] = (longest + block - 1) / block;
    if (pooled.len) pooled.previous[r] = pooled.len[r], pooled.len[r] = longest;
  }
}

// Row r's kept list, ascending: [first] + stage-1 winners + [last] when stage 1 ran for it (`staged`; its n_mid
// winners already sit in out[1, 1 + n_mid)), else every eligible block; -1 after the end. Thread t of `threads`
// takes its share of the writes; returns the list's length.
__device__ inline int finish_kept_list(int64_t lo, int64_t hi, int block, bool staged, int n_mid, int32_t* out,
                                       int cap, int t, int threads) {
  int c = 0;
  if (lo < hi) {
    const int64_t first = lo / block, last = (hi + block - 1) / block - 1;
    if (staged) {  // block_lo = first + 1 >= 1 then; otherwise every eligible block fits in cap
      c = n_mid + 2;
      if (t == 0) out[0] = static_cast<int32_t>(first), out[c - 1] = static_cast<int32_t>(last);
    } else {
      c = static_cast<int>(last - first + 1);
      for (int i = t; i < c; i += threads) out[i] = static_cast<int32_t>(first + i);
    }
  }
  for (int i = c + t; i < cap; i += threads) out[i] = -1;
  return c;
}

// Kept lists when stage 1 has no top-k to run (m = 2: first and last only). One warp per row.
constexpr int kKeptWarps = 4;
static __global__ void kept_blocks_kernel(const int32_t* ks, const int32_t* ke, const int32_t* block_lo, int rows,
                                          int block, int cap, int32_t* kept, int32_t* kept_count) {
  const int r = blockIdx.x * kKeptWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int c = finish_kept_list(ks[r], ke[r], block, block_lo[r] != 0, 0, kept + static_cast<int64_t>(r) * cap, cap,
                                 lane, 32);
  if (lane == 0) kept_count[r] = c;
}

// ---- Tile unions: the distinct kept blocks of a tile of rows, ascending, with a bitmask of rows per block ----
// Besides the mask, every entry carries its rows' slots (tile_rows int32 per entry: the block's place in the row's
// kept list, -1 where the row did not keep it), so the token kernel reads a row's slot instead of searching for it.
constexpr int kUnionThreads = 256;
static_assert(kTileRows <= 32, "a tile's rows are bits of one uint32_t mask and 5 bits of the pair key");

// Where the union of tile `tile` starts in union_blocks / union_mask (entries) and union_slots (entries x rows).
__host__ __device__ inline int64_t union_offset(int tile, int tile_rows, int cap) {
  return static_cast<int64_t>(tile) * tile_rows * cap;
}

// Decode with next_n = 1 (one row per tile): the row's kept list is already ascending and distinct. True if it did.
__device__ inline bool copy_single_row_union(const int32_t* kept, const int32_t* kept_count, int tile_rows, int cap,
                                             int32_t* blocks, uint32_t* mask, int32_t* slots, int32_t* union_count) {
  if (tile_rows != 1) return false;
  const int tile = blockIdx.x, n = kept_count[tile];
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    blocks[i] = kept[static_cast<int64_t>(tile) * cap + i];
    mask[i] = 1;
    slots[i] = i;
  }
  if (threadIdx.x == 0) union_count[tile] = n;
  return true;
}

// Sorts the tile's kept blocks, deduplicates on one thread, then finds each entry's rows by binary search in every
// row's kept list (global memory). Measured: 109 us per block of 2048 query rows under ncu on an H100, against ~740 us
// for their token scores (docs/results/hisa-cuda.md); tile_union_pairs_kernel is the rewrite.
static __global__ void __launch_bounds__(kUnionThreads)
    tile_union_kernel(const int32_t* kept, const int32_t* kept_count, int rows, int tile_rows, int cap,
                      int32_t* union_blocks, uint32_t* union_mask, int32_t* union_slots, int32_t* union_count) {
  __shared__ int32_t s[kUnionSort];
  __shared__ int32_t s_n;
  const int tile = blockIdx.x, first = tile * tile_rows, n_rows = min(tile_rows, rows - first);
  int32_t* blocks = union_blocks + union_offset(tile, tile_rows, cap);
  uint32_t* mask = union_mask + union_offset(tile, tile_rows, cap);
  int32_t* slots = union_slots + union_offset(tile, tile_rows, cap) * tile_rows;
  if (copy_single_row_union(kept, kept_count, tile_rows, cap, blocks, mask, slots, union_count)) return;
  const int size = pow2_at_least(tile_rows * cap);  // the sort covers 128 entries in decode, not 2048
  for (int i = threadIdx.x; i < size; i += blockDim.x) {
    const int row = i / cap, j = i % cap;
    s[i] = (row < n_rows && j < kept_count[first + row]) ? kept[static_cast<int64_t>(first + row) * cap + j]
                                                         : INT32_MAX;
  }
  block_bitonic_sort(s, size, INT32_MAX);
  if (threadIdx.x == 0) {  // unique (a short serial pass over at most 16 * cap entries)
    int n = 0;
    for (int i = 0; i < size && s[i] != INT32_MAX; ++i)
      if (n == 0 || s[n - 1] != s[i]) s[n++] = s[i];
    s_n = n;
  }
  __syncthreads();
  const int n = s_n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    uint32_t bits = 0;
    for (int row = 0; row < tile_rows; ++row) {  // binary search in the row's ascending kept list
      int lo = 0, found = 0;
      if (row < n_rows) {
        const int32_t* list = kept + static_cast<int64_t>(first + row) * cap;
        int hi = kept_count[first + row];
        while (lo < hi) {
          const int mid = (lo + hi) / 2;
          if (list[mid] < s[i]) lo = mid + 1; else hi = mid;
        }
        found = lo < kept_count[first + row] && list[lo] == s[i];
      }
      if (found) bits |= 1u << row;
      slots[static_cast<int64_t>(i) * tile_rows + row] = found ? lo : -1;
    }
    blocks[i] = s[i];
    mask[i] = bits;
  }
  if (threadIdx.x == 0) union_count[tile] = n;
}

// The same union, without the serial pass and the searches (FlatTuning::pair_union, the default): the tile's
// (block, row, slot) triples are sorted as one key each (block << 21 | row << 16 | slot), so a block's rows are
// adjacent; a triple starts an entry where its block differs from the previous one's, a block scan of those starts
// gives each entry its place, and the entry's mask ORs the rows of its run.
constexpr int kPairSlotBits = 16;
static_assert(kUnionSort <= 1 << kPairSlotBits, "a slot (< cap <= kUnionSort) fits the pair key's slot bits");
static __global__ void __launch_bounds__(kUnionThreads)
    tile_union_pairs_kernel(const int32_t* kept, const int32_t* kept_count, int rows, int tile_rows, int cap,
                            int32_t* union_blocks, uint32_t* union_mask, int32_t* union_slots, int32_t* union_count) {
  __shared__ uint64_t s[kUnionSort];
  __shared__ typename cub::BlockScan<int, kUnionThreads>::TempStorage scan;
  const int tile = blockIdx.x, first = tile * tile_rows, n_rows = min(tile_rows, rows - first);
  int32_t* blocks = union_blocks + union_offset(tile, tile_rows, cap);
  uint32_t* mask = union_mask + union_offset(tile, tile_rows, cap);
  int32_t* slots = union_slots + union_offset(tile, tile_rows, cap) * tile_rows;
  if (copy_single_row_union(kept, kept_count, tile_rows, cap, blocks, mask, slots, union_count)) return;
  constexpr uint64_t kNone = ~uint64_t{0};
  constexpr int kBlockShift = kPairSlotBits + 5;
  const int size = pow2_at_least(tile_rows * cap);
  for (int i = threadIdx.x; i < size; i += kUnionThreads) {
    const int row = i / cap, j = i % cap;
    s[i] = (row < n_rows && j < kept_count[first + row])
               ? static_cast<uint64_t>(kept[static_cast<int64_t>(first + row) * cap + j]) << kBlockShift |
                     static_cast<uint64_t>(row) << kPairSlotBits | static_cast<uint64_t>(j)
               : kNone;
  }
  block_bitonic_sort(s, size, kNone);
  // Thread t owns pairs [t * per, (t + 1) * per): it counts the entries starting there, is told where its first one
  // goes, and writes them with the OR of their runs (a run may continue into the next thread's pairs).
  const int per = (size + kUnionThreads - 1) / kUnionThreads, begin = min(size, threadIdx.x * per),
            end = min(size, begin + per);
  const auto starts_entry = [&](int i) {
    return s[i] != kNone && (i == 0 || s[i] >> kBlockShift != s[i - 1] >> kBlockShift);
  };
  int mine = 0;
  for (int i = begin; i < end; ++i) mine += starts_entry(i);
  int at = 0, total = 0;
  cub::BlockScan<int, kUnionThreads>(scan).ExclusiveSum(mine, at, total);
  for (int i = begin; i < end; ++i) {
    if (!starts_entry(i)) continue;
    int32_t* entry_slots = slots + static_cast<int64_t>(at) * tile_rows;
    for (int row = 0; row < tile_rows; ++row) entry_slots[row] = -1;
    uint32_t bits = 0;
    for (int j = i; j < size && s[j] >> kBlockShift == s[i] >> kBlockShift; ++j) {
      const int row = static_cast<int>(s[j] >> kPairSlotBits & 31);
      bits |= 1u << row;
      entry_slots[row] = static_cast<int32_t>(s[j] & ((1u << kPairSlotBits) - 1));
    }
    blocks[at] = static_cast<int32_t>(s[i] >> kBlockShift);
    mask[at] = bits;
    ++at;
  }
  if (threadIdx.x == 0) union_count[tile] = total;
}

// ---- Token stage: every row of a tile scores the tokens of each union block it kept ----
// Candidates of row r: cand[r][slot * block + offset] for its slot-th kept block, written for its tokens in [lo, hi)
// only (TokenCandidates reads no others).
template <int H, class Keys>
static __global__ void __launch_bounds__(kScoreWarps * 32)
    token_scores_kernel(const uint8_t* q, const float* w, const int32_t* row_lo, const int32_t* row_hi, int rows,
                        int tile_rows, int source_per_tile, Keys keys, int block, const int32_t* kept,
                        const int32_t* kept_count, int cap, const int32_t* union_blocks, const uint32_t* union_mask,
                        const int32_t* union_count, float* cand) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int tile = blockIdx.x, first = tile * tile_rows, n_rows = min(tile_rows, rows - first);
  const int source = source_per_tile ? tile : 0;
  uint8_t* s_q = smem;
  float* s_w = reinterpret_cast<float*>(smem + tile_rows * H * kDim);
  int32_t* s_kept = reinterpret_cast<int32_t*>(s_w + tile_rows * H);
  stage_queries<H>(s_q, s_w, q, w, first, n_rows);
  for (int i = threadIdx.x; i < n_rows * cap; i += blockDim.x) s_kept[i] = kept[static_cast<int64_t>(first) * cap + i];
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int parts = block / kKeysPerWarp;  // 64-key parts per block
  const int n_union = union_count[tile];
  const int32_t* blocks = union_blocks + static_cast<int64_t>(tile) * tile_rows * cap;
  const uint32_t* masks = union_mask + static_cast<int64_t>(tile) * tile_rows * cap;
  // Work items (union block, part) spread over the grid's y dimension and the warps.
  for (int item = blockIdx.y * kScoreWarps + warp; item < n_union * parts; item += gridDim.y * kScoreWarps) {
    const int u = item / parts, part = item % parts;
    const int64_t b = blocks[u];
    const int64_t begin = b * block + part * kKeysPerWarp;
    KeyFragments f;
    load_keys(f, keys, source, begin, keys.size(source));
    const uint32_t mask = masks[u];
    for (int row = 0; row < n_rows; ++row) {
      if (!(mask >> row & 1u)) continue;
      const int64_t lo = row_lo[first + row], hi = row_hi[first + row];
      if (hi <= begin || lo >= begin + kKeysPerWarp) continue;
      int slot = 0;  // position of b in the row's kept list
      {
        int l = 0, h = kept_count[first + row];
        while (l < h) {
          const int mid = (l + h) / 2;
          if (s_kept[row * cap + mid] < b) l = mid + 1; else h = mid;
        }
        slot = l;
      }
      float sc[4][2];
      score_row<H>(f, s_q, s_w, row, sc);
      float* out = cand + (static_cast<int64_t>(first + row) * cap + slot) * block + part * kKeysPerWarp;
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int offset = 16 * mt + g + 8 * half;
          const int64_t key = begin + offset;
          if (t == 0 && key >= lo && key < hi) out[offset] = sc[mt][half];
        }
    }
  }
}

template <int H>
inline size_t token_scores_smem(int tile_rows, int cap) {
  return static_cast<size_t>(tile_rows) * H * kDim + tile_rows * H * sizeof(float) + tile_rows * cap * sizeof(int32_t);
}

// Candidates of the token stage as a top-k source: position = kept[slot] * block + offset. Only a row's visible
// tokens [lo, hi) are candidates, which the token kernels write and nothing else: the kept list is ascending and
// starts and ends with the blocks of lo and hi - 1, so they are one run of entries, [visible_begin, + visible_len),
// and the buffer needs no fill.
struct TokenCandidates {
  const float* cand;
  const int32_t *kept, *kept_count, *lo, *hi;
  int cap, block;

  struct Row {
    const float* row_cand;
    const int32_t* row_kept;
    uint32_t n, visible_begin, visible_len;
    int block;
    __device__ int64_t count(int) const { return n; }
    __device__ const float* data(int) const { return row_cand; }
    __device__ uint32_t key_from(int, int64_t i, float x) const {
      return static_cast<uint32_t>(i) - visible_begin < visible_len ? order_key(x) : 0u;
    }
    __device__ uint32_t key(int row, int64_t i) const { return key_from(row, i, row_cand[i]); }
    __device__ int64_t position(int, int64_t i) const {  // i < 2^31 here: 32-bit division, not a 64-bit call
      const int j = static_cast<int>(i);
      return static_cast<int64_t>(row_kept[j / block]) * block + j % block;
    }
  };
  __device__ Row bind(int row) const {
    const int32_t* list = kept + static_cast<int64_t>(row) * cap;
    const int n = kept_count[row];
    uint32_t begin = 0, len = 0;
    if (n > 0) {
      const int64_t first = static_cast<int64_t>(list[0]) * block, last = static_cast<int64_t>(list[n - 1]) * block;
      begin = static_cast<uint32_t>(lo[row] - first);
      len = static_cast<uint32_t>(static_cast<int64_t>(n - 1) * block + (hi[row] - last) - begin);
    }
    return Row{cand + static_cast<int64_t>(row) * cap * block, list, static_cast<uint32_t>(n) * block, begin, len,
               block};
  }
  // Unbound access (sources that wrap this one).
  __device__ int64_t count(int row) const { return static_cast<int64_t>(kept_count[row]) * block; }
  __device__ uint32_t key(int row, int64_t i) const { return bind(row).key(row, i); }
  __device__ int64_t position(int row, int64_t i) const { return bind(row).position(row, i); }
};

// Decode outputs: positions and/or global slots (page * 64 + offset), -1 padded.
struct DecodeOut {
  int32_t* positions;
  int32_t* slots;
  const int32_t* table;
  int max_pages, next_n, k;
  __device__ void write(int row, int i, int64_t p, uint32_t) const {
    const int64_t at = static_cast<int64_t>(row) * k + i;
    if (positions) positions[at] = static_cast<int32_t>(p);
    if (slots) slots[at] = table[static_cast<int64_t>(row / next_n) * max_pages + p / 64] * 64 + static_cast<int32_t>(p % 64);
  }
  __device__ void finish(int row, int total, uint32_t) const { pad(row, total, threadIdx.x, blockDim.x); }
  __device__ void finish_in_warp(int row, int total, uint32_t, int lane) const { pad(row, total, lane, 32); }
  __device__ void pad(int row, int total, int t, int threads) const {
    for (int i = total + t; i < k; i += threads) {
      const int64_t at = static_cast<int64_t>(row) * k + i;
      if (positions) positions[at] = -1;
      if (slots) slots[at] = -1;
    }
  }
};

// Stage 1's source: row r's block scores exist only in [block_lo[r], block_hi[r]) (the scoring kernels write no
// others), so the buffer needs no NaN fill and the rest is never a candidate.
struct BlockRange {
  const float* scores;
  int64_t ld;
  const int32_t* block_lo;
  const int32_t* block_hi;
  __device__ int64_t count(int row) const { return __ldg(block_hi + row); }
  __device__ const float* data(int row) const { return scores + static_cast<int64_t>(row) * ld; }
  __device__ uint32_t key_from(int row, int64_t i, float x) const {
    return i >= __ldg(block_lo + row) ? order_key(x) : 0u;
  }
  __device__ uint32_t key(int row, int64_t i) const { return key_from(row, i, data(row)[i]); }
  __device__ int64_t position(int, int64_t i) const { return i; }
};

// Stage 1's winners (ascending block ids) straight into the kept lists, which finish() completes: no winners buffer
// and no kept_blocks_kernel launch (that kernel remains for m = 2, where stage 1 has no top-k to run).
struct KeptBlocks {
  const int32_t *lo, *hi, *block_lo;
  int block, cap;
  int32_t *kept, *kept_count;
  __device__ void write(int row, int i, int64_t p, uint32_t) const {
    kept[static_cast<int64_t>(row) * cap + 1 + i] = static_cast<int32_t>(p);
  }
  __device__ void finish(int row, int total, uint32_t) const {  // after the writes (a barrier in every top-k kernel)
    finish_with(row, total, threadIdx.x, blockDim.x);
  }
  __device__ void finish_in_warp(int row, int total, uint32_t, int lane) const { finish_with(row, total, lane, 32); }
  __device__ void finish_with(int row, int total, int t, int threads) const {
    const int c = finish_kept_list(lo[row], hi[row], block, block_lo[row] != 0, total,
                                   kept + static_cast<int64_t>(row) * cap, cap, t, threads);
    if (t == 0) kept_count[row] = c;
  }
};

}  // namespace hilo::hisa::cuda_detail
