// The sources and sinks of the top-k kernels (topk_select.cuh says what each must provide): dense rows and row
// prefixes of scores, the flat indexer's chunk merges, segments of long rows and their winners; merge states and
// final index outputs.
#pragma once

#include "topk_select.cuh"

namespace hilo::hisa::cuda_detail {

// ---- Sources ----

// A dense row of scores: position = index (standalone top-k, block scores).
struct RowScores {
  const float* scores;
  int64_t len;
  __device__ int64_t count(int) const { return len; }
  __device__ const float* data(int row) const { return scores + static_cast<int64_t>(row) * len; }
  __device__ uint32_t key_from(int, int64_t, float x) const { return order_key(x); }
  __device__ uint32_t key(int row, int64_t i) const { return order_key(data(row)[i]); }
  __device__ int64_t position(int, int64_t i) const { return i; }
};

// Rows of scores of which only the first len[row] entries exist (decode: a row sees keys [0, len)), so the rest of
// the buffer needs no NaN fill and is never read.
struct RowPrefix {
  const float* scores;
  int64_t ld;
  const int32_t* len;
  __device__ int64_t count(int row) const { return len[row]; }
  __device__ const float* data(int row) const { return scores + static_cast<int64_t>(row) * ld; }
  __device__ uint32_t key_from(int, int64_t, float x) const { return order_key(x); }
  __device__ uint32_t key(int row, int64_t i) const { return order_key(data(row)[i]); }
  __device__ int64_t position(int, int64_t i) const { return i; }
};

// A row block's scores for the chunk of keys [chunk_begin, chunk_begin + chunk_len), each row behind a prefix of
// `pre` slots (a multiple of 4) that hold the row's running winners (prev_count of them, as f32 scores in ascending
// position, positions in prev_pos): the merge of the winners so far with the chunk, in place (MergePrefix writes
// the new winners back into the prefix; every read of a row precedes its writes). Chunk entries outside the row's
// visible keys [lo, hi) are not candidates and never need a fill; nor are those at or below the row's k-th key so
// far (prev_kth: a later position loses the tie). Rows are contiguous (16-byte loads), and bind(row) loads a row's
// constants once. With pre = 0 and no state it is a single pass over visible keys.
struct MergeRows {
  static constexpr bool many_rows = true;  // topk_kernel may run 2 CTAs per SM
  const float* scores;        // [rows][ld], ld a multiple of 4
  const int32_t* prev_pos;    // [rows][k]; null when pre = 0
  const int32_t* prev_count;  // [rows]; null: no winners yet
  const uint32_t* prev_kth;   // [rows]; null: 0
  const int32_t* row_lo;      // [rows] visible keys of row r: [row_lo[r], row_hi[r])
  const int32_t* row_hi;
  int k, pre;
  int64_t ld, chunk_len, chunk_begin;

  struct Row {
    const float* row_scores;
    const int32_t* pos;
    int64_t n, chunk_begin;
    // Row indices in 32 bits (a row is pre + chunk_len < 2^31 long): the winners [0, winners) and the visible chunk
    // entries [visible_begin, visible_begin + visible_len), disjoint (winners <= pre <= visible_begin). With 64-bit
    // compares the per-element test was ~12 SASS instructions and spilled at 64 registers (ncu, 2026-12-06).
    uint32_t winners, visible_begin, visible_len;
    int pre;
    uint32_t kth;
    __device__ int64_t count(int) const { return n; }
    __device__ const float* data(int) const { return row_scores; }
    __device__ uint32_t key_from(int, int64_t i, float x) const {
      const uint32_t key = order_key(x), j = static_cast<uint32_t>(i);
      // Bitwise, not short-circuit: && and || became a branch per element.
      const bool candidate = (j < winners) | ((j - visible_begin < visible_len) & (key > kth));
      return candidate ? key : 0u;
    }
    __device__ uint32_t key(int row, int64_t i) const { return key_from(row, i, row_scores[i]); }
    __device__ int64_t position(int, int64_t i) const { return i < pre ? pos[i] : chunk_begin + (i - pre); }
    // The running top-k is full (k-th key set): only the chunk entries above it are candidates, usually few.
    __device__ bool few_candidates() const { return kth != 0u; }
  };
  __device__ Row bind(int row) const {
    const int64_t lo = max64(row_lo[row] - chunk_begin, 0), hi = min64(row_hi[row] - chunk_begin, chunk_len);
    return Row{scores + static_cast<int64_t>(row) * ld,
               prev_pos ? prev_pos + static_cast<int64_t>(row) * k : nullptr,
               pre + chunk_len,
               chunk_begin,
               prev_count ? static_cast<uint32_t>(prev_count[row]) : 0u,
               static_cast<uint32_t>(pre + lo),
               static_cast<uint32_t>(max64(hi - lo, 0)),
               pre,
               prev_kth ? prev_kth[row] : 0u};
  }
  // Unbound access (sources that wrap this one, e.g. Segments).
  __device__ int64_t count(int row) const { return pre + chunk_len; }
  __device__ uint32_t key(int row, int64_t i) const { return bind(row).key(row, i); }
  __device__ int64_t position(int row, int64_t i) const { return bind(row).position(row, i); }
};

// Elements [offset, offset + n) of a bound row (Segments::bind).
template <class Row>
struct SegmentRow {
  Row row;
  int64_t offset, n;
  __device__ int64_t count(int) const { return n; }
  __device__ uint32_t key(int r, int64_t i) const { return row.key(r, offset + i); }
  __device__ int64_t position(int r, int64_t i) const { return row.position(r, offset + i); }
  __device__ const float* data(int r) const
    requires ContiguousRows<Row>
  {
    return row.data(r) + offset;
  }
  __device__ uint32_t key_from(int r, int64_t i, float x) const
    requires ContiguousRows<Row>
  {
    return row.key_from(r, offset + i, x);
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
  // A segment of a source that binds rows binds too (its row's constants loaded once).
  __device__ auto bind(int vrow) const
    requires requires(const Src& s) { s.bind(0); }
  {
    return SegmentRow<decltype(src.bind(0))>{src.bind(vrow / segments), (vrow % segments) * length, count(vrow)};
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

// The running state of a MergeRows merge, written in place: the winners' scores into the rows' prefix, their
// positions, the count and the k-th key per row.
struct MergePrefix {
  float* scores;  // [rows][ld]
  int32_t* pos;   // [rows][k]
  int32_t* count;
  uint32_t* kth;  // per row: key a new element must beat to enter (0: the row is not full)
  int64_t ld;
  int k;
  __device__ void write(int row, int i, int64_t p, uint32_t key) const {
    scores[static_cast<int64_t>(row) * ld + i] = key_to_float(key);
    pos[static_cast<int64_t>(row) * k + i] = static_cast<int32_t>(p);
  }
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
  __device__ void finish_in_warp(int row, int total, uint32_t, int lane) const {
    for (int i = total + lane; i < k; i += 32) out[static_cast<int64_t>(row) * k + i] = -1;
  }
};

}  // namespace hilo::hisa::cuda_detail
