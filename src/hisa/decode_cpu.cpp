// Decode entry points of the fast CPU path: one paged key source per request; a request's next_n query rows form
// a tile, so they share every key they both see.
#include <chrono>

#include "../core/check.hpp"
#include "checks.hpp"
#include "indexer_cpu.hpp"

namespace hilo::hisa {
namespace {

using namespace detail;
constexpr int kDecodeTileRows = 16;

struct Decode {
  DecodeShape shape;
  QueryBatch queries;
  RowRanges rows;
  std::vector<PagedKeySource> sources;
  std::vector<Tile> key_tiles;
};

Decode prepare(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out, std::string_view where) {
  Decode d;
  d.shape = check_decode(in, opt, out, where, /*scan_cache=*/false);
  const DecodeShape& s = d.shape;
  d.queries = {in.q.data(), in.q.dtype(), static_cast<const float*>(in.w.data()), static_cast<int>(s.H),
               static_cast<int>(s.D)};
  const auto* cache = static_cast<const uint8_t*>(in.kv_cache.data());
  const auto* table = static_cast<const int32_t*>(in.block_table.data());
  d.sources.reserve(s.batch);
  for (int64_t r = 0; r < s.batch; ++r) {
    d.sources.emplace_back(cache, static_cast<int>(s.D), table + r * s.max_pages, decode_request_length(in, s, r));
    if (opt.check_finite) d.sources.back().check_on_read(where, r);
    for (int64_t j = 0; j < s.next_n; ++j) {
      d.rows.ks.push_back(0);
      d.rows.ke.push_back(decode_visible(in, s, r, j));
    }
  }
  for (int64_t r = 0; r < s.batch; ++r) append_tiles(d.key_tiles, r * s.next_n, s.next_n, kDecodeTileRows, &d.sources[r]);
  return d;
}

void write_outputs(TopKResults& res, const Decode& d, const DecodeInputs& in, const IndexerOptions& opt,
                   const DecodeOutputs& out) {
  const auto* table = static_cast<const int32_t*>(in.block_table.data());
  for (int64_t row = 0; row < d.shape.batch * d.shape.next_n; ++row) {
    const int64_t r = row / d.shape.next_n;
    int32_t* pos = out.positions.empty() ? nullptr : static_cast<int32_t*>(out.positions.data()) + row * opt.topk;
    std::vector<int32_t> local;
    if (!pos) {
      local.resize(opt.topk);
      pos = local.data();
    }
    write_row(res, row, opt.topk, opt.sorted, 0, pos);
    if (!out.slots.empty()) {
      int32_t* slot = static_cast<int32_t*>(out.slots.data()) + row * opt.topk;
      for (int i = 0; i < opt.topk; ++i)
        slot[i] = pos[i] < 0 ? -1 : table[r * d.shape.max_pages + pos[i] / kPageSize] * kPageSize + pos[i] % kPageSize;
    }
  }
}

}  // namespace

void flat_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out) {
  Decode d = prepare(in, opt, out, "flat_decode");
  TopKResults res = run_flat(d.queries, d.rows, d.key_tiles, opt);
  write_outputs(res, d, in, opt, out);
}

namespace {

void run_hisa_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt, const DecodeOutputs& out,
                     HisaStats* stats, bool block_only, std::string_view where) {
  Decode d = prepare(in, opt, out, where);
  check_hisa_options(opt, where, block_only);
  HILO_CHECK(cache.head_dim() == d.shape.D && cache.block() == opt.block && cache.format() == opt.pooled,
             "{}: the pooled cache (head_dim {}, block {}, {}) does not match the call (head_dim {}, block {}, {})",
             where, cache.head_dim(), cache.block(), to_string(cache.format()), d.shape.D, opt.block,
             to_string(opt.pooled));
  const auto t0 = std::chrono::steady_clock::now();
  const auto* table = static_cast<const int32_t*>(in.block_table.data());
  std::vector<DenseKeySource> pooled;
  pooled.reserve(d.shape.batch);
  for (int64_t r = 0; r < d.shape.batch; ++r) {
    cache.update(static_cast<int>(r), in.kv_cache, table + r * d.shape.max_pages, d.shape.max_pages,
                 d.sources[r].size());
    const TensorView codes = cache.codes(static_cast<int>(r));
    pooled.emplace_back(codes.data(), codes.dtype(), codes.size(0), static_cast<int>(d.shape.D),
                        static_cast<const float*>(cache.scales(static_cast<int>(r)).data()));
  }
  const double pool_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<Tile> pooled_tiles = d.key_tiles;
  for (auto& t : pooled_tiles) t.source = &pooled[t.first / d.shape.next_n];
  TopKResults res = run_hisa(d.queries, d.rows, pooled_tiles, d.key_tiles, opt, stats, block_only);
  if (stats) stats->pool_ms = pool_ms;
  write_outputs(res, d, in, opt, out);
}

}  // namespace

void hisa_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt, const DecodeOutputs& out,
                 HisaStats* stats) {
  run_hisa_decode(in, cache, opt, out, stats, false, "hisa_decode");
}

void block_only_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt,
                       const DecodeOutputs& out) {
  run_hisa_decode(in, cache, opt, out, nullptr, true, "block_only_decode");
}

}  // namespace hilo::hisa
