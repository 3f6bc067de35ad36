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
  int block_rows = single ? job.rows : static_cast<int>(std::max<int64_t>(1, tune.chunk_budget_bytes / (chunk * 4)));
  block_rows = std::max(job.group_rows, block_rows / job.group_rows * job.group_rows);
  block_rows = std::min(block_rows, job.rows);
  float* scores = scratch.alloc<float>(static_cast<int64_t>(block_rows) * chunk);
  uint32_t* key_a = scratch.alloc<uint32_t>(static_cast<int64_t>(block_rows) * job.k);
  uint32_t* key_b = scratch.alloc<uint32_t>(static_cast<int64_t>(block_rows) * job.k);
  int32_t* pos_a = scratch.alloc<int32_t>(static_cast<int64_t>(block_rows) * job.k);
  int32_t* pos_b = scratch.alloc<int32_t>(static_cast<int64_t>(block_rows) * job.k);
  int32_t* cnt_a = scratch.alloc<int32_t>(block_rows);
  int32_t* cnt_b = scratch.alloc<int32_t>(block_rows);
  uint32_t* kth_a = scratch.alloc<uint32_t>(block_rows);
  uint32_t* kth_b = scratch.alloc<uint32_t>(block_rows);
  // One pass over rows that see [0, hi): the top-k reads each row's prefix, so the buffer needs no NaN fill.
  const bool prefix_rows = single && job.from_zero;

  for (int rb = 0; rb < job.rows; rb += block_rows) {
    const int rows_b = std::min(block_rows, job.rows - rb);
    HILO_CUDA_CHECK(cudaMemsetAsync(cnt_a, 0, sizeof(int32_t) * rows_b, job.stream));
    HILO_CUDA_CHECK(cudaMemsetAsync(kth_a, 0, sizeof(uint32_t) * rows_b, job.stream));
    for (int64_t c0 = 0; c0 < std::max<int64_t>(job.key_max, 1); c0 += chunk) {
      const int64_t len = std::min(chunk, std::max<int64_t>(job.key_max - c0, 0));
      const bool last = c0 + chunk >= job.key_max;
      if (!prefix_rows)  // NaN: no candidate, for keys a row does not see
        HILO_CUDA_CHECK(cudaMemsetAsync(scores, 0xFF, sizeof(float) * rows_b * chunk, job.stream));
      if (len > 0) {
        ScoreParams p{job.q, job.w, job.row_lo, job.row_hi, rb, rb + rows_b, job.group_rows,
                      job.per_group_source ? rb / job.group_rows : 0, c0, c0 + len};
        launch_score_keys<H>(p, keys, ChunkOut{scores, rb, c0, chunk}, job.stream);
      }
      if (prefix_rows) {
        launch_topk(RowPrefix{scores, chunk, job.row_hi + rb}, make_sink(rb), rows_b, chunk, job.k, job.sorted,
                    job.stream, scratch);
        break;
      }
      if (single) {
        launch_topk(RowScores{scores, chunk}, make_sink(rb), rows_b, chunk, job.k, job.sorted, job.stream, scratch);
        break;
      }
      const MergeChunk src{key_a, pos_a, cnt_a, kth_a, scores, job.k, chunk, len, c0};
      if (last) {
        launch_topk_rows(src, make_sink(rb), rows_b, job.k, job.sorted, job.stream);
      } else {
        launch_topk_rows(src, MergeState{key_b, pos_b, cnt_b, job.k, kth_b}, rows_b, job.k, false, job.stream);
        std::swap(key_a, key_b), std::swap(pos_a, pos_b), std::swap(cnt_a, cnt_b), std::swap(kth_a, kth_b);
      }
      if (last) break;
    }
  }
}

}  // namespace hilo::hisa::cuda_detail
