// The flat and HISA algorithms on top of the selection engine, shared by prefill (one dense K) and decode (one
// paged source per request). Rows are query rows; each sees keys [ks[row], ke[row]) of its tile's source.
#pragma once

#include <vector>

#include "engine.hpp"
#include "hilo/hisa.hpp"

namespace hilo::hisa::detail {

struct RowRanges {
  std::vector<int64_t> ks, ke;
};

TopKResults run_flat(const QueryBatch& queries, const RowRanges& rows, const std::vector<Tile>& key_tiles,
                     const IndexerOptions& opt);

// pooled_tiles and key_tiles group the rows identically; pooled_tiles' sources hold the pooled block keys.
// With block_only, stage 1 keeps opt.blocks_kept blocks and every visible token in them is returned (no token
// scoring; the keys of the results are 0).
TopKResults run_hisa(const QueryBatch& queries, const RowRanges& rows, const std::vector<Tile>& pooled_tiles,
                     const std::vector<Tile>& key_tiles, const HisaOptions& opt, HisaStats* stats,
                     bool block_only = false);

// Writes row r of `res` as topk int32 values: position - base, by score if sorted, -1 padded.
void write_row(TopKResults& res, int64_t r, int topk, bool sorted, int64_t base, int32_t* dst);

// Consecutive rows [first, first + count) cut into tiles of at most `tile_rows` sharing one source.
void append_tiles(std::vector<Tile>& tiles, int64_t first, int64_t count, int tile_rows, const KeySource* source);

}  // namespace hilo::hisa::detail
