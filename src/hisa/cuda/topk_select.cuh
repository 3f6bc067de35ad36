// Exact top-k of one row per CTA: a radix select on the order keys (11, 11 and 10 bits, shared-memory histograms),
// then an ordered compaction, so the k winners come out in ascending element order (ties to the earlier element,
// which is the smaller position in every source here). Deterministic: no atomics decide what is kept.
//
// A source gives each row's element count and, per element, its order key (0 = not a candidate) and position; a
// sink receives the winners (position, key) in order and the final count. Optionally the winners are re-sorted by
// (score desc, position asc) in shared memory (bitonic) before they reach the sink.
#pragma once

#include <cub/block/block_scan.cuh>

#include "common.cuh"
#include "runtime.cuh"

namespace hilo::hisa::cuda_detail {

constexpr int kTopkThreads = 512;

struct TopkShared {
  uint32_t hist[2048];
  uint64_t stage[kMaxTopk];  // (~key << 32 | position) when sorting
  typename cub::BlockScan<int, kTopkThreads>::TempStorage scan;
  int bin, remaining;
};

// Finds, in hist (bins of a digit, scanned from the top), the bin holding the `remaining`-th largest element.
__device__ inline void find_bin(TopkShared& sh, int bins, int remaining) {
  const int per = bins / kTopkThreads;  // 4 or 2
  int counts[4] = {0, 0, 0, 0}, sum = 0;
  for (int i = 0; i < per; ++i) {
    counts[i] = static_cast<int>(sh.hist[bins - 1 - (threadIdx.x * per + i)]);
    sum += counts[i];
  }
  int before;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(sum, before);
  for (int i = 0; i < per; ++i) {
    if (before < remaining && before + counts[i] >= remaining) {
      sh.bin = bins - 1 - (threadIdx.x * per + i);
      sh.remaining = remaining - before;
    }
    before += counts[i];
  }
  __syncthreads();
}

// Histogram of one digit over the candidates whose higher digits equal `prefix`. (Combining a warp's increments of
// one bin with __match_any_sync measured 20-30% slower on an H200 than plain shared atomics.)
template <class Src>
__device__ inline void histogram(TopkShared& sh, const Src& src, int row, int64_t n, uint32_t mask, uint32_t prefix,
                                 int shift, int bins) {
  for (int i = threadIdx.x; i < bins; i += kTopkThreads) sh.hist[i] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += kTopkThreads) {
    const uint32_t key = src.key(row, i);
    if (key != 0 && (key & mask) == prefix) atomicAdd(&sh.hist[(key >> shift) & (bins - 1)], 1u);
  }
  __syncthreads();
}

template <class Src, class Sink>
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(Src src, Sink sink, int k, bool sorted) {
  __shared__ TopkShared sh;
  const int row = blockIdx.x;
  const int64_t n = src.count(row);

  // Digit 1 (bits 31..21) over every element; its histogram also counts the candidates.
  histogram(sh, src, row, n, 0u, 0u, 21, 2048);
  int local = 0;
  for (int i = threadIdx.x; i < 2048; i += kTopkThreads) local += static_cast<int>(sh.hist[i]);
  int unused, valid;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(local, unused, valid);  // aggregate: the candidates
  __syncthreads();

  uint32_t threshold = 1;  // every candidate (key >= 1) when there are at most k
  int take_equal = 0;
  if (valid > k) {
    find_bin(sh, 2048, k);
    const uint32_t b1 = static_cast<uint32_t>(sh.bin);
    histogram(sh, src, row, n, 0xFFE00000u, b1 << 21, 10, 2048);
    find_bin(sh, 2048, sh.remaining);
    const uint32_t b2 = static_cast<uint32_t>(sh.bin);
    histogram(sh, src, row, n, 0xFFFFFC00u, (b1 << 21) | (b2 << 10), 0, 1024);
    find_bin(sh, 1024, sh.remaining);
    threshold = (b1 << 21) | (b2 << 10) | static_cast<uint32_t>(sh.bin);
    take_equal = sh.remaining;
  }

  // Ordered compaction: each thread owns a contiguous segment; scans give its ties and output offsets.
  const int64_t seg = (n + kTopkThreads - 1) / kTopkThreads;
  const int64_t s0 = min64(n, threadIdx.x * seg), s1 = min64(n, s0 + seg);
  int above = 0, equal = 0;
  for (int64_t i = s0; i < s1; ++i) {
    const uint32_t key = src.key(row, i);
    if (valid > k) {
      above += key > threshold;
      equal += key == threshold;
    } else {
      above += key != 0;
    }
  }
  int equal_before;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(equal, equal_before);
  __syncthreads();
  const int my_equal = max(0, min(equal, take_equal - equal_before));
  int offset, total;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(above + my_equal, offset, total);
  __syncthreads();
  int taken_equal = 0;
  for (int64_t i = s0; i < s1; ++i) {
    const uint32_t key = src.key(row, i);
    bool take;
    if (valid > k) {
      take = key > threshold || (key == threshold && taken_equal < my_equal);
      taken_equal += take && key == threshold;
    } else {
      take = key != 0;
    }
    if (!take) continue;
    const int64_t pos = src.position(row, i);
    if (sorted)
      sh.stage[offset] = (static_cast<uint64_t>(~key) << 32) | static_cast<uint32_t>(pos);
    else
      sink.write(row, offset, pos, key);
    ++offset;
  }
  if (sorted) {
    __syncthreads();
    int size = 1;
    while (size < total) size <<= 1;
    for (int i = total + threadIdx.x; i < size; i += kTopkThreads) sh.stage[i] = ~0ull;
    __syncthreads();
    for (int span = 2; span <= size; span <<= 1)
      for (int stride = span >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < size; i += kTopkThreads) {
          const int j = i ^ stride;
          if (j > i) {
            const bool ascending = (i & span) == 0;
            const uint64_t x = sh.stage[i], y = sh.stage[j];
            if ((x > y) == ascending) sh.stage[i] = y, sh.stage[j] = x;
          }
        }
        __syncthreads();
      }
    for (int i = threadIdx.x; i < total; i += kTopkThreads) {
      const uint64_t v = sh.stage[i];
      sink.write(row, i, static_cast<int64_t>(static_cast<uint32_t>(v)), ~static_cast<uint32_t>(v >> 32));
    }
  }
  __syncthreads();
  sink.finish(row, total, valid > k ? threshold : 0u);  // the k-th key when the row had more than k candidates
}

// ---- Sources ----

// A dense row of scores: position = index (standalone top-k, block scores).
struct RowScores {
  const float* scores;
  int64_t len;
  __device__ int64_t count(int) const { return len; }
  __device__ uint32_t key(int row, int64_t i) const { return order_key(scores[static_cast<int64_t>(row) * len + i]); }
  __device__ int64_t position(int, int64_t i) const { return i; }
};

// The running top-k of a row (its last winners, ascending positions) followed by a chunk of new scores.
struct MergeChunk {
  const uint32_t* prev_key;  // [rows][k]
  const int32_t* prev_pos;
  const int32_t* prev_count;
  const uint32_t* prev_kth;  // chunk entries at or below it cannot enter (later positions lose ties)
  const float* chunk;  // [rows][ld]
  int k;
  int64_t ld, chunk_len, chunk_begin;
  __device__ int64_t count(int row) const { return prev_count[row] + chunk_len; }
  __device__ uint32_t key(int row, int64_t i) const {
    const int pc = prev_count[row];
    if (i < pc) return prev_key[static_cast<int64_t>(row) * k + i];
    const uint32_t key = order_key(chunk[static_cast<int64_t>(row) * ld + (i - pc)]);
    return key > prev_kth[row] ? key : 0u;
  }
  __device__ int64_t position(int row, int64_t i) const {
    const int pc = prev_count[row];
    return i < pc ? prev_pos[static_cast<int64_t>(row) * k + i] : chunk_begin + (i - pc);
  }
};

// Segment `blockIdx.x % segments` of row `blockIdx.x / segments` of another source (phase 1 of long rows).
template <class Src>
struct Segments {
  Src src;
  int segments;
  int64_t length;
  __device__ int64_t count(int vrow) const {
    const int64_t n = src.count(vrow / segments) - (vrow % segments) * length;
    return n < 0 ? 0 : (n < length ? n : length);
  }
  __device__ uint32_t key(int vrow, int64_t i) const {
    return src.key(vrow / segments, (vrow % segments) * length + i);
  }
  __device__ int64_t position(int vrow, int64_t i) const {
    return src.position(vrow / segments, (vrow % segments) * length + i);
  }
};

// The phase-1 winners of every segment of a row, slot by slot (empty slots are key 0): phase 2's source.
struct SegmentWinners {
  const uint32_t* keys;  // [rows * segments][k]
  const int32_t* pos;
  const int32_t* counts;
  int segments, k;
  __device__ int64_t count(int) const { return static_cast<int64_t>(segments) * k; }
  __device__ uint32_t key(int row, int64_t i) const {
    const int64_t seg = static_cast<int64_t>(row) * segments + i / k;
    return i % k < counts[seg] ? keys[seg * k + i % k] : 0u;
  }
  __device__ int64_t position(int row, int64_t i) const {
    const int64_t seg = static_cast<int64_t>(row) * segments + i / k;
    return pos[seg * k + i % k];
  }
};

// ---- Sinks ----

// The running state of a merge (keys, positions, count per row).
struct MergeState {
  uint32_t* key;
  int32_t* pos;
  int32_t* count;
  int k;
  __device__ void write(int row, int i, int64_t p, uint32_t kk) const {
    key[static_cast<int64_t>(row) * k + i] = kk;
    pos[static_cast<int64_t>(row) * k + i] = static_cast<int32_t>(p);
  }
  uint32_t* kth;  // per row: key a new element must beat to enter (0: the row is not full)
  __device__ void finish(int row, int total, uint32_t kth_key) const {
    if (threadIdx.x == 0) count[row] = total, kth[row] = kth_key;
  }
};

// Final indices: out[row][i] = position - base[row] (base may be null), -1 padded to k.
struct IndexOut {
  int32_t* out;
  const int32_t* base;
  int k;
  __device__ void write(int row, int i, int64_t p, uint32_t) const {
    out[static_cast<int64_t>(row) * k + i] = static_cast<int32_t>(p - (base ? base[row] : 0));
  }
  __device__ void finish(int row, int total, uint32_t) const {
    for (int i = total + threadIdx.x; i < k; i += kTopkThreads) out[static_cast<int64_t>(row) * k + i] = -1;
  }
};

// Rows longer than this are split into segments whose winners a second pass merges: a single CTA per long row
// would leave most of the GPU idle.

// Top-k of `rows` rows of `src` (each at most max_len long) into `sink`.
template <class Src, class Sink>
void launch_topk(const Src& src, const Sink& sink, int rows, int64_t max_len, int k, bool sorted, cudaStream_t stream,
                 Scratch& scratch) {
  if (rows == 0) return;
  const TopkTuning& tune = topk_tuning();
  const int64_t segment = tune.segment;
  if (segment <= 0 || max_len <= 2 * segment) {
    topk_kernel<<<rows, kTopkThreads, 0, stream>>>(src, sink, k, sorted);
    HILO_CUDA_LAUNCHED("topk_kernel");
    return;
  }
  const int segments = ceil_div(max_len, segment);
  const int64_t vrows = static_cast<int64_t>(rows) * segments;
  uint32_t* key = scratch.alloc<uint32_t>(vrows * k);
  int32_t* pos = scratch.alloc<int32_t>(vrows * k);
  int32_t* count = scratch.alloc<int32_t>(vrows);
  uint32_t* kth = scratch.alloc<uint32_t>(vrows);
  topk_kernel<<<static_cast<unsigned>(vrows), kTopkThreads, 0, stream>>>(
      Segments<Src>{src, segments, segment}, MergeState{key, pos, count, k, kth}, k, false);
  HILO_CUDA_LAUNCHED("topk_kernel (segments)");
  topk_kernel<<<rows, kTopkThreads, 0, stream>>>(SegmentWinners{key, pos, count, segments, k}, sink, k, sorted);
  HILO_CUDA_LAUNCHED("topk_kernel (merge)");
}

}  // namespace hilo::hisa::cuda_detail
