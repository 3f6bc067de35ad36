// How many distinct blocks a tile of query rows keeps between them (the blocks HISA's token kernel scores for every
// row of the tile): tiles of consecutive rows, and tiles regrouped greedily inside windows of W rows (each tile
// seeded with the first unassigned row, then grown by the row that adds the fewest new blocks). It measured whether
// smaller or regrouped tiles could cut the token stage's union waste (docs/results/hisa-cuda.md, sixth session).
// Stage 1 on the CPU (block_only_prefill) on the generated data of docs/hisa.md (one causal sequence: ks = 0, so the
// returned positions are absolute).
//
// usage: bench_hisa_union_study [--context 65536] [--queries 1024] [--tiles 16,8] [--windows 32,64,128,256]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "hilo/hisa.hpp"
#include "hilo/hisa_data.hpp"

namespace {

using Blocks = std::vector<int>;  // a row's kept blocks, ascending

double union_size(const std::vector<Blocks>& kept, const std::vector<int>& rows) {
  std::set<int> u;
  for (int r : rows) u.insert(kept[r].begin(), kept[r].end());
  return static_cast<double>(u.size());
}

// Mean union over tiles of `tile` consecutive rows (whole tiles only).
double consecutive_union(const std::vector<Blocks>& kept, int tile) {
  double total = 0;
  int tiles = 0;
  for (int t = 0; t + tile <= static_cast<int>(kept.size()); t += tile, ++tiles) {
    std::vector<int> rows(tile);
    for (int i = 0; i < tile; ++i) rows[i] = t + i;
    total += union_size(kept, rows);
  }
  return tiles ? total / tiles : 0;
}

// Mean union over tiles regrouped greedily inside each window of `window` rows (whole windows only).
double regrouped_union(const std::vector<Blocks>& kept, int tile, int window) {
  double total = 0;
  int tiles = 0;
  for (int w0 = 0; w0 + window <= static_cast<int>(kept.size()); w0 += window) {
    std::vector<char> used(window, 0);
    for (int g = 0; g < window / tile; ++g, ++tiles) {
      const int seed = static_cast<int>(std::find(used.begin(), used.end(), 0) - used.begin());
      used[seed] = 1;
      std::set<int> u(kept[w0 + seed].begin(), kept[w0 + seed].end());
      for (int n = 1; n < tile; ++n) {
        int best = -1;
        std::size_t best_new = SIZE_MAX;
        for (int j = 0; j < window; ++j) {
          if (used[j]) continue;
          std::size_t fresh = 0;
          for (int b : kept[w0 + j]) fresh += u.count(b) == 0;
          if (fresh < best_new) best_new = fresh, best = j;
        }
        used[best] = 1;
        u.insert(kept[w0 + best].begin(), kept[w0 + best].end());
      }
      total += static_cast<double>(u.size());
    }
  }
  return tiles ? total / tiles : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Distinct blocks per tile of query rows: consecutive tiles against greedily regrouped ones"};
  hilo::hisa::SynthConfig cfg;
  cfg.queries = 1024;
  std::vector<int> tiles = {16, 8}, windows = {32, 64, 128, 256};
  app.add_option("--context", cfg.context, "Keys of the sequence")->check(CLI::Range(1024, 1 << 24));
  app.add_option("--queries", cfg.queries, "Queries at the end of the sequence")->check(CLI::Range(16, 1 << 20));
  app.add_option("--tiles", tiles, "Rows per tile")->delimiter(',')->check(CLI::Range(1, 32));
  app.add_option("--windows", windows, "Rows a regrouping may draw from")->delimiter(',')->check(CLI::Range(1, 1 << 20));
  CLI11_PARSE(app, argc, argv);
  if (cfg.queries > cfg.context) {
    std::fprintf(stderr, "--queries: %lld exceeds --context %lld\n", static_cast<long long>(cfg.queries),
                 static_cast<long long>(cfg.context));
    return 1;
  }

  const hilo::hisa::PrefillProblem problem = hilo::hisa::make_prefill_problem(cfg);
  hilo::hisa::HisaOptions opt;  // B = 128, m = 64
  opt.topk = opt.block * opt.blocks_kept;  // every token of the kept blocks
  hilo::Tensor idx(hilo::DType::I32, {cfg.queries, static_cast<int64_t>(opt.topk)});
  hilo::hisa::block_only_prefill(problem.inputs(), opt, idx.view());
  const int32_t* pos = idx.ptr<int32_t>();
  std::vector<Blocks> kept(static_cast<std::size_t>(cfg.queries));
  for (int64_t r = 0; r < cfg.queries; ++r) {
    for (int i = 0; i < opt.topk && pos[r * opt.topk + i] >= 0; ++i) {
      const int b = pos[r * opt.topk + i] / opt.block;  // ascending positions: each block's tokens are contiguous
      if (kept[r].empty() || kept[r].back() != b) kept[r].push_back(b);
    }
  }

  std::printf("context %lld, %lld queries at the end, B = %d, m = %d: distinct blocks per tile\n",
              static_cast<long long>(cfg.context), static_cast<long long>(cfg.queries), opt.block, opt.blocks_kept);
  std::printf("%6s %12s", "rows", "consecutive");
  for (int w : windows) std::printf(" %11s%-4d", "regrouped/", w);
  std::printf("\n");
  for (int t : tiles) {
    std::printf("%6d %12.1f", t, consecutive_union(kept, t));
    for (int w : windows) {
      if (w < t || w > cfg.queries)
        std::printf(" %15s", "-");
      else
        std::printf(" %15.1f", regrouped_union(kept, t, w));
    }
    std::printf("\n");
  }
  return 0;
}
