#include "indexer_cpu.hpp"

#include <algorithm>
#include <chrono>

#include "select.hpp"

namespace hilo::hisa::detail {
using hilo::detail::TopKCollector;
using hilo::detail::sort_by_score;
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Which blocks query row sees, and whether stage 1 must choose among them.
struct BlockPlan {
  int64_t first, last;  // eligible blocks [first, last]; none when first > last
  bool select;          // more than m eligible blocks and more than topk visible keys
};

BlockPlan plan_blocks(int64_t ks, int64_t ke, const HisaOptions& opt) {
  if (ks >= ke) return {1, 0, false};
  const int64_t first = ks / opt.block, last = (ke + opt.block - 1) / opt.block - 1;
  const bool select = last - first + 1 > opt.blocks_kept && ke - ks > opt.topk;
  return {first, last, select};
}

std::function<void(int64_t, int64_t)> engine_progress(const IndexerOptions& opt, double from, double to) {
  if (!opt.progress) return {};
  return [&opt, from, to](int64_t done, int64_t total) { opt.progress(from + (to - from) * done / total); };
}

}  // namespace

void append_tiles(std::vector<Tile>& tiles, int64_t first, int64_t count, int tile_rows, const KeySource* source) {
  for (int64_t i = 0; i < count; i += tile_rows)
    tiles.push_back({first + i, static_cast<int>(std::min<int64_t>(tile_rows, count - i)), source});
}

TopKResults run_flat(const QueryBatch& queries, const RowRanges& rows, const std::vector<Tile>& key_tiles,
                     const IndexerOptions& opt) {
  const int64_t n = static_cast<int64_t>(rows.ks.size());
  RangeTable ranges(n);
  for (int64_t r = 0; r < n; ++r) ranges.add(r, rows.ks[r], rows.ke[r]);
  ranges.finish_rows(n);
  TopKResults res;
  select_top_k(queries, key_tiles, ranges, {opt.topk, opt.threads, score_kernel(), engine_progress(opt, 0, 1)}, res);
  return res;
}

TopKResults run_hisa(const QueryBatch& queries, const RowRanges& rows, const std::vector<Tile>& pooled_tiles,
                     const std::vector<Tile>& key_tiles, const HisaOptions& opt, HisaStats* stats, bool block_only) {
  const int64_t n = static_cast<int64_t>(rows.ks.size());
  std::vector<BlockPlan> plans(n);
  for (int64_t r = 0; r < n; ++r) plans[r] = plan_blocks(rows.ks[r], rows.ke[r], opt);

  // Stage 1: block scores of the middle eligible blocks; keep the best m - 2 (first and last are forced).
  auto t0 = std::chrono::steady_clock::now();
  RangeTable block_ranges(n);
  for (int64_t r = 0; r < n; ++r)
    if (plans[r].select) block_ranges.add(r, plans[r].first + 1, plans[r].last);
  block_ranges.finish_rows(n);
  TopKResults kept;
  const EngineStats block_stats = select_top_k(queries, pooled_tiles, block_ranges,
               {opt.blocks_kept - 2, opt.threads, score_kernel(), engine_progress(opt, 0, 0.2)}, kept);
  const double block_ms = ms_since(t0);

  // Stage 2: the visible tokens of the kept blocks.
  t0 = std::chrono::steady_clock::now();
  RangeTable token_ranges(n);
  double blocks_kept = 0;
  int64_t rows_with_keys = 0;
  for (int64_t r = 0; r < n; ++r) {
    const BlockPlan& p = plans[r];
    const int64_t ks = rows.ks[r], ke = rows.ke[r];
    if (p.first > p.last) continue;
    ++rows_with_keys;
    if (!p.select) {
      token_ranges.add(r, ks, ke);
      blocks_kept += static_cast<double>(p.last - p.first + 1);
      continue;
    }
    auto add_block = [&](int64_t b) {
      token_ranges.add(r, std::max(b * opt.block, ks), std::min((b + 1) * opt.block, ke));
    };
    add_block(p.first);
    for (int i = 0; i < kept.count[r]; ++i) add_block(kept.row_pos(r)[i]);
    add_block(p.last);
    blocks_kept += 2 + kept.count[r];
  }
  token_ranges.finish_rows(n);

  TopKResults res;
  EngineStats es;
  if (block_only) {
    res.init(n, opt.topk);
    for (int64_t r = 0; r < n; ++r) {
      int c = 0;
      for (const Range* g = token_ranges.begin(r); g != token_ranges.end(r); ++g)
        for (int64_t x = g->lo; x < g->hi && c < opt.topk; ++x) res.row_pos(r)[c++] = static_cast<int32_t>(x);
      res.count[r] = c;
    }
  } else {
    es = select_top_k(queries, key_tiles, token_ranges,
                      {opt.topk, opt.threads, score_kernel(), engine_progress(opt, 0.2, 1)}, res);
  }
  if (stats) {
    stats->block_ms = block_ms;
    stats->token_ms = ms_since(t0);
    stats->mean_blocks_kept = rows_with_keys ? blocks_kept / rows_with_keys : 0;
    stats->mean_blocks_scored = n ? static_cast<double>(block_stats.keys_scored) / n : 0;
    stats->mean_candidates = n ? static_cast<double>(es.keys_scored) / n : 0;
    stats->mean_tile_queries = key_tiles.empty() ? 0 : static_cast<double>(n) / key_tiles.size();
    stats->mean_tile_union_blocks =
        key_tiles.empty() ? 0 : static_cast<double>(es.keys_packed) / opt.block / key_tiles.size();
  }
  return res;
}

void write_row(TopKResults& res, int64_t r, int topk, bool sorted, int64_t base, int32_t* dst) {
  const int c = res.count[r];
  if (sorted) sort_by_score(res.row_keys(r), res.row_pos(r), c);
  const int32_t* pos = res.row_pos(r);
  for (int i = 0; i < c; ++i) dst[i] = static_cast<int32_t>(pos[i] - base);
  std::fill(dst + c, dst + topk, -1);
}

}  // namespace hilo::hisa::detail
