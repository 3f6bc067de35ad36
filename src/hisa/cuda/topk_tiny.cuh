// Exact top-k of tiny rows (at most 1024 elements: HISA's block scores, one per 128 keys of the context): one warp
// per row, Per consecutive elements per lane in registers, 8 rows per CTA. The same selection as topk_short.cuh
// (radix select 8 bits per pass from the top, then one scan of (sure winners, prefix-equal elements) for the output
// slots in ascending element order, equal keys to the earlier elements), with warp shuffles and a per-warp 256-bin
// histogram instead of CTA barriers: a 512-thread CTA per row of 512 elements left 15 of its 16 warps idle
// through four barrier-bound passes (HISA's block top-k was 1.78 of 21.5 ms at causal 64K, H100).
// The sink finishes its row with one warp: finish_in_warp(row, total, kth, lane), after a __syncwarp.
#pragma once

#include "topk_short.cuh"

namespace hilo::hisa::cuda_detail {

constexpr int kTinyWarps = 8;
constexpr int64_t kTinyTopkLen = 32 * 32;  // 32 lanes x 32 elements

template <class Sink>
concept WarpFinishingSink = requires(const Sink& sink, int row, int total, uint32_t kth, int lane) {
  sink.finish_in_warp(row, total, kth, lane);
};

// Exclusive prefix sum over the warp's lanes.
__device__ __forceinline__ int warp_exclusive_sum(int v, int lane) {
  int inclusive = v;
  for (int o = 1; o < 32; o *= 2) {
    const int up = __shfl_up_sync(0xFFFFFFFFu, inclusive, o);
    if (lane >= o) inclusive += up;
  }
  return inclusive - v;
}

template <int Per, class Src, class Sink>
__global__ void __launch_bounds__(kTinyWarps * 32) topk_tiny_kernel(Src rows_src, Sink sink, int rows, int k,
                                                                    bool vector) {
  early_launch_prologue();
  __shared__ uint32_t hist_all[kTinyWarps][256];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row = blockIdx.x * kTinyWarps + warp;
  if (row >= rows) return;  // whole warps; nothing below waits for the CTA
  uint32_t* hist = hist_all[warp];
  const uint32_t hist_base = shared_address(hist);
  const auto src = bind_row(rows_src, row);
  const int64_t n = min64(src.count(row), 32 * Per);  // the launcher guarantees count <= 32 * Per
  const int64_t begin = static_cast<int64_t>(lane) * Per;
  uint32_t key[Per];
  load_short_keys(src, row, begin, n, vector, key);
  int nonzero = 0;
#pragma unroll
  for (int j = 0; j < Per; ++j) nonzero += key[j] != 0u;
  const int total_nonzero = __reduce_add_sync(0xFFFFFFFFu, nonzero);
  // Winners: (key & mask) > prefix (sure), and the first `remaining` with (key & mask) == prefix.
  uint32_t prefix = 0, mask = 0xFFFFFFFFu;
  int remaining = 0;  // every nonzero key wins when there are at most k
  if (total_nonzero > k) {
    mask = 0;
    remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
#pragma unroll
      for (int i = 0; i < 8; ++i) hist[8 * lane + i] = 0;
      __syncwarp();
#pragma unroll
      for (int j = 0; j < Per; ++j)
        count_if(key[j] != 0u && (key[j] & mask) == prefix, hist_base + (((key[j] >> shift) & 255u) << 2));
      __syncwarp();
      // The bin holding the remaining-th largest, scanning bins from the top: lane l holds bins 255 - 8l - i.
      int counts[8], sum = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) counts[i] = static_cast<int>(hist[255 - (8 * lane + i)]), sum += counts[i];
      int before = warp_exclusive_sum(sum, lane), found = -1;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if (found < 0 && before < remaining && before + counts[i] >= remaining) found = i;
        if (found < 0) before += counts[i];
      }
      const int owner = __ffs(__ballot_sync(0xFFFFFFFFu, found >= 0)) - 1;  // exactly one lane finds it
      int bin_count = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) bin_count = i == found ? counts[i] : bin_count;
      const uint32_t bin = 255u - static_cast<uint32_t>(8 * lane + found);
      prefix |= __shfl_sync(0xFFFFFFFFu, bin, owner) << shift;
      remaining -= __shfl_sync(0xFFFFFFFFu, before, owner);
      bin_count = __shfl_sync(0xFFFFFFFFu, bin_count, owner);
      mask |= 0xFFu << shift;
      __syncwarp();  // every lane read the histogram before the next pass clears it
      if (bin_count == remaining) break;  // the whole bin wins: no need to tell its elements apart
    }
  }
  const int before = warp_exclusive_sum(pack_winner_counts(key, mask, prefix), lane);  // both counts <= 1024
  const uint32_t smallest = __reduce_min_sync(
      0xFFFFFFFFu, write_thread_winners(key, mask, prefix, remaining, before, src, sink, row, begin));
  __syncwarp();
  // kth: the k-th key when the row had more than k candidates, else 0 (the sinks' contract).
  sink.finish_in_warp(row, min(total_nonzero, k), total_nonzero > k ? smallest : 0u, lane);
}

// The tiny-row kernel for rows of at most kTinyTopkLen, 16 or 32 elements per lane.
template <class Src, class Sink>
void launch_topk_tiny(const Src& src, const Sink& sink, int rows, int64_t max_len, int k, cudaStream_t stream) {
  const dim3 grid(ceil_div(rows, kTinyWarps)), block(kTinyWarps * 32);
  if (max_len <= 32 * 16)
    launch_early(topk_tiny_kernel<16, Src, Sink>, grid, block, 0, stream, src, sink, rows, k,
                 topk_tuning().vector_loads);
  else
    launch_early(topk_tiny_kernel<32, Src, Sink>, grid, block, 0, stream, src, sink, rows, k,
                 topk_tuning().vector_loads);
}

}  // namespace hilo::hisa::cuda_detail
