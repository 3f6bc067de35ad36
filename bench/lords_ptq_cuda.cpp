// LoRDS post-training quantisation with the Adam refinement on the GPU, on the Llama-3-8B linear shapes (synthetic
// weights, hilo::lords::synthetic_weight): seconds per tensor, milliseconds per refinement step, the bytes a step
// moves over the card's copy bandwidth, and the whole model's time (32 layers x q, k, v, o, gate, up, down).
// The fixed CPU part of a tensor (SVD initialisation, final codes, packing, the error report) is measured with
// steps = 0; the refinement is the rest. The CPU refinement of the same shape runs in the same process as the
// baseline (fewer steps: its per-step time is what is compared).
//   bench_lords_ptq [--bits 4] [--block 64] [--steps 500] [--cpu-steps 20] [--json FILE]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>

#include "hilo/cuda.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_data.hpp"
#include "json_out.hpp"

namespace {
using namespace hilo;

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int run(int bits, int block, int steps, int cpu_steps, double copy_gbs, const std::string& json_path,
        const std::vector<std::string>& shape_names);

int main(int argc, char** argv) {
  CLI::App app{"LoRDS GPU PTQ benchmark (Llama-3-8B shapes)"};
  int bits = 4, block = 64, steps = 500, cpu_steps = 20;
  double copy_gbs = 0;
  std::string json_path;
  std::vector<std::string> shape_names{"4096x4096", "1024x4096", "14336x4096", "4096x14336"};
  app.add_option("--bits", bits)->check(CLI::IsMember({2, 3, 4}));
  app.add_option("--block", block);
  app.add_option("--steps", steps)->check(CLI::Range(1, 100000));
  app.add_option("--cpu-steps", cpu_steps, "CPU baseline steps (0: none)")->check(CLI::Range(0, 100000));
  const CLI::Validator shape_format(
      [](std::string& v) {
        return std::regex_match(v, std::regex("[1-9][0-9]{0,6}x[1-9][0-9]{0,6}")) ? std::string()
                                                                                  : "'" + v + "' is not OUTxIN";
      },
      "OUTxIN");
  app.add_option("--shapes", shape_names, "OUTxIN, comma-separated")->delimiter(',')->check(shape_format);
  app.add_option("--copy-gbs", copy_gbs, "The card's measured copy bandwidth (GB/s, read + write) for the ratio");
  app.add_option("--json", json_path);
  CLI11_PARSE(app, argc, argv);
  try {
    return run(bits, block, steps, cpu_steps, copy_gbs, json_path, shape_names);
  } catch (const std::exception& e) {  // e.g. a shape whose input dimension the block does not divide
    fmt::print(stderr, "bench_lords_ptq: {}\n", e.what());
    return 1;
  }
}

int run(int bits, int block, int steps, int cpu_steps, double copy_gbs, const std::string& json_path,
        const std::vector<std::string>& shape_names) {
  if (cuda::device_count() == 0) {
    fmt::print(stderr, "no CUDA device\n");
    return 1;
  }
  // Tensors of each shape in one Llama-3-8B layer (32 layers).
  const std::map<std::string, int> per_layer{{"4096x4096", 2}, {"1024x4096", 2}, {"14336x4096", 2}, {"4096x14336", 1}};
  fmt::print("{}; NF{} B={} parity rank, Adam {} steps\n", cuda::device_description(0), bits, block, steps);
  fmt::print("{:>12} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10} {:>9}\n", "shape", "rank", "total s", "fixed s",
             "ms/step", "GB/s", "of copy", "rel_error", "cpu ms/st", "speedup");
  nlohmann::json rows = nlohmann::json::array();
  double model_seconds = 0;
  bool all_shapes = true;
  for (const auto& name : shape_names) {
    const auto x = name.find('x');
    const int64_t r = std::stoll(name.substr(0, x)), c = std::stoll(name.substr(x + 1));
    lords::WeightSynthConfig wc;
    wc.rows = r, wc.cols = c, wc.seed = 7;
    std::vector<float> w(static_cast<std::size_t>(r * c));
    lords::synthetic_weight(wc, w.data());
    const TensorView wv(w.data(), DType::F32, {r, c});
    lords::QuantConfig cfg;
    cfg.bits = bits, cfg.block = block, cfg.device = 0;
    lords::QuantReport rep;
    cfg.steps = 0;
    lords::quantize(wv, cfg);  // warm-up: context, allocator
    const double fixed = seconds_of([&] { lords::quantize(wv, cfg); });
    cfg.steps = steps;
    lords::QuantizedLinear q;
    const double total = seconds_of([&] { q = lords::quantize(wv, cfg, &rep); });
    const double step_ms = 1e3 * (total - fixed) / steps;
    // Per step: S written and read, W read, G written and read twice (the two gradient products), as f32.
    const double step_bytes = 6.0 * 4.0 * static_cast<double>(r * c);
    const double gbs = step_bytes / (step_ms * 1e-3) / 1e9;
    double cpu_step_ms = 0;
    if (cpu_steps > 0) {
      lords::QuantConfig cc = cfg;
      cc.device = -1, cc.steps = 0;
      const double cpu_fixed = seconds_of([&] { lords::quantize(wv, cc); });
      cc.steps = cpu_steps;
      const double cpu_total = seconds_of([&] { lords::quantize(wv, cc); });
      cpu_step_ms = 1e3 * (cpu_total - cpu_fixed) / cpu_steps;
    }
    fmt::print("{:>12} {:>5} {:>9.2f} {:>9.2f} {:>9.3f} {:>9.0f} {:>8} {:>10.5f} {:>10} {:>9}\n", name, q.rank, total,
               fixed, step_ms, gbs, copy_gbs > 0 ? fmt::format("{:.0f}%", 100 * gbs / copy_gbs) : "-", rep.rel_error,
               cpu_steps > 0 ? fmt::format("{:.2f}", cpu_step_ms) : "-",
               cpu_steps > 0 ? fmt::format("{:.1f}x", cpu_step_ms / step_ms) : "-");
    rows.push_back({{"shape", name}, {"rank", q.rank}, {"seconds", total}, {"fixed_seconds", fixed},
                    {"ms_per_step", step_ms}, {"gbs", gbs}, {"rel_error", rep.rel_error},
                    {"init_rel_error", rep.init_rel_error}, {"cpu_ms_per_step", cpu_step_ms}});
    if (auto it = per_layer.find(name); it != per_layer.end())
      model_seconds += 32.0 * it->second * total;
    else
      all_shapes = false;
  }
  if (all_shapes && shape_names.size() == per_layer.size())
    fmt::print("Llama-3-8B-shaped model (224 tensors, {} steps each): {:.0f} s = {:.1f} min on the GPU\n", steps,
               model_seconds, model_seconds / 60);
  if (!json_path.empty() &&
      !bench::write_json(json_path,
                         {{"device", cuda::device_description(0)}, {"bits", bits}, {"block", block}, {"steps", steps},
                          {"cpu_steps", cpu_steps}, {"shapes", rows}, {"model_seconds", model_seconds}},
                         2))
    return 1;
  return 0;
}
