#include "hisa_experiment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "hilo/error.hpp"
#include "hilo/safetensors.hpp"
#include "hilo/threads.hpp"
#include "progress.hpp"

namespace hilo::cli {
namespace {

// Median wall time of `repeat` runs of f, in ms.
template <typename F>
double median_ms(int repeat, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < std::max(1, repeat); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Tensor load(const SafetensorsFile& f, const std::string& name) {
  const TensorEntry* e = f.find(name);
  if (!e) throw Error(fmt::format("--input '{}': no tensor '{}' (needs q, w, k, k_scale, ks, ke)", f.path(), name));
  return Tensor::copy_of(e->view());  // aligned copy: the file's data section may be unaligned
}

// Progress bars for one timed phase; the callback goes into the indexer options.
struct Phase {
  std::unique_ptr<ProgressBar> bar;
  Phase(bool show, const std::string& label) {
    if (show) bar = std::make_unique<ProgressBar>(label);
  }
  std::function<void(double)> callback() {
    if (!bar) return {};
    return [b = bar.get()](double f) { b->update(f); };
  }
};

std::string dtype_label(DType t) {
  return t == DType::F8_E4M3 ? "fp8" : t == DType::BF16 ? "bf16" : t == DType::F32 ? "f32" : std::string(dtype_name(t));
}

void run_prefill(const HisaExperiment& exp, HisaExperimentResult& r) {
  hisa::PrefillProblem p;
  if (!exp.input.empty()) {
    const auto f = SafetensorsFile::open(exp.input);
    p.q = load(f, "q"), p.w = load(f, "w"), p.k = load(f, "k"), p.k_scale = load(f, "k_scale");
    p.ks = load(f, "ks"), p.ke = load(f, "ke");
  } else {
    Phase gen(exp.progress, "generate");
    p = hisa::make_prefill_problem(exp.synth);
  }
  const hisa::PrefillInputs in = p.inputs();
  if (!exp.save_inputs.empty())
    write_safetensors(exp.save_inputs, {{"q", p.q}, {"w", p.w}, {"k", p.k}, {"k_scale", p.k_scale}, {"ks", p.ks},
                                        {"ke", p.ke}});
  if (in.q.ndim() != 3 || in.k.ndim() != 2)
    throw Error(fmt::format("--input: q must be [S, H, D] and k [N, D], got {} and {}", shape_string(in.q.shape()),
                            shape_string(in.k.shape())));
  r.rows = in.q.size(0), r.heads = in.q.size(1), r.dim = in.q.size(2), r.context = in.k.size(0);
  r.dtype = dtype_label(in.q.dtype());
  const int topk = exp.hisa.topk;
  Tensor flat(DType::I32, {r.rows, topk}), hisa_idx(DType::I32, {r.rows, topk}), block(DType::I32, {r.rows, topk});

  hisa::HisaOptions opt = exp.hisa;
  {
    Phase ph(exp.progress, "flat");
    opt.progress = ph.callback();
    r.flat_ms = median_ms(exp.repeat, [&] { hisa::flat_prefill(in, opt, flat); });
  }
  {
    Phase ph(exp.progress, "hisa");
    opt.progress = ph.callback();
    r.hisa_ms = median_ms(exp.repeat, [&] { hisa::hisa_prefill(in, opt, hisa_idx, &r.stats); });
  }
  opt.progress = {};
  std::vector<int64_t> base(r.rows);
  int64_t visible = 0;
  for (int64_t s = 0; s < r.rows; ++s) {
    base[s] = in.ks.ptr<int32_t>()[s];
    visible += in.ke.ptr<int32_t>()[s] - base[s];
  }
  r.flat_gflop = 2.0 * r.heads * r.dim * visible / 1e9;
  r.iou = hisa::iou(hisa_idx, flat);
  hisa::HisaOptions block_opt = exp.hisa;
  block_opt.blocks_kept = std::max(2, topk / exp.hisa.block);
  if (static_cast<int64_t>(block_opt.blocks_kept) * block_opt.block <= topk) {
    hisa::block_only_prefill(in, block_opt, block);
    r.block_only_iou = hisa::iou(block, flat);
  }
  if (exp.input.empty()) {
    r.needles = static_cast<int64_t>(p.needles.size());
    r.needle_recall_flat = hisa::needle_recall(flat, p.needles, base);
    r.needle_recall_hisa = hisa::needle_recall(hisa_idx, p.needles, base);
  }
  if (!exp.output.empty()) write_safetensors(exp.output, {{"flat_idx", flat}, {"hisa_idx", hisa_idx}});
}

void run_decode(const HisaExperiment& exp, HisaExperimentResult& r) {
  if (!exp.input.empty() || !exp.save_inputs.empty())
    throw Error("--input and --save-inputs are for --mode prefill (decode generates its paged cache)");
  hisa::DecodeProblem p;
  {
    Phase gen(exp.progress, "generate");
    p = hisa::make_decode_problem(exp.synth, exp.batch, exp.next_n);
  }
  const hisa::DecodeInputs in = p.inputs();
  r.rows = int64_t{exp.batch} * exp.next_n, r.heads = exp.synth.heads, r.dim = exp.synth.dim;
  r.context = exp.synth.context;
  r.dtype = dtype_label(exp.synth.dtype);
  const int topk = exp.hisa.topk;
  Tensor flat(DType::I32, {r.rows, topk}), hisa_idx(DType::I32, {r.rows, topk}), block(DType::I32, {r.rows, topk});
  Tensor flat_slots(DType::I32, {r.rows, topk}), hisa_slots(DType::I32, {r.rows, topk});
  hisa::HisaOptions opt = exp.hisa;
  r.flat_ms = median_ms(exp.repeat, [&] { hisa::flat_decode(in, opt, {flat, flat_slots}); });
  hisa::PooledKeyCache cache(exp.synth.dim, opt.block, opt.pooled);
  // The first call pools every block of every request; later calls only pool appended tokens (none here).
  r.cache_build_ms = median_ms(1, [&] { hisa::hisa_decode(in, cache, opt, {hisa_idx, hisa_slots}); });
  r.hisa_ms = median_ms(exp.repeat, [&] { hisa::hisa_decode(in, cache, opt, {hisa_idx, hisa_slots}, &r.stats); });
  int64_t visible = 0;
  for (int64_t row = 0; row < r.rows; ++row) visible += exp.synth.context - exp.next_n + row % exp.next_n + 1;
  r.flat_gflop = 2.0 * r.heads * r.dim * visible / 1e9;
  r.iou = hisa::iou(hisa_idx, flat);
  hisa::HisaOptions block_opt = exp.hisa;
  block_opt.blocks_kept = std::max(2, topk / exp.hisa.block);
  if (static_cast<int64_t>(block_opt.blocks_kept) * block_opt.block <= topk) {
    hisa::PooledKeyCache block_cache(exp.synth.dim, opt.block, opt.pooled);
    hisa::block_only_decode(in, block_cache, block_opt, {block, {}});
    r.block_only_iou = hisa::iou(block, flat);
  }
  const std::vector<int64_t> base(r.rows, 0);
  r.needles = static_cast<int64_t>(p.needles.size());
  r.needle_recall_flat = hisa::needle_recall(flat, p.needles, base);
  r.needle_recall_hisa = hisa::needle_recall(hisa_idx, p.needles, base);
  if (!exp.output.empty())
    write_safetensors(exp.output, {{"flat_idx", flat}, {"hisa_idx", hisa_idx}, {"flat_slots", flat_slots},
                                   {"hisa_slots", hisa_slots}});
}

nlohmann::json optional_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

std::string optional_text(const std::optional<double>& v) { return v ? fmt::format("{:.3f}", *v) : "n/a"; }

}  // namespace

HisaExperimentResult run_hisa_experiment(const HisaExperiment& exp) {
  HisaExperimentResult r;
  r.mode = exp.decode ? "decode" : "prefill";
  r.threads = resolve_threads(exp.hisa.threads);
  r.kernel = hisa::cpu_kernel();
  if (exp.decode)
    run_decode(exp, r);
  else
    run_prefill(exp, r);
  r.speedup = r.hisa_ms > 0 ? r.flat_ms / r.hisa_ms : 0;
  r.hisa_gflop = 2.0 * r.heads * r.dim * r.rows * (r.stats.mean_blocks_scored + r.stats.mean_candidates) / 1e9;
  return r;
}

nlohmann::json to_json(const HisaExperimentResult& r, const HisaExperiment& exp) {
  return {
      {"mode", r.mode},
      {"dtype", r.dtype},
      {"context", r.context},
      {"rows", r.rows},
      {"heads", r.heads},
      {"dim", r.dim},
      {"topk", exp.hisa.topk},
      {"block", exp.hisa.block},
      {"blocks", exp.hisa.blocks_kept},
      {"pooled", hisa::to_string(exp.hisa.pooled)},
      {"threads", r.threads},
      {"kernel", r.kernel},
      {"seed", exp.synth.seed},
      {"flat_ms", r.flat_ms},
      {"hisa_ms", r.hisa_ms},
      {"speedup", r.speedup},
      {"flat_gflops", r.flat_ms > 0 ? r.flat_gflop / (r.flat_ms / 1e3) : 0},
      {"hisa_gflops", r.hisa_ms > 0 ? r.hisa_gflop / (r.hisa_ms / 1e3) : 0},
      {"iou_mean", r.iou.mean},
      {"iou_min", r.iou.min},
      {"block_only_iou_mean", r.block_only_iou.mean},
      {"block_only_iou_min", r.block_only_iou.min},
      {"needles", r.needles},
      {"needle_recall_flat", optional_json(r.needle_recall_flat)},
      {"needle_recall_hisa", optional_json(r.needle_recall_hisa)},
      {"cache_build_ms", r.cache_build_ms},
      {"stages_ms", {{"pool", r.stats.pool_ms}, {"blocks", r.stats.block_ms}, {"tokens", r.stats.token_ms}}},
      {"blocks_kept_per_query", r.stats.mean_blocks_kept},
      {"blocks_scored_per_query", r.stats.mean_blocks_scored},
      {"tokens_scored_per_query", r.stats.mean_candidates},
      {"tile_queries", r.stats.mean_tile_queries},
      {"tile_union_blocks", r.stats.mean_tile_union_blocks},
  };
}

std::string to_table(const HisaExperimentResult& r, const HisaExperiment& exp) {
  std::string out = fmt::format(
      "hilo hisa: {}, context {}, {} {}, H={} D={}, {}, topk {}, B={} m={}, pooled {}, {} threads ({} kernel)\n\n",
      r.mode, r.context, r.rows, r.mode == "decode" ? "query rows" : "queries", r.heads, r.dim, r.dtype, exp.hisa.topk,
      exp.hisa.block, exp.hisa.blocks_kept, hisa::to_string(exp.hisa.pooled), r.threads, r.kernel);
  out += fmt::format("{:<11}{:>10}{:>10}{:>9}{:>10}{:>9}{:>15}\n", "indexer", "time ms", "GFLOP/s", "speedup",
                     "IoU mean", "IoU min", "needle recall");
  auto rate = [](double gflop, double ms) { return ms > 0 ? gflop / (ms / 1e3) : 0.0; };
  out += fmt::format("{:<11}{:>10.1f}{:>10.1f}{:>8.2f}x{:>10}{:>9}{:>15}\n", "flat", r.flat_ms,
                     rate(r.flat_gflop, r.flat_ms), 1.0, "-", "-", optional_text(r.needle_recall_flat));
  out += fmt::format("{:<11}{:>10.1f}{:>10.1f}{:>8.2f}x{:>10.4f}{:>9.4f}{:>15}\n", "hisa", r.hisa_ms,
                     rate(r.hisa_gflop, r.hisa_ms), r.speedup, r.iou.mean, r.iou.min,
                     optional_text(r.needle_recall_hisa));
  out += fmt::format("{:<11}{:>10}{:>10}{:>9}{:>10.4f}{:>9.4f}{:>15}\n", "block-only", "-", "-", "-",
                     r.block_only_iou.mean, r.block_only_iou.min, "-");
  out += fmt::format("\nHISA stages: pool {:.1f} ms, blocks {:.1f} ms, tokens {:.1f} ms", r.stats.pool_ms,
                     r.stats.block_ms, r.stats.token_ms);
  if (r.mode == "decode") out += fmt::format(" (cache built once in {:.1f} ms)", r.cache_build_ms);
  out += fmt::format(
      "\nper query: {:.0f} blocks and {:.0f} tokens scored, {:.1f} blocks kept; tiles of {:.1f} queries score "
      "{:.1f} distinct blocks\n",
      r.stats.mean_blocks_scored, r.stats.mean_candidates, r.stats.mean_blocks_kept, r.stats.mean_tile_queries,
      r.stats.mean_tile_union_blocks);
  if (r.needles > 0) out += fmt::format("needles: {} (query, needle) pairs planted\n", r.needles);
  return out;
}

}  // namespace hilo::cli
