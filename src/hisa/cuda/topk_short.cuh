// Exact top-k of short rows (at most 8192 elements; HISA's block scores and token candidates, flat decode of short
// contexts): one CTA per row holds the whole row in registers (16 consecutive elements per thread), so the row is
// read once and every later pass is register work plus a 256-bin shared histogram:
//  1. radix select, 8 bits per pass from the top, finds the prefix of the k-th largest key and how many elements
//     with that prefix still have to be taken (a pass stops early when the whole bin is taken);
//  2. one block scan of (sure winners, prefix-equal elements) per thread gives every winner its output slot in
//     ascending element order; equal keys go to the earlier elements, as in every GPU and CPU top-k here.
// The general kernel (topk_select.cuh) spends ~10 us per launch on fixed work (a 4096-bin histogram, collects into
// shared lists, a merge) that rows this short do not need. Same source/sink contract; `sorted` output is left to it
// (topk_launch.cuh chooses).
#pragma once

#include <cub/block/block_scan.cuh>

#include "topk_select.cuh"

namespace hilo::hisa::cuda_detail {

constexpr int kShortTopkPer = 16;
constexpr int64_t kShortTopkLen = int64_t{kTopkThreads} * kShortTopkPer;

// Keys of elements [begin, begin + kShortTopkPer) of a row of n (0 past its end): four 16-byte loads where the
// source and the row allow them (vector_row), else one load per element.
template <class Src, int Per>
__device__ __forceinline__ void load_short_keys(const Src& src, int row, int64_t begin, int64_t n, bool vector,
                                                uint32_t (&key)[Per]) {
  static_assert(Per % 4 == 0, "whole float4s per thread");
  if constexpr (ContiguousRows<Src>) {
    const float4* vec = vector_row(src, row, vector);
    if (vec && begin + Per <= n) {  // begin is a multiple of Per elements
#pragma unroll
      for (int j = 0; j < Per; j += 4) keys_of_vector(src, row, begin + j, vec[(begin + j) / 4], key + j);
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < Per; ++j) key[j] = begin + j < n ? src.key(row, begin + j) : 0u;  // 0: no candidate
}

// After the radix passes: the thread's sure winners ((key & mask) > prefix) and prefix-equal elements, packed as
// (sure << 16 | equal) for one exclusive scan over the row (both counts stay below 2^16).
template <int Per>
__device__ __forceinline__ int pack_winner_counts(const uint32_t (&key)[Per], uint32_t mask, uint32_t prefix) {
  int sure = 0, equal = 0;
#pragma unroll
  for (int j = 0; j < Per; ++j) {
    sure += key[j] != 0u && (key[j] & mask) > prefix;
    equal += key[j] != 0u && (key[j] & mask) == prefix;
  }
  return (sure << 16) | equal;
}

// Writes the thread's winners (elements begin + j), given `before`, the packed counts of the earlier elements (the
// exclusive scan of pack_winner_counts): a sure winner's slot is the sure winners before it plus the prefix-equal
// winners before it (at most `remaining`); a prefix-equal element wins while fewer than `remaining` came before it.
// Returns the smallest key written (0xFFFFFFFF: none).
template <int Per, class Src, class Sink>
__device__ __forceinline__ uint32_t write_thread_winners(const uint32_t (&key)[Per], uint32_t mask, uint32_t prefix,
                                                         int remaining, int before, const Src& src, const Sink& sink,
                                                         int row, int64_t begin) {
  int s = before >> 16, e = before & 0xFFFF;
  uint32_t smallest = 0xFFFFFFFFu;
#pragma unroll
  for (int j = 0; j < Per; ++j) {
    if (key[j] == 0u) continue;
    const uint32_t high = key[j] & mask;
    int slot = -1;
    if (high > prefix) {
      slot = s + min(e, remaining);
      ++s;
    } else if (high == prefix) {
      if (e < remaining) slot = s + e;
      ++e;
    }
    if (slot >= 0) {
      sink.write(row, slot, src.position(row, begin + j), key[j]);
      smallest = min(smallest, key[j]);
    }
  }
  return smallest;
}

// Three CTAs per SM (40 registers; 58 without the bound, two CTAs): 2048 x 8192 rows 103 -> 94 us on an H100,
// HISA's token top-k 150 -> 136 us under ncu. Four (32 registers) measured the same as three.
template <class Src, class Sink>
__global__ void __launch_bounds__(kTopkThreads, 3) topk_short_kernel(Src rows_src, Sink sink, int k, bool vector) {
  early_launch_prologue();
  __shared__ uint32_t hist[256];
  __shared__ typename cub::BlockScan<int, kTopkThreads>::TempStorage scan;
  __shared__ uint32_t s_prefix, s_min;
  __shared__ int s_remaining, s_bin_count, s_nonzero;
  const uint32_t hist_base = shared_address(hist);
  const int row = blockIdx.x, lane = threadIdx.x % 32;
  const auto src = bind_row(rows_src, row);
  const int64_t n = min64(src.count(row), kShortTopkLen);  // the launcher guarantees count <= kShortTopkLen
  const int64_t begin = static_cast<int64_t>(threadIdx.x) * kShortTopkPer;
  uint32_t key[kShortTopkPer];
  load_short_keys(src, row, begin, n, vector, key);
  int nonzero = 0;
#pragma unroll
  for (int j = 0; j < kShortTopkPer; ++j) nonzero += key[j] != 0u;
  if (threadIdx.x == 0) s_nonzero = 0, s_min = 0xFFFFFFFFu;
  __syncthreads();
  for (int o = 16; o > 0; o /= 2) nonzero += __shfl_xor_sync(0xFFFFFFFFu, nonzero, o);
  if (lane == 0) atomicAdd(&s_nonzero, nonzero);
  __syncthreads();
  const int total_nonzero = s_nonzero;
  // Winners: (key & mask) > prefix (sure), and the first `remaining` with (key & mask) == prefix.
  uint32_t prefix = 0, mask = 0xFFFFFFFFu;
  int remaining = 0;  // every nonzero key wins when there are at most k
  if (total_nonzero > k) {
    mask = 0;
    remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
      if (threadIdx.x < 256) hist[threadIdx.x] = 0;
      __syncthreads();
#pragma unroll
      for (int j = 0; j < kShortTopkPer; ++j)
        count_if(key[j] != 0u && (key[j] & mask) == prefix, hist_base + (((key[j] >> shift) & 255u) << 2));
      __syncthreads();
      if (threadIdx.x < 32) {  // the bin holding the remaining-th largest, scanning bins from the top
        int counts[8], sum = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) counts[i] = static_cast<int>(hist[255 - (8 * lane + i)]), sum += counts[i];
        int inclusive = sum;
        for (int o = 1; o < 32; o *= 2) {
          const int up = __shfl_up_sync(0xFFFFFFFFu, inclusive, o);
          if (lane >= o) inclusive += up;
        }
        int before = inclusive - sum;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (before < remaining && before + counts[i] >= remaining) {
            const uint32_t bin = 255u - static_cast<uint32_t>(8 * lane + i);
            s_prefix = prefix | (bin << shift);
            s_remaining = remaining - before;
            s_bin_count = counts[i];
          }
          before += counts[i];
        }
      }
      __syncthreads();
      prefix = s_prefix;
      mask |= 0xFFu << shift;
      remaining = s_remaining;
      if (s_bin_count == remaining) break;  // the whole bin wins: no need to tell its elements apart
    }
  }
  int before;  // packed counts of the earlier threads (both <= 8192)
  cub::BlockScan<int, kTopkThreads>(scan).ExclusiveSum(pack_winner_counts(key, mask, prefix), before);
  uint32_t smallest = write_thread_winners(key, mask, prefix, remaining, before, src, sink, row, begin);
  for (int o = 16; o > 0; o /= 2) smallest = min(smallest, __shfl_xor_sync(0xFFFFFFFFu, smallest, o));
  if (lane == 0) atomicMin(&s_min, smallest);
  __syncthreads();
  // kth: the k-th key when the row had more than k candidates, else 0 (the sinks' contract).
  sink.finish(row, min(total_nonzero, k), total_nonzero > k ? s_min : 0u);
}

}  // namespace hilo::hisa::cuda_detail
