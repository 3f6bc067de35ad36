// The scoring kernel of the GPU indexers: scores of query rows against up to 512 keys per CTA on fp8 tensor cores.
//
// Keys are the MMA's M dimension and heads its N dimension (A = 16 keys x 32 d, B = 32 d x 8 heads), so the sum
// over heads stays inside each thread plus two shuffles (no cross-warp reduction). A warp keeps its 64 keys in
// registers (16 regs of fp8 A fragments) and reuses them for every query row of the CTA, whose q rows (fp8,
// [rows][H][128]) sit in shared memory, 16-byte chunks XOR-swizzled by head to spread banks.
//
// The reduction dimension d is permuted identically for A and B (thread t of a quad holds d in [32t, 32t+32)), so
// each thread loads its key and q bytes with 16-byte accesses; the dot product is the same sum in another order.
// f32 accumulation in the tensor cores does not follow the CPU's fma order: scores differ from the reference by
// rounding (docs/hisa.md, GPU section).
#pragma once

#include "common.cuh"

namespace hilo::hisa::cuda_detail {

constexpr int kScoreWarps = 8;
constexpr int kKeysPerCta = kScoreWarps * kKeysPerWarp;
constexpr int kMaxGroupRows = 16;     // query rows staged per CTA

// Rows [row_begin, row_end) in groups of group_rows; group g (blockIdx.y) uses key source source_begin + g when the
// key source depends on the group (decode), and covers keys [key_begin + blockIdx.x * 512, ...) within
// [key_begin, key_end). Row r sees keys [lo[r], hi[r]) of its source.
struct ScoreParams {
  const uint8_t* q;  // [rows][H][128] fp8
  const float* w;    // [rows][H]
  const int32_t* lo;
  const int32_t* hi;
  int row_begin, row_end, group_rows, source_begin;
  int64_t key_begin, key_end;
};

__device__ __forceinline__ uint32_t swizzled_offset(int row, int head, int H, int chunk) {
  return static_cast<uint32_t>(((row * H + head) * 8 + (chunk ^ (head & 7))) * 16);
}

// Copies q rows [first, first + rows) into shared memory (swizzled) and their weights. All threads take part.
template <int H>
__device__ inline void stage_queries(uint8_t* s_q, float* s_w, const uint8_t* q, const float* w, int first, int rows) {
  const int chunks = rows * H * (kDim / 16);
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    const int row = c / (H * 8), head = (c / 8) % H, chunk = c % 8;
    const uint4 v =
        *reinterpret_cast<const uint4*>(q + (static_cast<int64_t>(first + row) * H + head) * kDim + chunk * 16);
    *reinterpret_cast<uint4*>(s_q + swizzled_offset(row, head, H, chunk)) = v;
  }
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) s_w[i] = w[static_cast<int64_t>(first) * H + i];
}

// A warp's 64 keys as MMA A fragments: a[mt][j] for m-tile mt (16 keys) and k-step j (32 of d), with their scales.
struct KeyFragments {
  uint32_t a[4][4][4];
  float scale[4][2];
};

// Loads keys [begin, begin + 64) of `source`; keys at or past `end` become zero rows with scale 0.
template <class Keys>
__device__ inline void load_keys(KeyFragments& f, const Keys& keys, int source, int64_t begin, int64_t end) {
  const int lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mt = 0; mt < 4; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t key = begin + 16 * mt + g + 8 * half;
      uint4 v0 = make_uint4(0, 0, 0, 0), v1 = v0;
      float s = 0.0f;
      if (key < end) {
        const uint8_t* row = keys.row(source, key) + 32 * t;
        v0 = *reinterpret_cast<const uint4*>(row);
        v1 = *reinterpret_cast<const uint4*>(row + 16);
        s = keys.scale(source, key);
      }
      f.scale[mt][half] = s;
      f.a[mt][0][half] = v0.x, f.a[mt][0][2 + half] = v0.y;
      f.a[mt][1][half] = v0.z, f.a[mt][1][2 + half] = v0.w;
      f.a[mt][2][half] = v1.x, f.a[mt][2][2 + half] = v1.y;
      f.a[mt][3][half] = v1.z, f.a[mt][3][2 + half] = v1.w;
    }
  }
}

// Scores of staged query row `row` against the warp's 64 keys. out[mt][half] is the score of key
// 16*mt + g + 8*half (g = lane / 4), identical on the 4 lanes of a quad.
template <int H>
__device__ inline void score_row(const KeyFragments& f, const uint8_t* s_q, const float* s_w, int row,
                                 float (&out)[4][2]) {
  static_assert(H % 16 == 0 && H <= 64, "heads must be 16, 32, 48 or 64");
  // Heads in two halves: up to 64 accumulators live at a time. (Groups of 16 heads with no unrolling across groups
  // avoided every spill but ran 12% slower on an H200: fewer independent MMAs in flight.)
  constexpr int kHalfTiles = H / 16;  // n-tiles of 8 heads per half
  const int lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  float part[4][2] = {};
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float acc[4][kHalfTiles][4] = {};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint2 b[kHalfTiles];
#pragma unroll
      for (int nt = 0; nt < kHalfTiles; ++nt) {
        const int head = 8 * (hh * kHalfTiles + nt) + g;
        b[nt] = *reinterpret_cast<const uint2*>(s_q + swizzled_offset(row, head, H, 2 * t + (j >> 1)) + 8 * (j & 1));
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < kHalfTiles; ++nt) mma_e4m3_16x8x32(acc[mt][nt], f.a[mt][j], b[nt].x, b[nt].y);
    }
#pragma unroll
    for (int nt = 0; nt < kHalfTiles; ++nt) {
      const int h0 = 8 * (hh * kHalfTiles + nt) + 2 * t;
      const float w0 = s_w[row * H + h0], w1 = s_w[row * H + h0 + 1];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        part[mt][0] += w0 * fmaxf(acc[mt][nt][0] * f.scale[mt][0], 0.0f) +
                       w1 * fmaxf(acc[mt][nt][1] * f.scale[mt][0], 0.0f);
        part[mt][1] += w0 * fmaxf(acc[mt][nt][2] * f.scale[mt][1], 0.0f) +
                       w1 * fmaxf(acc[mt][nt][3] * f.scale[mt][1], 0.0f);
      }
    }
  }
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float v = part[mt][half];
      v += __shfl_xor_sync(0xFFFFFFFFu, v, 1);
      v += __shfl_xor_sync(0xFFFFFFFFu, v, 2);
      out[mt][half] = v;
    }
}

template <int H, class Keys, class Out>
__global__ void __launch_bounds__(kScoreWarps * 32) score_keys_kernel(ScoreParams p, Keys keys, Out out) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int group_first = p.row_begin + blockIdx.y * p.group_rows;
  const int rows = min(p.group_rows, p.row_end - group_first);
  const int source = p.source_begin + blockIdx.y;
  uint8_t* s_q = smem;
  float* s_w = reinterpret_cast<float*>(smem + p.group_rows * H * kDim);
  int64_t* s_range = reinterpret_cast<int64_t*>(s_w + p.group_rows * H);  // lo, hi per row

  const int64_t tile_begin = p.key_begin + static_cast<int64_t>(blockIdx.x) * kKeysPerCta;
  const int64_t tile_end = min(tile_begin + kKeysPerCta, min(p.key_end, keys.size(source)));
  int any = 0;
  if (threadIdx.x < rows) {
    const int r = group_first + threadIdx.x;
    const int64_t lo = max64(p.lo[r], tile_begin), hi = min64(p.hi[r], tile_end);
    s_range[2 * threadIdx.x] = lo;
    s_range[2 * threadIdx.x + 1] = hi;
    any = lo < hi;
  }
  if (!__syncthreads_or(any)) return;
  stage_queries<H>(s_q, s_w, p.q, p.w, group_first, rows);
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int64_t warp_begin = tile_begin + warp * kKeysPerWarp;
  if (warp_begin >= tile_end) return;
  KeyFragments f;
  load_keys(f, keys, source, warp_begin, tile_end);
  for (int row = 0; row < rows; ++row) {
    const int64_t lo = s_range[2 * row], hi = s_range[2 * row + 1];
    if (hi <= warp_begin || lo >= warp_begin + kKeysPerWarp) continue;
    float sc[4][2];
    score_row<H>(f, s_q, s_w, row, sc);
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t key = warp_begin + 16 * mt + g + 8 * half;
        if (t == 0 && key >= lo && key < hi) out.write(group_first + row, source, key, sc[mt][half]);
      }
  }
}

template <int H>
inline size_t score_keys_smem(int group_rows) {
  return static_cast<size_t>(group_rows) * H * kDim + group_rows * H * sizeof(float) + group_rows * 2 * sizeof(int64_t);
}

// ---- Key sources ----

// Rows [n, 128] fp8 with a per-row scale (prefill keys, or pooled block keys).
struct DenseKeys {
  const uint8_t* codes;
  const float* scales;
  int64_t n;
  __device__ const uint8_t* row(int, int64_t i) const { return codes + i * kDim; }
  __device__ float scale(int, int64_t i) const { return scales[i]; }
  __device__ int64_t size(int) const { return n; }
};

// One request's keys in DeepGEMM's paged layout: pages of 64 rows (64*128 fp8 bytes, then 64 f32 scales).
// Page indices are clamped into the cache, so an unchecked bad entry (check_finite off) cannot read outside it; the
// row plan gives such a request no visible keys (decode_rows_kernel).
struct PagedKeys {
  const uint8_t* cache;
  const int32_t* table;     // [batch, max_pages]
  const int32_t* lengths;   // [batch] keys of each request
  int max_pages;
  int64_t num_pages;
  static constexpr int64_t kPageBytes = 64 * (kDim + 4);
  // The cache page holding key i of request r (its table entry, clamped to the cache).
  __device__ int32_t page_index(int r, int64_t i) const {
    const int64_t p = table[static_cast<int64_t>(r) * max_pages + i / 64];
    return static_cast<int32_t>(min64(max64(p, 0), num_pages - 1));
  }
  __device__ const uint8_t* page_at(int32_t index) const { return cache + index * kPageBytes; }
  __device__ const uint8_t* page(int r, int64_t i) const { return page_at(page_index(r, i)); }
  __device__ const uint8_t* row(int r, int64_t i) const { return page(r, i) + (i % 64) * kDim; }
  __device__ float scale(int r, int64_t i) const { return *scales_at(r, i); }
  // Scales of keys i, i + 1, ... within i's page (contiguous).
  __device__ const float* scales_at(int r, int64_t i) const {
    return reinterpret_cast<const float*>(page(r, i) + 64 * kDim) + i % 64;
  }
  __device__ int64_t size(int r) const { return lengths[r]; }
};

// Pooled rows of each request in a device pooled-key cache: [batch, max_blocks, 128] fp8 + scales.
struct PooledCacheKeys {
  const uint8_t* codes;
  const float* scales;
  const int32_t* blocks;  // [batch] pooled rows of each request
  int max_blocks;
  __device__ const uint8_t* row(int r, int64_t i) const {
    return codes + (static_cast<int64_t>(r) * max_blocks + i) * kDim;
  }
  __device__ float scale(int r, int64_t i) const { return scales[static_cast<int64_t>(r) * max_blocks + i]; }
  __device__ const float* scales_at(int r, int64_t i) const { return scales + static_cast<int64_t>(r) * max_blocks + i; }
  __device__ int64_t size(int r) const { return blocks[r]; }
};

// ---- Outputs ----

// scores[(row - row_begin) * ld + (key - key_begin)]: one chunk of keys for a block of rows.
struct ChunkOut {
  float* scores;
  int row_begin;
  int64_t key_begin, ld;
  __device__ void write(int row, int, int64_t key, float v) const {
    scores[static_cast<int64_t>(row - row_begin) * ld + (key - key_begin)] = v;
  }
};

}  // namespace hilo::hisa::cuda_detail
