// The HISA pipeline on the GPU, shared by prefill and decode (they differ in where keys and pooled keys live).
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "hilo/hisa.hpp"
#include "hisa_kernels.cuh"
#include "score_wgmma.cuh"
#include "runtime.cuh"
#include "topk_launch.cuh"

namespace hilo::hisa::cuda_detail {

template <class F>
void with_heads(int64_t H, F&& f) {
  switch (H) {
    case 16: f(std::integral_constant<int, 16>{}); break;
    case 32: f(std::integral_constant<int, 32>{}); break;
    case 48: f(std::integral_constant<int, 48>{}); break;
    default: f(std::integral_constant<int, 64>{}); break;
  }
}

// Stage timings for HisaStats (events; only when asked, since reading them waits for the stream).
struct StageClock {
  bool on;
  cudaStream_t stream;
  std::vector<cudaEvent_t> events;
  StageClock(bool enabled, cudaStream_t s) : on(enabled), stream(s) {}
  ~StageClock() {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }
  void mark() {
    if (!on) return;
    cudaEvent_t e;
    HILO_CUDA_CHECK(cudaEventCreate(&e));
    HILO_CUDA_CHECK(cudaEventRecord(e, stream));
    events.push_back(e);
  }
  double ms(std::size_t a, std::size_t b) {
    float t = 0;
    HILO_CUDA_CHECK(cudaEventSynchronize(events[b]));
    HILO_CUDA_CHECK(cudaEventElapsedTime(&t, events[a], events[b]));
    return t;
  }
  // Marks: start, after pooling, then (after stage 1, after stage 2) per row block.
  void fill(HisaStats& stats) {
    stats.pool_ms = ms(0, 1);
    stats.block_ms = stats.token_ms = 0;
    for (std::size_t i = 2; i + 1 < events.size(); i += 2) {
      stats.block_ms += ms(i - 1, i);
      stats.token_ms += ms(i, i + 1);
    }
  }
};


// HISA on rows [0, rows) that see keys [lo[r], hi[r]) of their source. Shared by prefill and decode.
// Scratch of the HISA pipeline for up to `rows` rows, allocated once per call and reused by every row block, so the
// call's extra memory is bounded by the block size, not the number of queries.
struct HisaBuffers {
  int rows, cap, tiles;
  int64_t pooled_max;
  bool block_plan_ready = false;  // block_lo/hi already written (decode_rows_kernel does it for decode)
  int32_t *block_lo, *block_hi, *kept, *kept_count, *union_blocks, *union_slots, *union_count;
  uint32_t* union_mask;
  float *block_scores, *cand;

  HisaBuffers(int rows_, int tile_rows, int64_t pooled_max_, const HisaArgs& opt, Scratch& scratch)
      : rows(rows_), cap(std::max(opt.blocks_kept, (opt.topk + opt.block - 1) / opt.block + 1)),
        tiles(ceil_div(rows_, tile_rows)), pooled_max(std::max<int64_t>(pooled_max_, 1)) {
    block_lo = scratch.alloc<int32_t>(rows);
    block_hi = scratch.alloc<int32_t>(rows);
    kept = scratch.alloc<int32_t>(static_cast<int64_t>(rows) * cap);
    kept_count = scratch.alloc<int32_t>(rows);
    union_blocks = scratch.alloc<int32_t>(static_cast<int64_t>(tiles) * tile_rows * cap);
    union_mask = scratch.alloc<uint32_t>(static_cast<int64_t>(tiles) * tile_rows * cap);
    union_slots = scratch.alloc<int32_t>(static_cast<int64_t>(tiles) * tile_rows * cap * tile_rows);
    union_count = scratch.alloc<int32_t>(tiles);
    block_scores = scratch.alloc<float>(static_cast<int64_t>(rows) * pooled_max);
    cand = scratch.alloc<float>(static_cast<int64_t>(rows) * cap * opt.block);
  }
};

template <int H, class PooledKeys, class TokenKeys, class Sink>
void run_hisa(const uint8_t* q, const float* w, const int32_t* lo, const int32_t* hi, int rows, int tile_rows,
              bool per_tile_source, const PooledKeys& pooled, int64_t pooled_max, const TokenKeys& keys,
              const HisaArgs& opt, cudaStream_t stream, const HisaBuffers& buf, const Sink& sink, StageClock& clock) {
  const int m = opt.blocks_kept, B = opt.block, mid_k = m - 2;
  const int cap = buf.cap;
  int32_t* block_lo = buf.block_lo;
  int32_t* block_hi = buf.block_hi;
  int32_t* kept = buf.kept;
  int32_t* kept_count = buf.kept_count;
  const int tiles = ceil_div(rows, tile_rows);
  float* block_scores = buf.block_scores;
  float* cand = buf.cand;
  const int64_t ld = buf.pooled_max;  // block_scores' row stride (at least 1)

  // Stage 1: scores of the middle eligible blocks, best m - 2 per row, written into the kept lists by the top-k.
  if (!buf.block_plan_ready) {
    block_plan_kernel<<<ceil_div(rows, 256), 256, 0, stream>>>(lo, hi, rows, BlockPlan{block_lo, block_hi, B, m,
                                                                                       opt.topk});
    HILO_CUDA_LAUNCHED("block_plan_kernel");
  }
  if (pooled_max > 0) {
    const ScoreParams p{q, w, block_lo, block_hi, 0, rows, tile_rows, 0, 0, pooled_max};
    launch_score_keys<H>(p, pooled, ChunkOut{block_scores, 0, 0, pooled_max}, stream);
  }
  if (mid_k > 0) {
    launch_topk_rows_any(BlockRange{block_scores, ld, block_lo, block_hi},
                         KeptBlocks{lo, hi, block_lo, B, cap, kept, kept_count}, rows, ld, mid_k, false, stream);
  } else {
    kept_blocks_kernel<<<ceil_div(rows, kKeptWarps), 32 * kKeptWarps, 0, stream>>>(lo, hi, block_lo, rows, B, cap,
                                                                                    kept, kept_count);
    HILO_CUDA_LAUNCHED("kept_blocks_kernel");
  }
  clock.mark();

  // Stage 2: the tokens of the kept blocks, shared by the rows of a tile, then the exact top-k.
  const bool decode_kernel = decode_token_kernel_applies<H, TokenKeys>(per_tile_source, tile_rows, B);
  // One row per tile on the decode kernel: the union is the row's kept list, which that kernel reads as it is.
  const bool lone_rows = decode_kernel && tile_rows == 1;
  if (!lone_rows) {
    const auto union_kernel = flat_tuning().pair_union ? tile_union_pairs_kernel : tile_union_kernel;
    union_kernel<<<tiles, kUnionThreads, 0, stream>>>(kept, kept_count, rows, tile_rows, cap, buf.union_blocks,
                                                      buf.union_mask, buf.union_slots, buf.union_count);
    HILO_CUDA_LAUNCHED("tile_union_kernel");
  }
  launch_token_scores<H>(q, w, lo, hi, rows, tile_rows, per_tile_source, keys, B, kept, kept_count, cap,
                         lone_rows ? kept : buf.union_blocks, lone_rows ? nullptr : buf.union_mask,
                         lone_rows ? nullptr : buf.union_slots, lone_rows ? kept_count : buf.union_count, cand,
                         stream);
  launch_topk_rows_any(TokenCandidates{cand, kept, kept_count, lo, hi, cap, B}, sink, rows, int64_t{cap} * B, opt.topk,
                       opt.sorted, stream);
  clock.mark();
}


}  // namespace hilo::hisa::cuda_detail
