// GPU benchmark of the flat indexer vs HISA (prefill, decode) and of top-k, on generated data. The card's copy
// bandwidth is measured in the same run. One line per shape; --json writes everything.
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cuda_check.hpp"
#include "hilo/hisa.hpp"
#include "hilo/hisa_cuda.hpp"
#include "hilo/hisa_data.hpp"
#include "cuda/pdl.hpp"
#include "hisa/cuda/launch.hpp"
#include "json_out.hpp"

namespace {

using hilo::DType;
using hilo::Tensor;
using hilo::TensorView;

#define CHECK_CUDA(x) HILO_BENCH_CUDA(x)

class Dev {
 public:
  explicit Dev(const Tensor& t) : dtype_(t.dtype()), shape_(t.shape()), bytes_(t.nbytes()) {
    CHECK_CUDA(cudaMalloc(&p_, bytes_ ? bytes_ : 1));
    CHECK_CUDA(cudaMemcpy(p_, t.view().data(), bytes_, cudaMemcpyHostToDevice));
  }
  Dev(DType d, hilo::Shape s) : dtype_(d), shape_(std::move(s)) {
    bytes_ = hilo::dtype_size(d);
    for (auto x : shape_) bytes_ *= static_cast<size_t>(x);
    CHECK_CUDA(cudaMalloc(&p_, bytes_ ? bytes_ : 1));
  }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  operator TensorView() const { return TensorView(p_, dtype_, shape_, {}, hilo::Device{hilo::DeviceKind::CUDA, 0}); }
  Tensor host() const {
    Tensor t(dtype_, shape_);
    CHECK_CUDA(cudaMemcpy(t.view().data(), p_, bytes_, cudaMemcpyDeviceToHost));
    return t;
  }

 private:
  void* p_ = nullptr;
  DType dtype_;
  hilo::Shape shape_;
  size_t bytes_ = 0;
};

// Median over `repeat` samples of the time per call in ms, each sample `calls` calls of launch() on `stream` between
// two CUDA events.
template <typename F>
double median_event_ms(int repeat, cudaStream_t stream, int calls, F&& launch) {
  std::vector<float> t;
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  for (int i = 0; i < repeat; ++i) {
    CHECK_CUDA(cudaEventRecord(a, stream));
    for (int c = 0; c < calls; ++c) launch();
    CHECK_CUDA(cudaEventRecord(b, stream));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms / calls);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median time in ms of `repeat` single calls (after one warm-up) on the default stream.
template <typename F>
double time_ms(int repeat, F&& f) {
  f();
  CHECK_CUDA(cudaDeviceSynchronize());
  return median_event_ms(repeat, nullptr, 1, f);
}

// The serving setting of decode (vLLM and SGLang replay CUDA graphs): f(stream) captured once into a graph on a
// non-blocking stream; median over `repeat` samples of the time per replay, each sample 10 replays queued back to
// back (so the graph launch's host cost is overlapped, as in a captured model step).
template <typename F>
double graph_ms(int repeat, F&& f) {
  cudaStream_t s;
  CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  f(s);  // warm-up outside the capture (first-call allocations, pooled keys)
  CHECK_CUDA(cudaStreamSynchronize(s));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  f(s);
  CHECK_CUDA(cudaStreamEndCapture(s, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  CHECK_CUDA(cudaGraphLaunch(exec, s));
  CHECK_CUDA(cudaStreamSynchronize(s));
  const double ms = median_event_ms(repeat, s, 10, [&] { CHECK_CUDA(cudaGraphLaunch(exec, s)); });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  return ms;
}

double copy_bandwidth_gbs() {
  const size_t bytes = size_t{2} << 30;
  void *a, *b;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  CHECK_CUDA(cudaMemset(a, 1, bytes));
  const double ms = time_ms(5, [&] { CHECK_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (ms / 1e3) / 1e9;  // read + write
}

// Peak bytes of hilo's scratch pool during f (the call's scratch, in 32 MiB slabs).
template <typename F>
int64_t scratch_bytes(F&& f) {
  hilo::hisa::cuda_detail::scratch_high_water(true);
  f();
  CHECK_CUDA(cudaDeviceSynchronize());
  return hilo::hisa::cuda_detail::scratch_high_water(true);
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPU benchmark: flat DSA indexer vs HISA, and top-k"};
  std::vector<int64_t> contexts{8192, 16384, 32768, 65536, 131072};
  std::vector<int64_t> causal{8192, 16384, 32768, 65536};
  std::vector<int> batches{1, 8, 64, 128};
  std::vector<int64_t> decode_contexts{16384, 65536, 131072};
  int64_t chunk = 4096;
  int repeat = 5;
  std::string json_path;
  app.add_option("--contexts", contexts, "Contexts of the prefill chunk benchmark")->delimiter(',');
  app.add_option("--causal", causal, "Contexts of the full causal prefill (S = N)")->delimiter(',');
  app.add_option("--chunk", chunk, "Queries of the prefill chunk");
  app.add_option("--batches", batches, "Decode batches")->delimiter(',');
  app.add_option("--decode-contexts", decode_contexts, "Decode contexts")->delimiter(',');
  app.add_option("--repeat", repeat, "Timed runs (median)");
  app.add_option("--json", json_path, "Write results as JSON");
  int64_t flat_chunk_keys = 0;
  app.add_option("--flat-chunk-keys", flat_chunk_keys,
                 "Keys per merged chunk of the flat indexer (FlatTuning::chunk_keys; the row block keeps 64 MiB of "
                 "chunk scores); 0: the default")
      ->check(CLI::NonNegativeNumber);
  bool wide_mainloop = false;
  app.add_flag("--wide-mainloop", wide_mainloop,
               "Score with the wgmma mainloop's wide shape (FlatTuning::wide_mainloop: four warpgroups, banks of N = "
               "64; not yet measured)");
  bool flat_only = false, hisa_only = false;
  app.add_flag("--flat-only", flat_only,
               "Prefill: time only the flat call (default kernels, and the merge variants of TopkTuning), no HISA")
      ->excludes(app.add_flag("--hisa-only", hisa_only,
                              "Prefill: time only the HISA call with the default kernels (no flat, no A/B variants), "
                              "so that a profiler sees HISA's kernels alone"));
  std::vector<std::string> topk_shape_names{"64x8192", "64x32768", "64x131072", "8x1048576"};
  std::vector<int> topk_clusters{4};
  app.add_option("--topk-shapes", topk_shape_names, "Top-k shapes, ROWSxLEN")->delimiter(',');
  app.add_option("--topk-clusters", topk_clusters, "Cluster sizes (CTAs per row) tried besides the defaults")
      ->delimiter(',')
      ->check(CLI::Range(2, 8));
  std::vector<std::string> parts{"prefill", "decode", "topk"};
  app.add_option("--parts", parts, "Which benchmarks to run: prefill, decode, topk")
      ->delimiter(',')
      ->check(CLI::IsMember({"prefill", "decode", "topk"}));
  CLI11_PARSE(app, argc, argv);

  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  int runtime = 0;
  CHECK_CUDA(cudaRuntimeGetVersion(&runtime));
  const double bw = copy_bandwidth_gbs();
  nlohmann::json all = {{"date", today()}, {"gpu", prop.name}, {"sms", prop.multiProcessorCount},
                        {"cuda_runtime", runtime}, {"copy_bandwidth_gbs", bw}};
  std::printf("%s | %s, %d SMs | CUDA runtime %d | measured copy bandwidth %.0f GB/s\n", today().c_str(), prop.name,
              prop.multiProcessorCount, runtime, bw);

  hilo::hisa::HisaOptions opt;  // topk 2048, B 128, m 64, fp8 pooled
  opt.check_finite = false;     // serving setting: no validation pass, no synchronisation

  auto prefill_case = [&](int64_t context, int64_t queries, const char* kind) {
    hilo::hisa::SynthConfig cfg;
    cfg.context = context;
    cfg.queries = queries;
    const auto p = hilo::hisa::make_prefill_problem(cfg);
    Dev q(p.q), w(p.w), k(p.k), ks(p.k_scale), lo(p.ks), hi(p.ke);
    const hilo::hisa::PrefillInputs in{q, w, k, ks, lo, hi};
    Dev flat(DType::I32, {queries, opt.topk}), hisa_idx(DType::I32, {queries, opt.topk});
    // A/B of the scoring kernel for dense keys in the same process: mma.sync (the first version), then the default.
    double pairs = 0;
    for (int64_t s = 0; s < queries; ++s) pairs += p.ke.ptr<int32_t>()[s] - p.ks.ptr<int32_t>()[s];
    const double flops = 2.0 * 64 * 128 * pairs;
    if (hisa_only) {
      const double hisa_ms = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
      // And the block top-k on the CTA-per-row kernel instead of a warp per row (TopkTuning::tiny_rows), same process.
      auto& topk = hilo::hisa::cuda_detail::topk_tuning();
      topk.tiny_rows = false;
      const double cta_rows_ms = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
      topk.tiny_rows = true;
      hilo::hisa::HisaStats st;  // the stage split, from one more call (it synchronises between stages)
      hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx, nullptr, &st);
      std::printf("%-7s N=%7ld S=%6ld  hisa %8.3f ms (pool %.2f, blocks %.2f, tokens %.2f; HISA only) | block top-k "
                  "a CTA per row: %.3f ms\n",
                  kind, static_cast<long>(context), static_cast<long>(queries), hisa_ms, st.pool_ms, st.block_ms,
                  st.token_ms, cta_rows_ms);
      std::fflush(stdout);
      return nlohmann::json{{"kind", kind},          {"context", context},       {"queries", queries},
                            {"hisa_ms", hisa_ms},    {"pool_ms", st.pool_ms}, {"block_ms", st.block_ms},
                            {"token_ms", st.token_ms}, {"hisa_cta_row_topk_ms", cta_rows_ms}};
    }
    if (flat_only) {  // and, same process, the merges in two passes / at one CTA per SM (TopkTuning)
      auto& topk = hilo::hisa::cuda_detail::topk_tuning();
      const auto variant_ms = [&](bool hilo::hisa::cuda_detail::TopkTuning::*knob) {
        const bool saved = topk.*knob;
        topk.*knob = !saved;
        const double ms = time_ms(repeat, [&] { hilo::hisa::cuda::flat_prefill(in, opt, flat); });
        topk.*knob = saved;
        return ms;
      };
      const double two_pass_ms = variant_ms(&hilo::hisa::cuda_detail::TopkTuning::one_read);
      const double one_cta_ms = variant_ms(&hilo::hisa::cuda_detail::TopkTuning::two_ctas);
      const double flat_ms = time_ms(repeat, [&] { hilo::hisa::cuda::flat_prefill(in, opt, flat); });
      std::printf("%-7s N=%7ld S=%6ld  flat %9.3f ms %6.0f TFLOP/s (flat only) | merges in two passes %.3f ms | "
                  "merges at one CTA per SM %.3f ms\n",
                  kind, static_cast<long>(context), static_cast<long>(queries), flat_ms,
                  flops / (flat_ms / 1e3) / 1e12, two_pass_ms, one_cta_ms);
      std::fflush(stdout);
      return nlohmann::json{{"kind", kind},
                            {"context", context},
                            {"queries", queries},
                            {"flat_ms", flat_ms},
                            {"flat_tflops", flops / (flat_ms / 1e3) / 1e12},
                            {"flat_two_pass_merge_ms", two_pass_ms},
                            {"flat_one_cta_merge_ms", one_cta_ms}};
    }
    auto& tuning = hilo::hisa::cuda_detail::flat_tuning();
    const bool default_kernel = tuning.wgmma;
    tuning.wgmma = false;
    const double flat_mma_ms = time_ms(repeat, [&] { hilo::hisa::cuda::flat_prefill(in, opt, flat); });
    const double hisa_mma_ms = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
    tuning.wgmma = default_kernel;
    const double flat_ms = time_ms(repeat, [&] { hilo::hisa::cuda::flat_prefill(in, opt, flat); });
    const double hisa_ms = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
    // And the other tile-union kernel (FlatTuning::pair_union), same process.
    tuning.pair_union = !tuning.pair_union;
    const double hisa_other_union_ms = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
    tuning.pair_union = !tuning.pair_union;
    // And the top-k kernels with element-wise loads (TopkTuning::vector_loads off), same process.
    auto& topk_tune = hilo::hisa::cuda_detail::topk_tuning();
    topk_tune.vector_loads = false;
    const double flat_scalar_ms = time_ms(repeat, [&] { hilo::hisa::cuda::flat_prefill(in, opt, flat); });
    const double hisa_scalar_ms = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
    topk_tune.vector_loads = true;
    hilo::hisa::HisaStats st;
    hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx, nullptr, &st);
    const int64_t flat_scratch = scratch_bytes([&] { hilo::hisa::cuda::flat_prefill(in, opt, flat); });
    const int64_t hisa_scratch = scratch_bytes([&] { hilo::hisa::cuda::hisa_prefill(in, opt, hisa_idx); });
    const auto iou = hilo::hisa::iou(hisa_idx.host(), flat.host());
    std::printf("%-7s N=%7ld S=%6ld  flat %9.3f ms %6.0f TFLOP/s | hisa %8.3f ms (pool %.2f, blocks %.2f, tokens %.2f) "
                "%6.2fx | IoU %.4f/%.4f | scratch %.0f/%.0f MiB | mma.sync kernel: flat %.3f hisa %.3f ms | %s tile "
                "unions: hisa %.3f ms | element-wise top-k loads: flat %.3f hisa %.3f ms\n",
                kind, static_cast<long>(context), static_cast<long>(queries), flat_ms, flops / (flat_ms / 1e3) / 1e12,
                hisa_ms, st.pool_ms, st.block_ms, st.token_ms, flat_ms / hisa_ms, iou.mean, iou.min,
                flat_scratch / 1048576.0, hisa_scratch / 1048576.0, flat_mma_ms, hisa_mma_ms,
                tuning.pair_union ? "first" : "pair-sort", hisa_other_union_ms, flat_scalar_ms, hisa_scalar_ms);
    std::fflush(stdout);
    return nlohmann::json{{"kind", kind},          {"context", context},       {"queries", queries},
                          {"flat_ms", flat_ms},    {"flat_tflops", flops / (flat_ms / 1e3) / 1e12},
                          {"hisa_ms", hisa_ms},    {"speedup", flat_ms / hisa_ms},
                          {"pool_ms", st.pool_ms}, {"block_ms", st.block_ms}, {"token_ms", st.token_ms},
                          {"iou_mean", iou.mean},  {"iou_min", iou.min},      {"flat_scratch_bytes", flat_scratch},
                          {"hisa_scratch_bytes", hisa_scratch}, {"flat_mma_ms", flat_mma_ms},
                          {"hisa_mma_ms", hisa_mma_ms},         {"wgmma", default_kernel},
                          {"pair_union", tuning.pair_union},    {"hisa_other_union_ms", hisa_other_union_ms},
                          {"flat_scalar_topk_ms", flat_scalar_ms},  {"hisa_scalar_topk_ms", hisa_scalar_ms}};
  };
  if (flat_chunk_keys > 0) hilo::hisa::cuda_detail::flat_tuning().chunk_keys = flat_chunk_keys;
  hilo::hisa::cuda_detail::flat_tuning().wide_mainloop = wide_mainloop;
  const auto wanted = [&](const char* part) { return std::find(parts.begin(), parts.end(), part) != parts.end(); };
  if (!wanted("prefill")) contexts.clear(), causal.clear();
  std::erase(contexts, 0), std::erase(causal, 0);  // CLI11 parses an empty list ("--causal ''") as {0}
  if (!wanted("decode")) decode_contexts.clear();
  nlohmann::json prefill = nlohmann::json::array();
  for (int64_t c : contexts) prefill.push_back(prefill_case(c, std::min(chunk, c), "chunk"));
  for (int64_t c : causal) prefill.push_back(prefill_case(c, c, "causal"));
  all["prefill"] = prefill;

  nlohmann::json decode = nlohmann::json::array();
  for (int64_t context : decode_contexts) {
    for (int batch : batches) {
      hilo::hisa::SynthConfig cfg;
      cfg.context = context;
      const auto d = hilo::hisa::make_decode_problem(cfg, batch, 1);
      Dev q(d.q), w(d.w), cache(d.kv_cache), table(d.block_table), lens(d.context_lens);
      const hilo::hisa::DecodeInputs in{q, w, cache, table, lens};
      Dev fpos(DType::I32, {batch, opt.topk}), hpos(DType::I32, {batch, opt.topk});
      hilo::hisa::cuda::PooledKeyCache pooled(0, batch, static_cast<int>((context + 127) / 128), opt.block);
      // A/B in the same process: the mma.sync scoring kernels (before the decode wgmma kernel), and the checked
      // call (check_finite: a validation kernel and a synchronisation) against the serving setting.
      auto& tuning = hilo::hisa::cuda_detail::flat_tuning();
      tuning.wgmma = false;
      const double mma_flat = time_ms(repeat, [&] { hilo::hisa::cuda::flat_decode(in, opt, {fpos, {}}); });
      const double mma_hisa = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_decode(in, pooled, opt, {hpos, {}}); });
      tuning.wgmma = true;
      hilo::hisa::HisaOptions checked = opt;
      checked.check_finite = true;
      const double checked_flat = time_ms(repeat, [&] { hilo::hisa::cuda::flat_decode(in, checked, {fpos, {}}); });
      const double checked_hisa =
          time_ms(repeat, [&] { hilo::hisa::cuda::hisa_decode(in, pooled, checked, {hpos, {}}); });
      auto& topk_tune = hilo::hisa::cuda_detail::topk_tuning();
      topk_tune.short_rows = topk_tune.tiny_rows = false;  // and the general top-k kernel for HISA's short rows
      const double general_topk_hisa =
          time_ms(repeat, [&] { hilo::hisa::cuda::hisa_decode(in, pooled, opt, {hpos, {}}); });
      topk_tune.short_rows = topk_tune.tiny_rows = true;
      topk_tune.vector_loads = false;  // and the top-k kernels with element-wise loads
      const double scalar_flat = time_ms(repeat, [&] { hilo::hisa::cuda::flat_decode(in, opt, {fpos, {}}); });
      const double scalar_hisa = time_ms(repeat, [&] { hilo::hisa::cuda::hisa_decode(in, pooled, opt, {hpos, {}}); });
      topk_tune.vector_loads = true;
      // Flat and HISA, direct calls and graph replays.
      struct Times {
        double flat, hisa, flat_graph, hisa_graph;
      };
      const auto measure = [&] {
        return Times{time_ms(repeat, [&] { hilo::hisa::cuda::flat_decode(in, opt, {fpos, {}}); }),
                     time_ms(repeat, [&] { hilo::hisa::cuda::hisa_decode(in, pooled, opt, {hpos, {}}); }),
                     graph_ms(repeat, [&](cudaStream_t s) { hilo::hisa::cuda::flat_decode(in, opt, {fpos, {}}, s); }),
                     graph_ms(repeat, [&](cudaStream_t s) { hilo::hisa::cuda::hisa_decode(in, pooled, opt, {hpos, {}}, s); })};
      };
      bool& early = hilo::cuda_detail::pdl_enabled();
      const bool early_default = early;
      early = false;  // and every kernel launched plainly (no programmatic dependent launch)
      const Times plain = measure();
      early = early_default;
      std::printf("  mma.sync kernels: flat %.3f ms, hisa %.3f ms | checked call: flat %.3f ms, hisa %.3f ms | "
                  "general top-k: hisa %.3f ms | element-wise top-k loads: flat %.3f ms, hisa %.3f ms | plain "
                  "launches: flat %.3f ms, hisa %.3f ms (%.2fx), graph flat %.3f ms, hisa %.3f ms (%.2fx)\n",
                  mma_flat, mma_hisa, checked_flat, checked_hisa, general_topk_hisa, scalar_flat, scalar_hisa,
                  plain.flat, plain.hisa, plain.flat / plain.hisa, plain.flat_graph, plain.hisa_graph,
                  plain.flat_graph / plain.hisa_graph);
      const Times t = measure();
      const double flat_ms = t.flat, hisa_ms = t.hisa, flat_graph_ms = t.flat_graph, hisa_graph_ms = t.hisa_graph;
      std::printf("  CUDA graph replay: flat %.3f ms, hisa %.3f ms, %.2fx\n", flat_graph_ms, hisa_graph_ms,
                  flat_graph_ms / hisa_graph_ms);
      const auto iou = hilo::hisa::iou(hpos.host(), fpos.host());
      const double flat_bytes = double(batch) * context * 132;                 // every key row + scale
      const double hisa_bytes = double(batch) * ((context / 128) * 132 + 8192 * 132.0);  // pooled rows + kept tokens
      std::printf("decode N=%7ld batch %3d  flat %8.3f ms %6.0f GB/s (%3.0f%% of copy) | hisa %8.3f ms %6.0f GB/s | "
                  "%6.2fx | IoU %.4f/%.4f\n",
                  static_cast<long>(context), batch, flat_ms, flat_bytes / (flat_ms / 1e3) / 1e9,
                  100 * flat_bytes / (flat_ms / 1e3) / 1e9 / bw, hisa_ms, hisa_bytes / (hisa_ms / 1e3) / 1e9,
                  flat_ms / hisa_ms, iou.mean, iou.min);
      std::fflush(stdout);
      decode.push_back({{"context", context}, {"batch", batch}, {"flat_ms", flat_ms}, {"hisa_ms", hisa_ms},
                        {"flat_ms_mma_sync", mma_flat}, {"hisa_ms_mma_sync", mma_hisa},
                        {"flat_ms_checked", checked_flat}, {"hisa_ms_checked", checked_hisa},
                        {"hisa_ms_general_topk", general_topk_hisa}, {"flat_ms_scalar_topk", scalar_flat},
                        {"hisa_ms_scalar_topk", scalar_hisa}, {"flat_ms_plain_launch", plain.flat},
                        {"hisa_ms_plain_launch", plain.hisa}, {"flat_ms_graph_plain_launch", plain.flat_graph},
                        {"hisa_ms_graph_plain_launch", plain.hisa_graph}, {"flat_ms_graph", flat_graph_ms},
                        {"hisa_ms_graph", hisa_graph_ms}, {"speedup_graph", flat_graph_ms / hisa_graph_ms},
                        {"speedup", flat_ms / hisa_ms}, {"flat_gbs", flat_bytes / (flat_ms / 1e3) / 1e9},
                        {"hisa_gbs", hisa_bytes / (hisa_ms / 1e3) / 1e9}, {"iou_mean", iou.mean},
                        {"iou_min", iou.min}});
    }
  }
  all["decode"] = decode;

  nlohmann::json topk = nlohmann::json::array();
  std::vector<std::pair<int64_t, int64_t>> topk_shapes;
  for (const std::string& name : topk_shape_names) {
    long rows = 0, len = 0;
    if (std::sscanf(name.c_str(), "%ldx%ld", &rows, &len) != 2 || rows < 1 || len < 1) {
      std::fprintf(stderr, "--topk-shapes: '%s' is not ROWSxLEN\n", name.c_str());
      return 2;
    }
    topk_shapes.emplace_back(rows, len);
  }
  if (!wanted("topk")) topk_shapes.clear();
  for (const auto& [rows, len] : topk_shapes) {
    Tensor scores(DType::F32, {rows, len});
    std::mt19937 gen(1);
    std::normal_distribution<float> dist;
    float* s = scores.ptr<float>();
    for (int64_t i = 0; i < rows * len; ++i) s[i] = dist(gen);
    Dev ds(scores), out(DType::I32, {rows, opt.topk});
    auto& tune = hilo::hisa::cuda_detail::topk_tuning();
    const auto saved = tune;
    struct Strategy {
      std::string name;
      int64_t segment;
      int cluster;
      bool vector = true;
    };
    std::vector<Strategy> strategies{{"one CTA per row", 0, 1}, {"segments of 16K + merge", 16384, 1}};
    for (int c : topk_clusters) strategies.push_back({"cluster of " + std::to_string(c) + " CTAs per row", 0, c});
    strategies.push_back({"automatic, element-wise loads", -1, -1, false});
    strategies.push_back({"automatic (default)", -1, -1});
    for (const Strategy& st : strategies) {
      tune.segment = st.segment;
      tune.cluster = st.cluster;
      tune.vector_loads = st.vector;
      const double ms = time_ms(repeat, [&] { hilo::hisa::cuda::topk_rows(ds, opt.topk, out); });
      std::printf("topk   %3ld x %8ld  k %d: %8.1f us  %6.0f GB/s  (%s)\n", static_cast<long>(rows),
                  static_cast<long>(len), opt.topk, ms * 1e3, rows * len * 4.0 / (ms / 1e3) / 1e9, st.name.c_str());
      topk.push_back({{"rows", rows}, {"len", len}, {"us", ms * 1e3}, {"strategy", st.name}});
    }
    tune = saved;
  }
  all["topk"] = topk;
  if (!json_path.empty() && !hilo::bench::write_json(json_path, all, 2)) return 1;
  return 0;
}
