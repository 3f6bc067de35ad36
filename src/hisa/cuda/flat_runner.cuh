// The flat indexer on the GPU, shared by prefill (one dense K) and decode (one paged source per request): rows are
// processed in blocks; for each block the keys are scored chunk by chunk into a chunk buffer that stays in L2, and
// a running top-k per row is merged with each chunk. Memory: rows_block * chunk scores plus rows * k winners; the
// [S, N] logits never exist.
#pragma once

#include <algorithm>

#include "runtime.cuh"
#include "score_wgmma.cuh"
#include "topk_launch.cuh"

namespace hilo::hisa::cuda_detail {


struct FlatJob {
  const uint8_t* q;
  const float* w;
  const int32_t* row_lo;  // [rows] first visible key of each row
  const int32_t* row_hi;  // [rows] one past the last
  int rows;
  int group_rows;    // rows per CTA group; in decode, one group per request (group g uses source g)
  bool per_group_source;
  int64_t key_max;   // no row sees a key at or past this
  bool from_zero;    // every row sees keys [0, row_hi) (decode): one pass needs no NaN fill of the score buffer
  int k;
  bool sorted;
  cudaStream_t stream;
};

// make_sink(first_row) returns the top-k sink for rows [first_row, ...) indexed from 0.
template <int H, class Keys, class MakeSink>
void run_flat(const FlatJob& job, const Keys& keys, Scratch& scratch, MakeSink make_sink) {
  // Few rows (decode): score every key at once and select once. Otherwise row blocks and key chunks, merged.
  const FlatTuning& tune = flat_tuning();
  const bool single = static_cast<int64_t>(job.rows) * std::max<int64_t>(job.key_max, 1) * 4 <= tune.single_pass_bytes;
  const int64_t chunk = single ? std::max<int64_t>(job.key_max, 1) : std::min<int64_t>(tune.chunk_keys, job.key_max);
  // A row of the score buffer: `pre` slots for the running winners (merged chunks only), then the chunk's scores;
  // both multiples of 4 floats, so that every row starts on 16 bytes (the top-k's vector loads).
  const int pre = single ? 0 : (job.k + 3) / 4 * 4;
  const int64_t ld = pre + (chunk + 3) / 4 * 4;
  // The budget counts the chunk's scores only (the prefix comes on top: 64 + 4 MiB at the defaults), so that the row
  // block stays a power of two: 512 rows = 32 groups of 16 x 16 scoring CTAs of 2048 keys per 32K chunk, 512 CTAs
  // (3.9 waves on 132 SMs). With the prefix counted it had been 896 rows at 16K chunks: 448 CTAs, 3.4 waves that
  // take 4.
  int block_rows = single ? job.rows : static_cast<int>(std::max<int64_t>(1, tune.chunk_budget_bytes / (chunk * 4)));
  block_rows = std::max(job.group_rows, block_rows / job.group_rows * job.group_rows);
  block_rows = std::min(block_rows, job.rows);
  float* scores = scratch.alloc<float>(static_cast<int64_t>(block_rows) * ld);
  int32_t* pos = single ? nullptr : scratch.alloc<int32_t>(static_cast<int64_t>(block_rows) * job.k);
  int32_t* count = single ? nullptr : scratch.alloc<int32_t>(block_rows);
  uint32_t* kth = single ? nullptr : scratch.alloc<uint32_t>(block_rows);
  // One pass over rows that see [0, hi): the top-k reads each row's prefix [0, hi) alone.
  const bool prefix_rows = single && job.from_zero;

  for (int rb = 0; rb < job.rows; rb += block_rows) {
    const int rows_b = std::min(block_rows, job.rows - rb);
    if (!single) {  // no winners yet
      HILO_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(int32_t) * rows_b, job.stream));
      HILO_CUDA_CHECK(cudaMemsetAsync(kth, 0, sizeof(uint32_t) * rows_b, job.stream));
    }
    for (int64_t c0 = 0; c0 < std::max<int64_t>(job.key_max, 1); c0 += chunk) {
      const int64_t len = std::min(chunk, std::max<int64_t>(job.key_max - c0, 0));
      const bool last = c0 + chunk >= job.key_max;
      if (len > 0) {  // writes the visible keys of each row; the merge reads nothing else, so no fill is needed
        ScoreParams p{job.q, job.w, job.row_lo, job.row_hi, rb, rb + rows_b, job.group_rows,
                      job.per_group_source ? rb / job.group_rows : 0, c0, c0 + len};
        launch_score_keys<H>(p, keys, ChunkOut{scores + pre, rb, c0, ld}, job.stream);
      }
      if (prefix_rows) {
        launch_topk(RowPrefix{scores, ld, job.row_hi + rb}, make_sink(rb), rows_b, chunk, job.k, job.sorted,
                    job.stream, scratch);
        break;
      }
      const MergeRows src{scores, pos, count, kth, job.row_lo + rb, job.row_hi + rb, job.k, pre, ld, len, c0};
      if (single) {
        launch_topk(src, make_sink(rb), rows_b, ld, job.k, job.sorted, job.stream, scratch);
        break;
      }
      if (last) {
        launch_topk_rows(src, make_sink(rb), rows_b, job.k, job.sorted, job.stream);
        break;
      }
      launch_topk_rows(src, MergePrefix{scores, pos, count, kth, ld, job.k}, rows_b, job.k, false, job.stream);
    }
  }
}

}  // namespace hilo::hisa::cuda_detail
