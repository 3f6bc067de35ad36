// GPU matmul from the packed format (block-wise and LoRDS) on the Llama-3-8B shapes: microseconds per call, GB/s of
// stored weight bytes and the ratio to the copy-bandwidth floor. Timing: 100 calls captured in one CUDA graph (as
// serving engines run them; the host's launch rate would otherwise bound microsecond kernels) between two CUDA
// events, cycling through >= 256 MB of weight copies so L2 (50-60 MB) never holds the next one; median of 5. Random
// codes and factors: speed does not depend on the values. "read us" is the streaming floor measured in the same
// harness: a kernel that only reads the layer's stored bytes (stream_read.hpp), launched plainly and ("pdl") by
// programmatic dependent launch, as the batch-1 GEMVs are unless HILO_PDL=0.
//   bench_lords_cuda [--bits 4] [--block 64] [--batches 1,16] [--json FILE]
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "hilo/cuda.hpp"
#include "hilo/dtype.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"
#include "json_out.hpp"
#include "lords_layers.hpp"
#include "stream_read.hpp"

namespace {
using namespace hilo;
using hilo::bench::random_layer;
using hilo::bench::stored_bytes;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"LoRDS / block-wise CUDA matmul benchmark"};
  int bits = 4, block = 64;
  std::vector<int64_t> batches{1, 16, 64};
  std::string json_path;
  app.add_option("--bits", bits)->check(CLI::IsMember({2, 3, 4}));
  app.add_option("--block", block);
  app.add_option("--batches", batches)->delimiter(',');
  app.add_option("--json", json_path);
  std::vector<std::string> shape_names{"4096x4096", "1024x4096", "14336x4096", "4096x14336"};
  std::vector<std::string> methods{"blockwise", "lords"};
  app.add_option("--shapes", shape_names, "OUTxIN, comma-separated")->delimiter(',');
  app.add_option("--methods", methods)->delimiter(',')->check(CLI::IsMember({"blockwise", "lords"}));
  CLI11_PARSE(app, argc, argv);
  if (cuda::device_count() == 0) {
    fmt::print(stderr, "no CUDA device\n");
    return 1;
  }
  std::mt19937_64 gen(1);
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  // Copy bandwidth (read + write) of 1 GiB, the floor's yardstick.
  void *src = nullptr, *dst = nullptr;
  const std::size_t copy_bytes = std::size_t{1} << 30;
  cudaMalloc(&src, copy_bytes);
  cudaMalloc(&dst, copy_bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaMemcpy(dst, src, copy_bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e0);
  for (int i = 0; i < 10; ++i) cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e1);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  const double copy_gbs = 2.0 * copy_bytes * 10 / (ms * 1e-3) / 1e9;
  cudaFree(src);
  cudaFree(dst);
  fmt::print("{}; copy bandwidth {:.0f} GB/s; NF{} B={} (LoRDS at parity rank)\n", cuda::device_description(0),
             copy_gbs, bits, block);
  fmt::print("{:>12} {:>6} {:>10} {:>5} {:>10} {:>8} {:>10} {:>8} {:>8} {:>8}\n", "shape", "batch", "method", "rank", "us",
             "GB/s", "floor us", "read us", "read pdl", "TFLOP/s");
  // Median over 5 replays of a graph of kCalls calls of call(i), in microseconds per call.
  constexpr int kCalls = 100;
  const auto time_graph = [&](const std::function<void(int)>& call) {
    for (int i = 0; i < 10; ++i) call(i);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
    for (int i = 0; i < kCalls; ++i) call(i);
    cudaStreamEndCapture(stream, &graph);
    cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphLaunch(exec, stream);
    std::vector<double> times;
    for (int rep = 0; rep < 5; ++rep) {
      cudaEventRecord(e0, stream);
      cudaGraphLaunch(exec, stream);
      cudaEventRecord(e1, stream);
      cudaEventSynchronize(e1);
      cudaEventElapsedTime(&ms, e0, e1);
      times.push_back(ms * 1e3 / kCalls);
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    std::sort(times.begin(), times.end());
    return times[2];
  };
  unsigned* sink = nullptr;
  cudaMalloc(&sink, 16);
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& shape : shape_names)
    for (const std::string& method_name : methods) {
      const auto x_at = shape.find('x');
      const int64_t r = std::stoll(shape.substr(0, x_at)), c = std::stoll(shape.substr(x_at + 1));
      const lords::Method method = lords::parse_method(method_name);
      const auto q = random_layer(method, bits, block, r, c, gen);
      const int copies = static_cast<int>(std::max<double>(2, (256.0 * (1 << 20)) / stored_bytes(q) + 1));
      std::vector<lords::cuda::DeviceLinear> layers;
      for (int i = 0; i < copies; ++i) layers.emplace_back(q);
      // The streaming floor over the same number of copies of the layer's stored bytes.
      const std::size_t read_bytes = (stored_bytes(q) + 255) / 256 * 256;
      char* read_buf = nullptr;
      cudaMalloc(&read_buf, read_bytes * copies);
      cudaMemset(read_buf, 1, read_bytes * copies);
      double read_us[2];
      for (int early = 0; early < 2; ++early)
        read_us[early] = time_graph([&](int i) {
          bench::stream_read(read_buf + (i % copies) * read_bytes, stored_bytes(q), sink, stream, early == 1);
        });
      cudaFree(read_buf);
      for (int64_t batch : batches) {
        uint16_t *x = nullptr, *y = nullptr;
        cudaMalloc(&x, static_cast<std::size_t>(batch * c * 2));
        cudaMalloc(&y, static_cast<std::size_t>(batch * r * 2));
        {  // random activations: tensor cores draw less power (and may clock higher) on zeros
          std::vector<uint16_t> xh(static_cast<std::size_t>(batch * c));
          std::normal_distribution<float> normal(0.0f, 1.0f);
          for (auto& v : xh) v = f32_to_bf16(normal(gen));
          cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice);
        }
        const TensorView xv(x, DType::BF16, {batch, c}, {}, Device{DeviceKind::CUDA, 0});
        const TensorView yv(y, DType::BF16, {batch, r}, {}, Device{DeviceKind::CUDA, 0});
        const double us = time_graph([&](int i) { lords::cuda::matmul(layers[i % copies], xv, yv, stream); });
        const double bytes = stored_bytes(q) + 2.0 * batch * (r + c);
        const double floor_us = bytes / (copy_gbs * 1e3);
        const std::string& name = method_name;
        const double tflops = 2.0 * batch * r * c / us / 1e6;
        fmt::print("{:>12} {:>6} {:>10} {:>5} {:>10.1f} {:>8.0f} {:>10.1f} {:>8.1f} {:>8.1f} {:>8.1f}\n",
                   fmt::format("{}x{}", r, c), batch, name, q.rank, us, bytes / us / 1e3, floor_us, read_us[0],
                   read_us[1], tflops);
        rows.push_back({{"out", r}, {"in", c}, {"batch", batch}, {"method", name}, {"rank", q.rank}, {"us", us},
                        {"gbs", bytes / us / 1e3}, {"floor_us", floor_us}, {"read_us", read_us[0]},
                        {"read_pdl_us", read_us[1]}, {"tflops", tflops}});
        cudaFree(x);
        cudaFree(y);
      }
    }
  if (cudaGetLastError() != cudaSuccess) {
    fmt::print(stderr, "CUDA error\n");
    return 1;
  }
  if (!json_path.empty() && !bench::write_json(json_path, {{"device", cuda::device_description(0)},
                                                             {"copy_gbs", copy_gbs},
                                                             {"bits", bits},
                                                             {"block", block},
                                                             {"rows", rows}}))
    return 1;
  return 0;
}
