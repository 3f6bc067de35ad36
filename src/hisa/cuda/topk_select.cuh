// Exact top-k of each row (k <= kMaxTopk), reading the row twice in the common case:
//  1. a histogram of the order keys' top 12 bits finds the bin b that holds the k-th largest element;
//  2. one pass collects, in element order, the elements above b (the "sure" winners, fewer than k) and the elements
//     in b (the candidates) into shared memory. The candidates' remaining digits are resolved in shared memory and
//     the best of them, ties to the earlier element, fill the remaining slots.
// When b holds more than kTopkCap elements, the next digits (10 and 10 bits) narrow it, one histogram pass each;
// after the last digit the bin is a single key value and its first elements in element order are taken. The
// winners reach the sink in ascending position order (the two position-ordered lists merged by binary search), or
// by (score desc, position asc) when `sorted` (bitonic sort).
// A row is one CTA, or a cluster of CTAs that each take a contiguous part of it: their histograms are summed and
// their lists gathered (in element order) through distributed shared memory, and CTA 0 finishes the row.
// Ties go to the smaller position; every source lists its elements in ascending position. Deterministic: atomics
// only count (histograms); what is kept, and the output order, depend on keys and positions alone.
//
// A source gives each row's element count and, per element, its order key (0 = not a candidate) and position; a
// sink receives the winners (slot, position, key) and then the final count and the k-th key. A source whose row is a
// contiguous run of f32 values (data(row)[i], key key_from(row, i, value)) is read 16 bytes per load where the row
// is 16-byte aligned (vector_row): a quarter of the load instructions, four times the bytes in flight per thread.
#pragma once

#include <cooperative_groups.h>
#include <cub/block/block_scan.cuh>

#include "block_sort.cuh"
#include "common.cuh"
#include "runtime.cuh"

namespace hilo::hisa::cuda_detail {

namespace cg = cooperative_groups;

// 1024 threads measured ~10% faster on 128K rows but ~1.6x slower on the short rows of HISA's block stage (H200,
// two separate calls: docs/results/hisa-cuda.md).
constexpr int kTopkThreads = 512;
constexpr int kTopkWarps = kTopkThreads / 32;
constexpr int kTopkCap = 4096;    // candidates held in shared memory (>= kMaxTopk: the last digit relies on it)
constexpr int kTopkUnroll = 8;    // elements per lane per round of the collect pass
constexpr int kTopkBins = 4096;   // first digit: 12 bits
constexpr int kHistogramLoads = 8;  // loads in flight per thread in a histogram pass
constexpr int kMaxTopkCluster = 8;  // CTAs per row at most (a portable cluster size)
static_assert(kTopkCap >= kMaxTopk, "the last digit takes up to k equal keys from the candidates");

struct TopkShared {
  // This CTA's histogram, then (second half) a cluster's sum of its CTAs' ones, which the peers may still be reading.
  uint32_t hist[2 * kTopkBins];
  uint64_t cand[kTopkCap];  // (~key << 32 | position): ascending = best first
  uint64_t win[kMaxTopk];   // the sure winners, same form
  typename cub::BlockScan<int, kTopkThreads>::TempStorage scan;
  int warp_sure[2][kTopkWarps], warp_cand[2][kTopkWarps];
  int bin, remaining;
  int n_sure, n_cand;  // what collect() found in this CTA's part of the row
};

__device__ __forceinline__ uint64_t by_score(uint32_t key, int64_t pos) {
  return (static_cast<uint64_t>(~key) << 32) | static_cast<uint32_t>(pos);
}

// Adds 1 to the shared-memory counter at shared-window address `addr` when `on` (a predicated reduction). With
// `if (on) atomicAdd(&sh.hist[...])` nvcc recomputed the shared window's base inside the branch for every element;
// with the address computed once the general kernel's histogram loop went from 17 to 13.5 SASS instructions per
// element (ptxas still branches around the reduction).
__device__ __forceinline__ void count_if(bool on, uint32_t addr) {
  asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.u32 p, %0, 0;\n\t@p red.shared.add.u32 [%1], 1;\n\t}"
               :: "r"(static_cast<uint32_t>(on)), "r"(addr) : "memory");
}

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// A source whose rows are contiguous f32 values: element i of `row` is data(row)[i], its key key_from(row, i, value).
template <class Src>
concept ContiguousRows = requires(const Src& src, int row, int64_t i, float x) {
  src.data(row);
  src.key_from(row, i, x);
};

// The row as float4s when the source stores it contiguously, `vector` is on (TopkTuning::vector_loads) and the row
// starts on a 16-byte boundary; else null (element-wise loads through src.key).
template <class Src>
__device__ inline const float4* vector_row(const Src& src, int row, bool vector) {
  if constexpr (ContiguousRows<Src>) {
    const float* p = src.data(row);
    if (vector && (reinterpret_cast<uintptr_t>(p) & 15u) == 0) return reinterpret_cast<const float4*>(p);
  }
  return nullptr;
}

// Keys of the four elements [i, i + 4) of a vector row.
template <ContiguousRows Src>
__device__ __forceinline__ void keys_of_vector(const Src& src, int row, int64_t i, float4 v, uint32_t* key) {
  key[0] = src.key_from(row, i, v.x);
  key[1] = src.key_from(row, i + 1, v.y);
  key[2] = src.key_from(row, i + 2, v.z);
  key[3] = src.key_from(row, i + 3, v.w);
}

// Finds, in `hist` (bins of a digit, scanned from the top), the bin holding the `remaining`-th largest element.
__device__ inline void find_bin(TopkShared& sh, const uint32_t* hist, int bins, int remaining) {
  const int per = bins / kTopkThreads;  // 8 or 2
  int counts[kTopkBins / kTopkThreads] = {}, sum = 0;
  for (int i = 0; i < per; ++i) {
    counts[i] = static_cast<int>(hist[bins - 1 - (threadIdx.x * per + i)]);
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

// The histogram's loop over a vector row: float4 q holds elements [4q, 4q + 4); begin is a multiple of 4.
template <ContiguousRows Src, class Count>
__device__ inline void histogram_vector(const Src& src, const float4* vec, int row, int64_t begin, int64_t n,
                                        const Count& count) {
  const int64_t q_end = n / 4;
  int64_t q = begin / 4 + threadIdx.x;
  for (; q + (kHistogramLoads - 1) * kTopkThreads < q_end; q += kHistogramLoads * kTopkThreads) {
    float4 v[kHistogramLoads];
#pragma unroll
    for (int j = 0; j < kHistogramLoads; ++j) v[j] = vec[q + j * kTopkThreads];
#pragma unroll
    for (int j = 0; j < kHistogramLoads; ++j) {
      uint32_t key[4];
      keys_of_vector(src, row, 4 * (q + j * kTopkThreads), v[j], key);
#pragma unroll
      for (int e = 0; e < 4; ++e) count(key[e]);
    }
  }
  for (; q < q_end; q += kTopkThreads) {
    uint32_t key[4];
    keys_of_vector(src, row, 4 * q, vec[q], key);
#pragma unroll
    for (int e = 0; e < 4; ++e) count(key[e]);
  }
  for (int64_t i = 4 * q_end + threadIdx.x; i < n; i += kTopkThreads) count(src.key(row, i));
}

// Histogram of one digit over elements [begin, n) of the row whose higher digits equal `prefix` (one shared
// reduction per element: combining a warp's increments with __match_any_sync measured 20-30% slower on an H200).
// kHistogramLoads loads (float4s on vector rows) in flight per thread, coalesced: the pass is latency-bound. (16 at
// one CTA per SM, 128 registers, made the flat decode call at 64 x 64K 1% slower: H100, 2026-12-06, same call.)
template <class Src>
__device__ inline void histogram(TopkShared& sh, const Src& src, const float4* vec, int row, int64_t begin, int64_t n,
                                 uint32_t mask, uint32_t prefix, int shift, int bins) {
  for (int i = threadIdx.x; i < bins; i += kTopkThreads) sh.hist[i] = 0;
  __syncthreads();
  const uint32_t hist = shared_address(sh.hist);
  const auto count = [&](uint32_t key) {
    count_if(key != 0 && (key & mask) == prefix, hist + (((key >> shift) & (bins - 1)) << 2));
  };
  if constexpr (ContiguousRows<Src>) {
    if (vec) {  // begin is a multiple of 4 (parts are): float4 q holds elements [4q, 4q + 4)
      histogram_vector(src, vec, row, begin, n, count);
      __syncthreads();
      return;
    }
  }
  int64_t i = begin + threadIdx.x;
  for (; i + (kHistogramLoads - 1) * kTopkThreads < n; i += kHistogramLoads * kTopkThreads) {
    uint32_t key[kHistogramLoads];
#pragma unroll
    for (int j = 0; j < kHistogramLoads; ++j) key[j] = src.key(row, i + j * kTopkThreads);
#pragma unroll
    for (int j = 0; j < kHistogramLoads; ++j) count(key[j]);
  }
  for (; i < n; i += kTopkThreads) count(src.key(row, i));
  __syncthreads();
}

// One collect round's bookkeeping: lane `writer` of each warp publishes the warp's counts, every thread waits, then
// `so` / `co` (this thread's offsets within its warp) move past the earlier warps' entries and the bases, and the
// bases move past the whole round. False when the round found nothing.
__device__ inline bool place_round(TopkShared& sh, int parity, int sure, int cand, bool writer, int& so, int& co,
                                   int& sure_base, int& cand_base) {
  const int warp = threadIdx.x / 32;
  if (writer) sh.warp_sure[parity][warp] = sure, sh.warp_cand[parity][warp] = cand;
  __syncthreads();  // the tables of the other parity are not touched until the next round's barrier
  so += sure_base, co += cand_base;
  int round_sure = 0, round_cand = 0;
#pragma unroll
  for (int w = 0; w < kTopkWarps; ++w) {
    const int a = sh.warp_sure[parity][w], b = sh.warp_cand[parity][w];
    if (w < warp) so += a, co += b;
    round_sure += a, round_cand += b;
  }
  sure_base += round_sure, cand_base += round_cand;
  return round_sure + round_cand != 0;
}

// Collects, in element order from elements [begin, n), the sure winners (key > top, or every candidate when
// all_sure) into sh.win and the candidates ((key & mask) == prefix) into sh.cand (the first kTopkCap). Each warp
// takes a span of 32 * kTopkUnroll consecutive elements per round; ballots order the lanes, a per-round table of
// warp counts orders the warps. The counts (the candidates may exceed kTopkCap) go to sh.n_sure and sh.n_cand.
template <class Src>
__device__ inline void collect_rounds(TopkShared& sh, const Src& src, int row, int64_t begin, int64_t n, bool all_sure,
                                      uint32_t mask, uint32_t prefix) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t top = prefix | ~mask;  // largest key of the bin
  const unsigned lower = (1u << lane) - 1u;
  constexpr int64_t kSpan = 32 * kTopkUnroll, kRound = kSpan * kTopkWarps;
  int sure_base = 0, cand_base = 0, parity = 0;
  for (int64_t r0 = begin; r0 < n; r0 += kRound, parity ^= 1) {
    const int64_t w0 = r0 + warp * kSpan;
    unsigned sm[kTopkUnroll], cm[kTopkUnroll];
    uint32_t keys[kTopkUnroll];  // kept for the writes below (no second load)
    int ns = 0, nc = 0;
#pragma unroll
    for (int j = 0; j < kTopkUnroll; ++j) {
      const int64_t i = w0 + j * 32 + lane;
      keys[j] = i < n ? src.key(row, i) : 0u;
    }
#pragma unroll
    for (int j = 0; j < kTopkUnroll; ++j) {
      const uint32_t key = keys[j];
      const bool sure = all_sure ? key != 0 : key > top;
      const bool cand = !all_sure && key != 0 && (key & mask) == prefix;
      sm[j] = __ballot_sync(0xFFFFFFFFu, sure);
      cm[j] = __ballot_sync(0xFFFFFFFFu, cand);
      ns += __popc(sm[j]);
      nc += __popc(cm[j]);
    }
    int so = 0, co = 0;
    if (!place_round(sh, parity, ns, nc, lane == 0, so, co, sure_base, cand_base)) continue;
#pragma unroll
    for (int j = 0; j < kTopkUnroll; ++j) {
      if ((sm[j] | cm[j]) >> lane & 1u) {
        const int64_t i = w0 + j * 32 + lane;
        const uint64_t v = by_score(keys[j], src.position(row, i));
        if (sm[j] >> lane & 1u) {
          sh.win[so + __popc(sm[j] & lower)] = v;
        } else {
          const int at = co + __popc(cm[j] & lower);
          if (at < kTopkCap) sh.cand[at] = v;
        }
      }
      so += __popc(sm[j]);
      co += __popc(cm[j]);
    }
  }
  if (threadIdx.x == 0) sh.n_sure = sure_base, sh.n_cand = cand_base;
  __syncthreads();
}

// The same collect over a vector row: each lane takes kLaneRun consecutive elements per round (four 16-byte loads),
// so lane order is element order and a lane's slots come from one warp scan of its two counts. The ballot version
// with 16-byte loads ran 64 SASS instructions per element, most of them the per-element rank arithmetic, though only
// a few percent of the elements are winners or candidates.
constexpr int kLaneRun = 16;

template <ContiguousRows Src>
__device__ inline void collect_lane_runs(TopkShared& sh, const Src& src, const float4* vec, int row, int64_t begin,
                                         int64_t n, bool all_sure, uint32_t mask, uint32_t prefix) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t top = prefix | ~mask;  // largest key of the bin
  constexpr int64_t kSpan = 32 * kLaneRun, kRound = kSpan * kTopkWarps;
  int sure_base = 0, cand_base = 0, parity = 0;
  for (int64_t r0 = begin; r0 < n; r0 += kRound, parity ^= 1) {
    const int64_t first = r0 + warp * kSpan + lane * kLaneRun;  // a multiple of 4 (begin is)
    uint32_t keys[kLaneRun];
    if (first + kLaneRun <= n) {
#pragma unroll
      for (int q = 0; q < kLaneRun / 4; ++q) keys_of_vector(src, row, first + 4 * q, vec[first / 4 + q], keys + 4 * q);
    } else {
#pragma unroll
      for (int j = 0; j < kLaneRun; ++j) keys[j] = first + j < n ? src.key(row, first + j) : 0u;
    }
    uint32_t sure_bits = 0, cand_bits = 0;
#pragma unroll
    for (int j = 0; j < kLaneRun; ++j) {
      const bool sure = all_sure ? keys[j] != 0 : keys[j] > top;
      const bool cand = !all_sure && keys[j] != 0 && (keys[j] & mask) == prefix;
      sure_bits |= static_cast<uint32_t>(sure) << j;
      cand_bits |= static_cast<uint32_t>(cand) << j;
    }
    // (sure << 16 | candidates) of this lane, and of the lanes up to it by an inclusive scan (at most 512 each).
    const int mine = __popc(sure_bits) << 16 | __popc(cand_bits);
    int upto = mine;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
      const int up = __shfl_up_sync(0xFFFFFFFFu, upto, o);
      if (lane >= o) upto += up;
    }
    int so = (upto - mine) >> 16, co = (upto - mine) & 0xFFFF;  // lane 31's upto: the warp's counts
    const bool any = place_round(sh, parity, upto >> 16, upto & 0xFFFF, lane == 31, so, co, sure_base, cand_base);
    if (!any || (sure_bits | cand_bits) == 0) continue;
#pragma unroll
    for (int j = 0; j < kLaneRun; ++j) {
      if ((sure_bits | cand_bits) >> j & 1u) {
        const uint64_t v = by_score(keys[j], src.position(row, first + j));
        if (sure_bits >> j & 1u) {
          sh.win[so++] = v;
        } else {
          if (co < kTopkCap) sh.cand[co] = v;
          ++co;
        }
      }
    }
  }
  if (threadIdx.x == 0) sh.n_sure = sure_base, sh.n_cand = cand_base;
  __syncthreads();
}

// collect_lane_runs where the row allows 16-byte loads (vec), else collect_rounds.
template <class Src>
__device__ inline void collect(TopkShared& sh, const Src& src, const float4* vec, int row, int64_t begin, int64_t n,
                               bool all_sure, uint32_t mask, uint32_t prefix) {
  if constexpr (ContiguousRows<Src>) {
    if (vec) return collect_lane_runs(sh, src, vec, row, begin, n, all_sure, mask, prefix);
  }
  collect_rounds(sh, src, row, begin, n, all_sure, mask, prefix);
}

__device__ __forceinline__ uint32_t key_of(uint64_t v) { return ~static_cast<uint32_t>(v >> 32); }
__device__ __forceinline__ int64_t position_of(uint64_t v) { return static_cast<uint32_t>(v); }

// Entries of a position-ordered list whose position is below `pos` (binary search).
__device__ inline int rank_of_position(const uint64_t* list, int n, int64_t pos) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (position_of(list[mid]) < pos) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// The candidates (sh.cand[0, n), element order, all sharing `prefix` on `mask`) hold the `take` best elements that
// are still missing. Finds their threshold key T with the remaining digits (shared-memory histograms), then keeps, in
// element order, the candidates above T and the first of those equal to T: sh.cand[0, take). Returns T.
__device__ inline uint32_t keep_best_candidates(TopkShared& sh, int n, uint32_t mask, uint32_t prefix, int take) {
  for (int shift = 20; shift >= 0; shift -= 10) {  // digits of 12, 10 and 10 bits
    if (mask & (1u << shift)) continue;  // this digit was already resolved over the row
    const int bins = shift == 20 ? kTopkBins : 1024;
    for (int i = threadIdx.x; i < bins; i += kTopkThreads) sh.hist[i] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kTopkThreads) {
      const uint32_t key = key_of(sh.cand[i]);
      if ((key & mask) == prefix) atomicAdd(&sh.hist[(key >> shift) & (bins - 1)], 1u);
    }
    __syncthreads();
    find_bin(sh, sh.hist, bins, take);
    prefix |= static_cast<uint32_t>(sh.bin) << shift;
    mask |= static_cast<uint32_t>(bins - 1) << shift;
    take = sh.remaining;
    __syncthreads();
  }
  // prefix is now the threshold key T; `take` of the candidates equal to T are kept, the first in element order.
  constexpr int kPer = kTopkCap / kTopkThreads;
  const int first = threadIdx.x * kPer;
  uint64_t v[kPer];
  int ties = 0, kept = 0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    v[j] = first + j < n ? sh.cand[first + j] : ~uint64_t{0};
    ties += first + j < n && key_of(v[j]) == prefix;
  }
  int ties_before;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(ties, ties_before);
  __syncthreads();
  bool keep[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const uint32_t key = key_of(v[j]);
    const bool tie = first + j < n && key == prefix;
    keep[j] = first + j < n && (key > prefix || (tie && ties_before < take));
    ties_before += tie;
    kept += keep[j];
  }
  int at;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(kept, at);  // every thread read its entries above
#pragma unroll
  for (int j = 0; j < kPer; ++j)
    if (keep[j]) sh.cand[at++] = v[j];
  __syncthreads();
  return prefix;
}

// ---- Several CTAs per row (a thread-block cluster on sm_90): each takes a contiguous part of the row ----

// Sums the cluster's histograms (bins of one digit) into the second half of sh.hist; returns where the row's
// histogram starts in sh.hist (0 on a single CTA, whose own histogram is the row's).
// All CTAs call it. Each thread reads its 16-byte runs of a peer's bins at once (one remote round trip per peer, not
// one per bin and peer). A peer may still be reading this CTA's sh.hist when it returns: the next write to it must come
// after a cluster barrier (the next digit's cluster_sync_parts, or cluster_gather's).
__device__ inline int cluster_sum_histograms(TopkShared& sh, int bins) {
#if __CUDA_ARCH__ >= 900
  cg::cluster_group cluster = cg::this_cluster();
  const unsigned parts = cluster.num_blocks();
  if (parts == 1) return 0;
  cluster.sync();  // every part's histogram is complete
  constexpr int kRuns = kTopkBins / 4 / kTopkThreads;  // 16-byte runs per thread at the first digit's bins
  uint4 sum[kRuns] = {};
  for (unsigned r = 0; r < parts; ++r) {  // not unrolled: the 64-register variant would spill
    const uint4* peer = reinterpret_cast<const uint4*>(cluster.map_shared_rank(sh.hist, r));
    uint4 v[kRuns];
#pragma unroll
    for (int j = 0; j < kRuns; ++j) {
      const int run = threadIdx.x + j * kTopkThreads;
      v[j] = run * 4 < bins ? peer[run] : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int j = 0; j < kRuns; ++j) sum[j].x += v[j].x, sum[j].y += v[j].y, sum[j].z += v[j].z, sum[j].w += v[j].w;
  }
#pragma unroll
  for (int j = 0; j < kRuns; ++j) {
    const int run = threadIdx.x + j * kTopkThreads;
    if (run * 4 < bins) reinterpret_cast<uint4*>(sh.hist + kTopkBins)[run] = sum[j];
  }
  __syncthreads();
  return kTopkBins;
#else
  return 0;
#endif
}

// A cluster barrier where the row has several parts (no-op on a single CTA).
__device__ inline void cluster_sync_parts() {
#if __CUDA_ARCH__ >= 900
  cg::cluster_group cluster = cg::this_cluster();
  if (cluster.num_blocks() > 1) cluster.sync();
#endif
}

// dst[0, n) = a peer CTA's src[0, n) by 16-byte remote loads. src is 16-byte aligned; for an odd n, src[n] is read
// (and dropped), so it must lie inside src's array.
__device__ inline void copy_from_peer(uint64_t* dst, const uint64_t* src, int n) {
  const uint4* runs = reinterpret_cast<const uint4*>(src);
  for (int p = threadIdx.x; 2 * p < n; p += kTopkThreads) {
    const uint4 v = runs[p];
    dst[2 * p] = static_cast<uint64_t>(v.y) << 32 | v.x;
    if (2 * p + 1 < n) dst[2 * p + 1] = static_cast<uint64_t>(v.w) << 32 | v.z;
  }
}

// Appends the other CTAs' sure winners and candidates (in rank order = element order) to CTA 0's lists. Returns
// false on the CTAs that are done (every CTA but 0), after CTA 0 has read their shared memory.
__device__ inline bool cluster_gather(TopkShared& sh) {
#if __CUDA_ARCH__ >= 900
  cg::cluster_group cluster = cg::this_cluster();
  if (cluster.num_blocks() == 1) return true;
  cluster.sync();  // every part's lists and counts are complete
  if (cluster.block_rank() == 0) {
    int sure = sh.n_sure, cand = sh.n_cand;
    for (unsigned r = 1; r < cluster.num_blocks(); ++r) {
      const TopkShared* peer = cluster.map_shared_rank(&sh, r);
      const int ps = peer->n_sure, pc = peer->n_cand;
      copy_from_peer(sh.win + sure, peer->win, ps);
      copy_from_peer(sh.cand + min(cand, kTopkCap), peer->cand, max(0, min(pc, kTopkCap - cand)));
      sure += ps, cand += pc;
    }
    __syncthreads();
    if (threadIdx.x == 0) sh.n_sure = sure, sh.n_cand = cand;
  }
  cluster.sync();  // CTA 0 is done reading the others
  __syncthreads();
  return cluster.block_rank() == 0;
#else
  return true;
#endif
}

__device__ inline int cluster_rank_and_size(int& size) {
#if __CUDA_ARCH__ >= 900
  cg::cluster_group cluster = cg::this_cluster();
  size = static_cast<int>(cluster.num_blocks());
  return static_cast<int>(cluster.block_rank());
#else
  size = 1;
  return 0;
#endif
}

// A source may bind a row (src.bind(row)): the row's constants (pointers, counts, thresholds) are then loaded once
// into registers instead of once per element (the histogram's shared-memory reduction is asm volatile with a memory
// clobber, so the compiler cannot hoist such global loads out of the element loops). The bound source has the same
// interface; its methods ignore their row argument.
template <class Src>
__device__ __forceinline__ auto bind_row(const Src& src, int row) {
  if constexpr (requires { src.bind(row); }) return src.bind(row);
  else return src;
}

// Writes the winners to the sink: the sure winners sh.win[0, n_sure) and the chosen candidates sh.cand[0, chosen),
// both in element order, `total` in all; then the count and the k-th key (0 when the row had at most k candidates).
template <class Sink>
__device__ inline void write_winners(TopkShared& sh, const Sink& sink, int row, int n_sure, int chosen, int total,
                                     uint32_t kth, bool sorted) {
  if (sorted) {  // one list, ordered by (score desc, position asc)
    for (int i = threadIdx.x; i < chosen; i += kTopkThreads) sh.win[n_sure + i] = sh.cand[i];
    __syncthreads();
    block_bitonic_sort(sh.win, total, ~uint64_t{0});
    for (int i = threadIdx.x; i < total; i += kTopkThreads)
      sink.write(row, i, position_of(sh.win[i]), key_of(sh.win[i]));
  } else {  // merge the two position-ordered lists: a winner's slot is its index plus its rank in the other list
    for (int i = threadIdx.x; i < n_sure; i += kTopkThreads) {
      const uint64_t v = sh.win[i];
      sink.write(row, i + rank_of_position(sh.cand, chosen, position_of(v)), position_of(v), key_of(v));
    }
    for (int j = threadIdx.x; j < chosen; j += kTopkThreads) {
      const uint64_t v = sh.cand[j];
      sink.write(row, j + rank_of_position(sh.win, n_sure, position_of(v)), position_of(v), key_of(v));
    }
  }
  __syncthreads();
  sink.finish(row, total, kth);
}

// One read of a row that its source expects to hold few candidates (src.few_candidates(): a merge whose running
// top-k is full, so only chunk entries above its k-th key count): every candidate into shared memory and the
// selection there. False, with nothing written, when more than kTopkCap turned up (the caller then reads the row
// the two-pass way).
template <class Src, class Sink>
__device__ inline bool topk_one_read(TopkShared& sh, const Src& src, const float4* vec, const Sink& sink, int row,
                                     int64_t n, int k, bool sorted) {
  collect(sh, src, vec, row, 0, n, false, 0u, 0u);  // mask 0: every nonzero key is a candidate, none sure
  const int seen = sh.n_cand;
  if (seen > kTopkCap) return false;
  if (seen <= k) {
    write_winners(sh, sink, row, 0, seen, seen, 0u, sorted);
  } else {
    const uint32_t kth = keep_best_candidates(sh, seen, 0u, 0u, k);
    write_winners(sh, sink, row, 0, k, k, kth, sorted);
  }
  return true;
}

// Ctas: CTAs per SM the kernel is compiled for (1: up to 128 registers; 2: 64). Sources of many medium rows (the
// flat indexer's merges: ~18K elements, ~7 rows per SM) mark themselves with `many_rows`; they may take 2
// (TopkTuning::two_ctas), so that two rows' latency chains overlap on an SM.
template <class Src, class Sink, int Ctas = 1>
__global__ void __launch_bounds__(kTopkThreads, Ctas)
    topk_kernel(Src rows_src, Sink sink, int k, bool sorted, bool vector, bool one_read) {
  early_launch_prologue();
  extern __shared__ __align__(16) uint8_t topk_smem[];
  TopkShared& sh = *reinterpret_cast<TopkShared*>(topk_smem);
  int parts;
  const int part = cluster_rank_and_size(parts);
  const int row = blockIdx.x / parts;
  const auto src = bind_row(rows_src, row);
  const float4* vec = vector_row(src, row, vector);
  // Parts are multiples of 4 elements, so every part of a vector row starts on a float4.
  const int64_t n = src.count(row), per_part = ((n + parts - 1) / parts + 3) / 4 * 4;
  const int64_t begin = min64(n, part * per_part), end = min64(n, begin + per_part);
  if constexpr (requires { src.few_candidates(); }) {
    if (one_read && parts == 1 && src.few_candidates() && topk_one_read(sh, src, vec, sink, row, n, k, sorted)) return;
  }

  // Digit 1 (bits 31..20) over every element; its histogram also counts the candidates.
  histogram(sh, src, vec, row, begin, end, 0u, 0u, 20, kTopkBins);
  int row_hist = cluster_sum_histograms(sh, kTopkBins);  // where the row's histogram is in sh.hist
  int local = 0;
  for (int i = threadIdx.x; i < kTopkBins; i += kTopkThreads) local += static_cast<int>(sh.hist[row_hist + i]);
  int unused, valid;
  cub::BlockScan<int, kTopkThreads>(sh.scan).ExclusiveSum(local, unused, valid);  // aggregate: the candidates
  __syncthreads();

  const bool all_sure = valid <= k;
  uint32_t mask = 0, prefix = 0;
  int remaining = k;
  if (!all_sure) {
    for (int d = 0;; ++d) {
      const int shift = d == 0 ? 20 : d == 1 ? 10 : 0, bins = d == 0 ? kTopkBins : 1024;
      if (d > 0) {
        cluster_sync_parts();  // the peers are done reading this CTA's previous histogram
        histogram(sh, src, vec, row, begin, end, mask, prefix, shift, bins);
        row_hist = cluster_sum_histograms(sh, bins);
      }
      find_bin(sh, sh.hist + row_hist, bins, remaining);
      prefix |= static_cast<uint32_t>(sh.bin) << shift;
      mask |= static_cast<uint32_t>(bins - 1) << shift;
      remaining = sh.remaining;
      const uint32_t in_bin = sh.hist[row_hist + sh.bin];
      __syncthreads();  // everyone has read hist and bin before the next digit clears them
      if (in_bin <= static_cast<uint32_t>(kTopkCap) || d == 2) break;
    }
  }
  collect(sh, src, vec, row, begin, end, all_sure, mask, prefix);
  if (!cluster_gather(sh)) return;
  const int seen = sh.n_cand;

  int total = valid, n_sure = valid, chosen = 0;
  uint32_t kth = 0;
  if (!all_sure) {
    n_sure = k - remaining;
    kth = keep_best_candidates(sh, min(seen, kTopkCap), mask, prefix, remaining);
    chosen = remaining;
    total = k;
  }
  write_winners(sh, sink, row, n_sure, chosen, total, kth, sorted);
}

// topk_kernel<Src, Sink, Ctas> with `cluster` CTAs per row of `src` (a thread-block cluster when > 1).
template <int Ctas, class Src, class Sink>
void launch_topk_kernel(const Src& src, const Sink& sink, int rows, int k, bool sorted, cudaStream_t stream,
                        int cluster) {
  allow_smem<topk_kernel<Src, Sink, Ctas>>(sizeof(TopkShared));
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(rows) * cluster);
  config.blockDim = dim3(kTopkThreads);
  config.dynamicSmemBytes = sizeof(TopkShared);
  config.stream = stream;
  cudaLaunchAttribute attrs[2]{};
  attrs[0].id = cudaLaunchAttributeClusterDimension;
  attrs[0].val.clusterDim.x = cluster;
  attrs[0].val.clusterDim.y = attrs[0].val.clusterDim.z = 1;
  config.numAttrs = cluster > 1 ? 1 : 0;
  add_pdl_attribute(config, attrs);
  HILO_CUDA_CHECK(cudaLaunchKernelEx(&config, topk_kernel<Src, Sink, Ctas>, src, sink, k, sorted,
                                     topk_tuning().vector_loads, topk_tuning().one_read));
}

// `cluster` CTAs per row of `src` (a thread-block cluster when > 1) into `sink`.
template <class Src, class Sink>
void launch_topk_rows(const Src& src, const Sink& sink, int rows, int k, bool sorted, cudaStream_t stream,
                      int cluster = 1) {
  if (rows == 0) return;
  if constexpr (requires { Src::many_rows; }) {
    if (topk_tuning().two_ctas) return launch_topk_kernel<2>(src, sink, rows, k, sorted, stream, cluster);
  }
  launch_topk_kernel<1>(src, sink, rows, k, sorted, stream, cluster);
}

}  // namespace hilo::hisa::cuda_detail
