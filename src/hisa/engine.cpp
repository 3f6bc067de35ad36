#include "engine.hpp"

#include <algorithm>
#include <atomic>
#include <limits>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "select.hpp"

namespace hilo::hisa::detail {
using hilo::detail::TopKCollector;
using hilo::detail::sort_by_score;
namespace {

constexpr int kSegmentGroups = 16;  // 256 keys per segment
constexpr int64_t kSegmentKeys = kSegmentGroups * kGroup;
constexpr int64_t kMinWindowKeys = 4096;

// One job: a tile restricted to keys [window_lo, window_hi).
struct Job {
  int64_t tile;
  int64_t window_lo, window_hi;
};

// Per-thread buffers, reused across jobs.
struct Scratch {
  std::vector<float> q, panel, scales, scores;
  std::vector<char> packed;
  TopKCollector collectors[kMaxTileQueries];
  const Range* cursor[kMaxTileQueries];
  const Range* cursor_end[kMaxTileQueries];
};

Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

// Runs one job and leaves each query's top k in scratch.collectors[i] (finished).
EngineStats run_job(const QueryBatch& qb, const Tile& tile, const RangeTable& ranges, const EngineOptions& opt,
                    const Job& job, Scratch& s) {
  const int H = qb.H, D = qb.D;
  const long qfloats = static_cast<long>(H) * D;
  const long group_floats = static_cast<long>(D) * kGroup;
  s.q.resize(tile.count * qfloats);
  s.panel.resize(kSegmentGroups * group_floats);
  s.scales.resize(kSegmentGroups * kGroup);
  s.scores.resize(kSegmentGroups * kGroup);
  s.packed.resize(kSegmentGroups);
  const std::size_t q_row_bytes = qfloats * dtype_size(qb.q_dtype);
  for (int i = 0; i < tile.count; ++i) {
    const int64_t row = tile.first + i;
    widen_to_f32(static_cast<const uint8_t*>(qb.q) + row * q_row_bytes, qb.q_dtype, qfloats, s.q.data() + i * qfloats);
    s.collectors[i].reset(opt.k);
    s.cursor[i] = ranges.begin(row);
    s.cursor_end[i] = ranges.end(row);
  }

  EngineStats stats;
  int64_t seg_end = job.window_lo;
  for (;;) {
    // The next key any query still needs decides the next segment.
    int64_t next = std::numeric_limits<int64_t>::max();
    for (int i = 0; i < tile.count; ++i) {
      while (s.cursor[i] != s.cursor_end[i] && s.cursor[i]->hi <= seg_end) ++s.cursor[i];
      if (s.cursor[i] != s.cursor_end[i]) next = std::min(next, std::max(s.cursor[i]->lo, seg_end));
    }
    if (next >= job.window_hi) break;
    const int64_t seg_lo = next / kSegmentKeys * kSegmentKeys;
    const int64_t seg_hi = std::min(seg_lo + kSegmentKeys, job.window_hi);
    std::fill(s.packed.begin(), s.packed.end(), 0);

    for (int i = 0; i < tile.count; ++i) {
      const float* qi = s.q.data() + i * qfloats;
      const float* wi = qb.w + (tile.first + i) * H;
      for (const Range* r = s.cursor[i]; r != s.cursor_end[i] && r->lo < seg_hi; ++r) {
        const int64_t x = std::max({r->lo, seg_lo, job.window_lo}), y = std::min(r->hi, seg_hi);
        if (x >= y) continue;
        const int g0 = static_cast<int>((x - seg_lo) / kGroup);
        const int g1 = static_cast<int>((y - seg_lo + kGroup - 1) / kGroup);
        for (int g = g0; g < g1;) {  // pack the groups no query of the tile has needed yet
          if (s.packed[g]) {
            ++g;
            continue;
          }
          int run = g;
          while (run < g1 && !s.packed[run]) s.packed[run++] = 1;
          tile.source->pack(seg_lo / kGroup + g, run - g, s.panel.data() + g * group_floats,
                            s.scales.data() + g * kGroup);
          stats.keys_packed += (run - g) * kGroup;
          g = run;
        }
        opt.kernel(qi, wi, H, D, s.panel.data() + g0 * group_floats, s.scales.data() + g0 * kGroup, g1 - g0,
                   s.scores.data());
        s.collectors[i].offer(s.scores.data() + (x - seg_lo - g0 * kGroup), x, static_cast<int>(y - x));
        stats.keys_scored += y - x;
      }
    }
    seg_end = seg_hi;
  }
  for (int i = 0; i < tile.count; ++i) s.collectors[i].finish();
  return stats;
}

void store(const TopKCollector& c, TopKResults& out, int64_t row) {
  const int n = c.size();
  std::copy(c.positions(), c.positions() + n, out.row_pos(row));
  std::copy(c.keys(), c.keys() + n, out.row_keys(row));
  out.count[row] = n;
}

}  // namespace

void RangeTable::reset(int64_t rows) {
  offsets_.assign(rows + 1, 0);
  ranges_.clear();
  open_row_ = 0;
}

void RangeTable::add(int64_t row, int64_t lo, int64_t hi) {
  HILO_CHECK(row >= open_row_ && row < rows(), "RangeTable: row {} added out of order", row);
  finish_rows(row);
  if (lo < hi) {
    const bool row_has_ranges = offsets_[row] < static_cast<int64_t>(ranges_.size());
    if (row_has_ranges && ranges_.back().hi >= lo) {
      HILO_CHECK(lo >= ranges_.back().lo, "RangeTable: ranges of row {} added out of order", row);
      ranges_.back().hi = std::max(ranges_.back().hi, hi);
    } else {
      HILO_CHECK(!row_has_ranges || lo > ranges_.back().hi, "RangeTable: ranges of row {} added out of order", row);
      ranges_.push_back({lo, hi});
    }
  }
  offsets_[row + 1] = static_cast<int64_t>(ranges_.size());
}

void RangeTable::finish_rows(int64_t rows_done) {
  while (open_row_ < rows_done) offsets_[++open_row_] = static_cast<int64_t>(ranges_.size());
}

void TopKResults::init(int64_t rows, int k_) {
  k = k_;
  pos.assign(rows * k, -1);
  keys.assign(rows * k, 0);
  count.assign(rows, 0);
}

EngineStats select_top_k(const QueryBatch& qb, const std::vector<Tile>& tiles, const RangeTable& ranges,
                         const EngineOptions& opt, TopKResults& out) {
  out.init(ranges.rows(), opt.k);
  const int threads = resolve_threads(opt.threads);

  // Split tiles into windows only when there are too few tiles to keep every thread busy.
  std::vector<Job> jobs;
  std::vector<int64_t> first_job(tiles.size() + 1, 0);
  const int64_t want = tiles.empty() ? 1 : (2 * threads + tiles.size() - 1) / tiles.size();
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    first_job[t] = static_cast<int64_t>(jobs.size());
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
    for (int i = 0; i < tiles[t].count; ++i) {
      const int64_t row = tiles[t].first + i;
      if (ranges.begin(row) != ranges.end(row)) {
        lo = std::min(lo, ranges.begin(row)->lo);
        hi = std::max(hi, (ranges.end(row) - 1)->hi);
      }
    }
    const int64_t windows = lo >= hi ? 1 : std::clamp<int64_t>((hi - lo) / kMinWindowKeys, 1, want);
    if (windows == 1) {
      jobs.push_back({static_cast<int64_t>(t), 0, std::numeric_limits<int64_t>::max()});
      continue;
    }
    const int64_t step = ((hi - lo + windows - 1) / windows + kSegmentKeys - 1) / kSegmentKeys * kSegmentKeys;
    for (int64_t w = lo / kSegmentKeys * kSegmentKeys; w < hi; w += step)
      jobs.push_back({static_cast<int64_t>(t), w, std::min(w + step, hi)});
  }
  first_job[tiles.size()] = static_cast<int64_t>(jobs.size());

  // Jobs of split tiles keep their partial lists here for the merge.
  std::vector<TopKResults> partial(jobs.size());
  std::vector<EngineStats> job_stats(jobs.size());
  auto progress = [&](int64_t done) {
    if (opt.progress) opt.progress(done, static_cast<int64_t>(jobs.size()));
  };
  parallel_for(
      static_cast<int64_t>(jobs.size()), opt.threads,
      [&](int64_t j) {
        const Job& job = jobs[j];
        const Tile& tile = tiles[job.tile];
        Scratch& s = thread_scratch();
        job_stats[j] = run_job(qb, tile, ranges, opt, job, s);
        const bool split = first_job[job.tile + 1] - first_job[job.tile] > 1;
        if (!split) {
          for (int i = 0; i < tile.count; ++i) store(s.collectors[i], out, tile.first + i);
        } else {
          partial[j].init(tile.count, opt.k);
          for (int i = 0; i < tile.count; ++i) store(s.collectors[i], partial[j], i);
        }
      },
      progress);

  // Merge the windows of split tiles in ascending window order (positions stay ascending).
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    if (first_job[t + 1] - first_job[t] <= 1) continue;
    TopKCollector merged;
    for (int i = 0; i < tiles[t].count; ++i) {
      merged.reset(opt.k);
      for (int64_t j = first_job[t]; j < first_job[t + 1]; ++j)
        merged.offer_keys(partial[j].row_keys(i), partial[j].row_pos(i), partial[j].count[i]);
      merged.finish();
      store(merged, out, tiles[t].first + i);
    }
  }
  EngineStats total;
  for (const auto& s : job_stats) {
    total.keys_packed += s.keys_packed;
    total.keys_scored += s.keys_scored;
  }
  return total;
}

}  // namespace hilo::hisa::detail
