// CPU benchmark of y = x . W^T straight from the packed formats (block-wise and LoRDS) against dense bf16 (hilo's
// tiled kernel) and dense f32 (Eigen), on Llama-3-8B shapes, with the machine's read bandwidth measured in the
// same run. Speed does not depend on the values, so layers hold random codes and factors of the right sizes.
#include <CLI/CLI.hpp>
#include <Eigen/Dense>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cpu_peak.hpp"
#include "hilo/dtype.hpp"
#include "hilo/lords.hpp"
#include "hilo/threads.hpp"
#include "json_out.hpp"
#include "lords_layers.hpp"

namespace {
using namespace hilo;
using namespace hilo::lords;
using hilo::bench::median_ms;
using hilo::bench::random_layer;
using hilo::bench::stored_bytes;

std::string fmt_name(Method m, int bits) { return to_string(m) + " nf" + std::to_string(bits); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"LoRDS / block-wise fused CPU matmul vs dense bf16 and f32"};
  int threads = 0, repeat = 7;
  std::string json_path;
  std::vector<int64_t> batches{1, 8, 64};
  std::vector<int> bit_widths{4, 3, 2};
  int block = 64;
  app.add_option("--threads", threads, "Threads (0 = all cores)");
  app.add_option("--repeat", repeat, "Timed runs (median reported)");
  app.add_option("--batch", batches, "Batch sizes")->capture_default_str();
  app.add_option("--bits", bit_widths, "Code widths")->capture_default_str();
  app.add_option("--block", block, "Block size (LoRDS: parity rank)")->capture_default_str();
  app.add_option("--json", json_path, "Write all results to this JSON file");
  CLI11_PARSE(app, argc, argv);
  const int nt = resolve_threads(threads);
  Eigen::setNbThreads(nt);
  const double bw = hilo::bench::measure_read_bandwidth_gbs(nt);
  std::printf("%s | %s | %d threads | measured read bandwidth %.1f GB/s\n", hilo::bench::today().c_str(),
              hilo::bench::cpu_model().c_str(), nt, bw);
  std::printf("%-11s %5s %-16s %9s %9s %8s %9s %9s\n", "shape", "batch", "method", "ms", "MB", "GB/s", "vs bf16",
              "bound ms");
  nlohmann::json rows = nlohmann::json::array();
  std::mt19937_64 gen(1);
  const std::vector<std::pair<int64_t, int64_t>> shapes{{4096, 4096}, {14336, 4096}, {4096, 14336}};
  for (const auto& [out_dim, in_dim] : shapes) {
    std::vector<uint16_t> wb(static_cast<std::size_t>(out_dim * in_dim));
    std::normal_distribution<float> n(0.0f, 0.02f);
    for (auto& v : wb) v = f32_to_bf16(n(gen));
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> wf(out_dim, in_dim);
    for (int64_t i = 0; i < wf.size(); ++i) wf.data()[i] = bf16_to_f32(wb[i]);
    std::vector<std::pair<std::string, QuantizedLinear>> layers;
    for (int bits : bit_widths)
      for (auto m : {Method::Blockwise, Method::Lords})
        layers.emplace_back(fmt_name(m, bits), random_layer(m, bits, block, out_dim, in_dim, gen));
    for (int64_t batch : batches) {
      std::vector<float> x(static_cast<std::size_t>(batch * in_dim)), y(static_cast<std::size_t>(batch * out_dim));
      for (auto& v : x) v = n(gen);
      auto report = [&](const std::string& method, double ms, std::size_t bytes, double bf16_ms) {
        const double gbs = bytes / ms / 1e6, bound = bytes / bw / 1e6;
        std::printf("%-11s %5ld %-16s %9.3f %9.1f %8.1f %8.2fx %9.3f\n",
                    (std::to_string(out_dim) + "x" + std::to_string(in_dim)).c_str(), static_cast<long>(batch),
                    method.c_str(), ms, bytes / 1e6, gbs, bf16_ms / ms, bound);
        rows.push_back({{"rows", out_dim}, {"cols", in_dim}, {"batch", batch}, {"method", method}, {"ms", ms},
                        {"weight_bytes", bytes}, {"gbs", gbs}, {"speedup_vs_bf16", bf16_ms / ms},
                        {"bandwidth_bound_ms", bound}});
      };
      const double bf16_ms = median_ms(repeat, [&] { matmul_bf16(wb.data(), out_dim, in_dim, x.data(), batch, y.data(), nt); });
      report("dense bf16", bf16_ms, wb.size() * 2, bf16_ms);
      const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> xm(x.data(), batch,
                                                                                                   in_dim);
      Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> ym(y.data(), batch, out_dim);
      const double f32_ms = median_ms(repeat, [&] { ym.noalias() = xm * wf.transpose(); });
      report("dense f32 eigen", f32_ms, wf.size() * 4, bf16_ms);
      for (const auto& [name, q] : layers) {
        const double ms = median_ms(repeat, [&] { matmul(q, x.data(), batch, y.data(), nt); });
        report(name, ms, stored_bytes(q), bf16_ms);
      }
    }
  }
  if (!json_path.empty() && !hilo::bench::write_json(json_path,
                                                     {{"date", hilo::bench::today()},
                                                      {"cpu", hilo::bench::cpu_model()},
                                                      {"threads", nt},
                                                      {"read_bandwidth_gbs", bw},
                                                      {"block", block},
                                                      {"results", rows}},
                                                     2))
    return 1;
  return 0;
}
