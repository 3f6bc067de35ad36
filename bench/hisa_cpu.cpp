// CPU benchmark of the flat indexer vs HISA (prefill chunk and decode) and of the standalone top-k, on generated
// data, with the FMA peak of the machine measured in the same run. One line per shape; --json writes everything.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <numeric>
#include <random>

#include "cpu_peak.hpp"
#include "hilo/threads.hpp"
#include "hilo/topk.hpp"
#include "hisa_experiment.hpp"
#include "json_out.hpp"

namespace {
using hilo::bench::cpu_model;
using hilo::bench::median_ms;
using hilo::bench::today;

// Top-k of rows of random scores: hilo's radix select vs std::nth_element (both over rows in parallel).
nlohmann::json bench_topk(int64_t rows, int64_t len, int k, int threads, int repeat) {
  hilo::Tensor scores(hilo::DType::F32, {rows, len}), out(hilo::DType::I32, {rows, k});
  std::mt19937_64 gen(1);
  std::normal_distribution<float> dist;
  for (int64_t i = 0; i < rows * len; ++i) scores.ptr<float>()[i] = dist(gen);
  hilo::TopKOptions opt;
  opt.threads = threads;
  const double ours = median_ms(repeat, [&] { hilo::topk_rows(scores, k, out, {}, {}, opt); });
  std::vector<std::vector<int32_t>> idx(rows, std::vector<int32_t>(len));
  const double base = median_ms(repeat, [&] {
#pragma omp parallel for num_threads(hilo::resolve_threads(threads)) schedule(dynamic, 1)
    for (int64_t r = 0; r < rows; ++r) {
      const float* s = scores.ptr<float>() + r * len;
      auto& v = idx[r];
      std::iota(v.begin(), v.end(), 0);
      std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), [s](int32_t a, int32_t b) {
        return s[a] != s[b] ? s[a] > s[b] : a < b;
      });
    }
  });
  const double gbs = rows * len * 4.0 / (ours / 1e3) / 1e9;
  std::printf("topk   rows %4ld x %8ld  k %d: %9.3f ms (%6.2f GB/s of scores)  nth_element %9.3f ms  -> %5.2fx\n",
              static_cast<long>(rows), static_cast<long>(len), k, ours, gbs, base, base / ours);
  return {{"rows", rows}, {"len", len}, {"k", k}, {"ms", ours}, {"gbs", gbs}, {"nth_element_ms", base},
          {"speedup", base / ours}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU benchmark: flat DSA indexer vs HISA, and top-k"};
  std::vector<int64_t> contexts{8192, 16384, 32768, 65536, 131072};
  int64_t queries = 512;
  int batch = 8, repeat = 3, threads = 0;
  std::string json_path;
  bool skip_prefill = false, skip_decode = false, skip_topk = false;
  app.add_option("--contexts", contexts, "Context lengths")->delimiter(',')->capture_default_str();
  app.add_option("--queries", queries, "Prefill: queries at the end of the context")->capture_default_str();
  app.add_option("--batch", batch, "Decode: requests")->capture_default_str();
  app.add_option("--repeat", repeat, "Timed runs per measurement (median)")->capture_default_str();
  app.add_option("--threads", threads, "Threads (0 = all)")->capture_default_str();
  app.add_option("--json", json_path, "Write all results as JSON here");
  app.add_flag("--no-prefill", skip_prefill);
  app.add_flag("--no-decode", skip_decode);
  app.add_flag("--no-topk", skip_topk);
  CLI11_PARSE(app, argc, argv);

  const int nt = hilo::resolve_threads(threads);
  const double peak = hilo::bench::measure_fma_peak_gflops(nt);
  nlohmann::json all = {{"date", today()},
                        {"cpu", cpu_model()},
                        {"threads", nt},
                        {"kernel", hilo::hisa::cpu_kernel()},
                        {"fma_peak_gflops", peak},
                        {"command", std::string(argv[0]) + (argc > 1 ? " ..." : "")}};
  std::printf("%s | %s | %d threads | %s kernel | measured f32 FMA peak %.1f GFLOP/s\n", today().c_str(),
              cpu_model().c_str(), nt, hilo::hisa::cpu_kernel(), peak);

  for (const bool decode : {false, true}) {
    if ((decode && skip_decode) || (!decode && skip_prefill)) continue;
    std::printf("\n%s: H=64 D=128 fp8, topk 2048, B=128 m=64, %s\n", decode ? "decode" : "prefill",
                decode ? ("batch " + std::to_string(batch) + ", next_n 1").c_str()
                       : (std::to_string(queries) + " queries at the end of the context").c_str());
    std::printf("%8s %9s %8s %6s %9s %8s %9s %9s %9s %11s  %s\n", "context", "flat ms", "GFLOP/s", "%peak",
                "hisa ms", "speedup", "IoU mean", "IoU min", "blk-only", "needles", "hisa stages ms (pool/blocks/tokens)");
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t ctx : contexts) {
      hilo::cli::HisaExperiment exp;
      exp.synth.context = ctx;
      exp.synth.queries = std::min(queries, ctx);
      exp.decode = decode;
      exp.batch = batch;
      exp.repeat = repeat;
      exp.hisa.threads = threads;
      exp.progress = false;
      const auto r = hilo::cli::run_hisa_experiment(exp);
      const double gflops = r.flat_gflop / (r.flat_ms / 1e3);
      std::printf("%8ld %9.1f %8.1f %5.0f%% %9.1f %7.2fx %9.4f %9.4f %9.4f %5.2f/%4.2f  %.1f/%.1f/%.1f\n",
                  static_cast<long>(ctx), r.flat_ms, gflops, peak > 0 ? 100 * gflops / peak : 0.0, r.hisa_ms,
                  r.speedup, r.iou.mean, r.iou.min, r.block_only_iou.mean, r.needle_recall_flat.value_or(-1),
                  r.needle_recall_hisa.value_or(-1), r.stats.pool_ms, r.stats.block_ms, r.stats.token_ms);
      std::fflush(stdout);
      rows.push_back(hilo::cli::to_json(r, exp));
    }
    all[decode ? "decode" : "prefill"] = rows;
  }

  if (!skip_topk) {
    std::printf("\n");
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t len : {8192, 32768, 131072}) rows.push_back(bench_topk(64, len, 2048, threads, repeat));
    rows.push_back(bench_topk(8, 1 << 20, 2048, threads, repeat));
    all["topk"] = rows;
  }
  if (!json_path.empty()) {
    if (!hilo::bench::write_json(json_path, all, 2)) return 1;
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}
