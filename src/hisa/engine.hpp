// The CPU selection engine behind every indexer path: for a set of query rows, each with its own ascending list of
// key ranges, score every key of those ranges and keep the top k per row.
//
// Work is cut into tiles of queries that share a key source. A tile walks the union of its queries' ranges in
// segments of 256 keys: each 16-key group of a segment is packed (widened to f32) once, when the first query needs
// it, and then scored for every query of the tile whose ranges cover it, so neighbouring queries that keep the same
// blocks share the packing and the cache traffic. When there are fewer tiles than threads, each tile's key span is
// split into windows whose partial top-k lists are merged; the result never depends on threads or schedule.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "hilo/dtype.hpp"
#include "key_source.hpp"
#include "score_kernel.hpp"

namespace hilo::hisa::detail {

struct Range {
  int64_t lo, hi;  // keys [lo, hi)
};

// Ranges of every query row, CSR style.
class RangeTable {
 public:
  explicit RangeTable(int64_t rows = 0) { reset(rows); }
  void reset(int64_t rows);
  // Appends a range to `row`; rows must be filled in order (0, 1, ...), ranges in ascending order. Touching ranges
  // are merged; empty ones are dropped.
  void add(int64_t row, int64_t lo, int64_t hi);
  void finish_rows(int64_t rows_done);  // marks rows up to rows_done as complete (for rows with no ranges)
  const Range* begin(int64_t row) const { return ranges_.data() + offsets_[row]; }
  const Range* end(int64_t row) const { return ranges_.data() + offsets_[row + 1]; }
  int64_t rows() const { return static_cast<int64_t>(offsets_.size()) - 1; }

 private:
  std::vector<int64_t> offsets_;
  std::vector<Range> ranges_;
  int64_t open_row_ = 0;
};

struct QueryBatch {
  const void* q;  // [rows][H][D]
  DType q_dtype;
  const float* w;  // [rows][H]
  int H, D;
};

struct Tile {
  int64_t first;  // first query row
  int count;      // at most kMaxTileQueries
  const KeySource* source;
};
constexpr int kMaxTileQueries = 32;

// Top k of every row: positions ascending, with their order keys.
struct TopKResults {
  int k = 0;
  std::vector<int32_t> pos, count;
  std::vector<uint32_t> keys;
  void init(int64_t rows, int k_);
  int32_t* row_pos(int64_t r) { return pos.data() + r * k; }
  uint32_t* row_keys(int64_t r) { return keys.data() + r * k; }
};

struct EngineStats {
  int64_t keys_packed = 0;  // key rows widened into panels (summed over tiles)
  int64_t keys_scored = 0;  // (query, key) pairs scored
};

struct EngineOptions {
  int k = 0;
  int threads = 0;
  ScoreGroupsFn kernel = nullptr;
  std::function<void(int64_t, int64_t)> progress;  // (jobs done, jobs total), on the calling thread
};

EngineStats select_top_k(const QueryBatch& queries, const std::vector<Tile>& tiles, const RangeTable& ranges,
                         const EngineOptions& opt, TopKResults& out);

}  // namespace hilo::hisa::detail
