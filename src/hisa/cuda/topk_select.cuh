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
  sink.finish(row, total);
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
  const float* chunk;  // [rows][ld]
  int k;
  int64_t ld, chunk_len, chunk_begin;
  __device__ int64_t count(int row) const { return prev_count[row] + chunk_len; }
  __device__ uint32_t key(int row, int64_t i) const {
    const int pc = prev_count[row];
    return i < pc ? prev_key[static_cast<int64_t>(row) * k + i] : order_key(chunk[static_cast<int64_t>(row) * ld + (i - pc)]);
  }
  __device__ int64_t position(int row, int64_t i) const {
    const int pc = prev_count[row];
    return i < pc ? prev_pos[static_cast<int64_t>(row) * k + i] : chunk_begin + (i - pc);
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
  __device__ void finish(int row, int total) const {
    if (threadIdx.x == 0) count[row] = total;
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
  __device__ void finish(int row, int total) const {
    for (int i = total + threadIdx.x; i < k; i += kTopkThreads) out[static_cast<int64_t>(row) * k + i] = -1;
  }
};

}  // namespace hilo::hisa::cuda_detail
