// Prefill entry points of the fast CPU path: one dense K shared by every query row.
#include <chrono>

#include "checks.hpp"
#include "indexer_cpu.hpp"

namespace hilo::hisa {
namespace {

using namespace detail;
constexpr int kPrefillTileRows = 16;

struct Prefill {
  PrefillShape shape;
  QueryBatch queries;
  RowRanges rows;
};

Prefill prepare(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx, std::string_view where) {
  Prefill p;
  p.shape = check_prefill(in, opt, idx, where);
  p.queries = {in.q.data(), in.q.dtype(), static_cast<const float*>(in.w.data()), static_cast<int>(p.shape.H),
               static_cast<int>(p.shape.D)};
  const auto* ks = static_cast<const int32_t*>(in.ks.data());
  const auto* ke = static_cast<const int32_t*>(in.ke.data());
  p.rows.ks.assign(ks, ks + p.shape.S);
  p.rows.ke.assign(ke, ke + p.shape.S);
  return p;
}

void write_rows(TopKResults& res, const Prefill& p, const IndexerOptions& opt, const TensorView& idx) {
  auto* out = static_cast<int32_t*>(idx.data());
  for (int64_t s = 0; s < p.shape.S; ++s) write_row(res, s, opt.topk, opt.sorted, p.rows.ks[s], out + s * opt.topk);
}

void run_hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx, HisaStats* stats,
                      bool block_only, std::string_view where) {
  Prefill p = prepare(in, opt, idx, where);
  check_hisa_options(opt, where, block_only);
  const auto t0 = std::chrono::steady_clock::now();
  const PooledKeys pooled = pool_keys(in.k, in.k_scale, opt.block, opt.pooled);
  const double pool_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const DenseKeySource pooled_src(pooled.codes.view().data(), pooled.codes.dtype(), pooled.codes.shape()[0],
                                  static_cast<int>(p.shape.D), pooled.scale.ptr<float>());
  const DenseKeySource key_src(in.k.data(), in.k.dtype(), p.shape.N, static_cast<int>(p.shape.D),
                               static_cast<const float*>(in.k_scale.data()));
  std::vector<Tile> pooled_tiles, key_tiles;
  append_tiles(pooled_tiles, 0, p.shape.S, kPrefillTileRows, &pooled_src);
  append_tiles(key_tiles, 0, p.shape.S, kPrefillTileRows, &key_src);
  TopKResults res = run_hisa(p.queries, p.rows, pooled_tiles, key_tiles, opt, stats, block_only);
  if (stats) stats->pool_ms = pool_ms;
  write_rows(res, p, opt, idx);
}

}  // namespace

void flat_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx) {
  Prefill p = prepare(in, opt, idx, "flat_prefill");
  const DenseKeySource key_src(in.k.data(), in.k.dtype(), p.shape.N, static_cast<int>(p.shape.D),
                               static_cast<const float*>(in.k_scale.data()));
  std::vector<Tile> tiles;
  append_tiles(tiles, 0, p.shape.S, kPrefillTileRows, &key_src);
  TopKResults res = run_flat(p.queries, p.rows, tiles, opt);
  write_rows(res, p, opt, idx);
}

void hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx, HisaStats* stats) {
  run_hisa_prefill(in, opt, idx, stats, false, "hisa_prefill");
}

void block_only_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx) {
  run_hisa_prefill(in, opt, idx, nullptr, true, "block_only_prefill");
}

}  // namespace hilo::hisa
