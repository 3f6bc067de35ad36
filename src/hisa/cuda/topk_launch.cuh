// Top-k launchers: which kernel and split a set of rows gets (the short-row kernel, one CTA or a cluster per row,
// or segments and a merge).
#pragma once

#include <algorithm>

#include "runtime.cuh"
#include "topk_rows.cuh"
#include "topk_select.cuh"
#include "topk_short.cuh"
#include "topk_tiny.cuh"

namespace hilo::hisa::cuda_detail {

// How the general kernel takes a set of rows: long rows in segments whose winners a second launch merges, or a
// cluster of CTAs per row (a single CTA per long row would leave most of the GPU idle).
struct TopkSplit {
  int64_t segment;  // > 0: rows split into segments of this length, winners merged in a second launch
  int cluster;      // otherwise: CTAs per row
};

// How launch_topk splits rows when not tuned (H200 sweeps of 2026-11-28, docs/results/hisa-cuda.md): clusters of
// CTAs per row while the GPU is short of CTAs, up to 8 for a few rows but at most ~96 CTAs in all once a cluster
// has 3 or more (larger clusters' serial tails cost more than they gain: 32 x 128K 50 us with 3, 74 with 4), parts
// of at least 16K; segments only for rows too long for a cluster of 8 (over 2M, not measured). `legacy`: the rule
// before that sweep (segments for rows <= SMs / 32, else 4 CTAs per row from 64K up), for A/B runs.
inline TopkSplit automatic_topk_split(int rows, int64_t max_len, int sms, bool legacy) {
  // Segments of at least 16K, up to 2 * SMs of them over all rows (rows >= 1; max_len may be 0).
  const int64_t parts =
      std::max<int64_t>(1, std::min<int64_t>((max_len + 16383) / 16384, (2 * sms + rows - 1) / rows));
  const TopkSplit segmented{(max_len + parts - 1) / parts, 1};
  if (legacy) {
    if (max_len > 32768 && rows * 32 <= sms && parts > 1) return segmented;
    return {0, max_len >= 65536 && rows < sms ? std::min(4, (2 * sms + rows - 1) / rows) : 1};
  }
  if (rows * 32 <= sms && max_len > (int64_t{2} << 20)) return segmented;
  int64_t cluster = std::min<int64_t>({int64_t{8}, sms / rows, max_len / 16384});
  if (cluster > 2 && rows * cluster > 96) cluster = std::max<int64_t>(2, 96 / rows);
  return {0, static_cast<int>(std::max<int64_t>(cluster, 1))};
}

// Top-k of `rows` rows no longer than max_len: the tiny-row kernel (a warp per row) or the short-row one (a CTA per
// row) where they apply (unsorted output, rows of at most kTinyTopkLen / kShortTopkLen, a sink that can finish in a
// warp for the first, not switched off), else the general one with `cluster` CTAs per row.
template <class Src, class Sink>
void launch_topk_rows_any(const Src& src, const Sink& sink, int rows, int64_t max_len, int k, bool sorted,
                          cudaStream_t stream, int cluster = 1) {
  if (rows == 0) return;
  if constexpr (WarpFinishingSink<Sink>) {
    if (!sorted && max_len <= kTinyTopkLen && topk_tuning().tiny_rows) {
      launch_topk_tiny(src, sink, rows, max_len, k, stream);
      return;
    }
  }
  if (!sorted && max_len <= kShortTopkLen && topk_tuning().short_rows) {
    launch_early(topk_short_kernel<Src, Sink>, rows, kTopkThreads, 0, stream, src, sink, k, topk_tuning().vector_loads);
    return;
  }
  launch_topk_rows(src, sink, rows, k, sorted, stream, cluster);
}

// Top-k of `rows` rows of `src` (each at most max_len long) into `sink`.
template <class Src, class Sink>
void launch_topk(const Src& src, const Sink& sink, int rows, int64_t max_len, int k, bool sorted, cudaStream_t stream,
                 Scratch& scratch) {
  if (rows == 0) return;
  const TopkTuning& tune = topk_tuning();
  const TopkSplit automatic = automatic_topk_split(rows, max_len, multiprocessor_count(), tune.legacy_cluster_rule);
  const int64_t segment = tune.segment >= 0 ? tune.segment : automatic.segment;
  if (segment <= 0 || max_len <= 2 * segment) {
    const int cluster = tune.cluster >= 1 ? tune.cluster : automatic.cluster;
    launch_topk_rows_any(src, sink, rows, max_len, k, sorted, stream, std::max(1, std::min(cluster, kMaxTopkCluster)));
    return;
  }
  const int segments = ceil_div(max_len, segment);
  const int64_t vrows = static_cast<int64_t>(rows) * segments;
  uint32_t* key = scratch.alloc<uint32_t>(vrows * k);
  int32_t* pos = scratch.alloc<int32_t>(vrows * k);
  int32_t* count = scratch.alloc<int32_t>(vrows);
  uint32_t* kth = scratch.alloc<uint32_t>(vrows);
  launch_topk_rows(Segments<Src>{src, segments, segment}, MergeState{key, pos, count, k, kth},
                   static_cast<int>(vrows), k, false, stream);
  launch_topk_rows(SegmentWinners{key, pos, count, segments, k}, sink, rows, k, sorted, stream);
}

}  // namespace hilo::hisa::cuda_detail
