// The GPU Adam refinement's host loop. Per step, all queued on one stream with no host round trip:
//   S = B A (dense_gemm, exactly the canonical scales), evaluate (codes, error, G), track the best factors,
//   gB = G A^T and gA = B^T G (dense_gemm, split over k), Adam on [B | A].
// The host waits only every few steps, so that on_step reports work done rather than work queued.
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "../../cuda/host.hpp"
#include "../codes.hpp"
#include "../refine_cuda.hpp"
#include "dense_gemm.hpp"
#include "refine_kernels.hpp"

namespace hilo::lords::detail {
namespace {

using hilo::cuda_detail::check_cuda;
using hilo::cuda_detail::DeviceBuffer;
using namespace lords::cuda_detail;

class Stream {
 public:
  // A blocking stream: it runs after the synchronous uploads and memsets of the buffers on the legacy stream.
  Stream() { check_cuda(cudaStreamCreate(&s_), "cudaStreamCreate"); }
  ~Stream() {
    cudaStreamSynchronize(s_);
    cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

CodebookArgs codebook_args(const Codebook& cb) {
  const CodeAssigner assign(cb);
  CodebookArgs a;
  a.count = static_cast<int>(assign.thresholds().size());
  for (int t = 0; t < a.count; ++t) a.thresholds[t] = assign.thresholds()[t];
  for (std::size_t v = 0; v < cb.values.size(); ++v) a.values[v] = cb.values[v];
  a.zero = cb.zero_code();
  return a;
}

template <typename T>
DeviceBuffer device_array(int64_t count, const T* host = nullptr) {
  return DeviceBuffer(static_cast<std::size_t>(count) * sizeof(T), host);
}

constexpr int kSyncEvery = 8;  // steps between host waits (progress reports)

}  // namespace

void refine_adam_cuda(const AdamProblem& pr, QuantReport* report, const std::function<void(double)>& on_step) {
  constexpr const char* where = "quantize (cuda)";
  HILO_CHECK(pr.rows > 0 && pr.cols > 0 && pr.cols % 4 == 0 && pr.rank > 0 && pr.steps >= 0 && pr.codebook,
             "{}: malformed problem [{}, {}] rank {}", where, pr.rows, pr.cols, pr.rank);
  HILO_CHECK(pr.rows <= int64_t{65535} * 64 && pr.rows < (int64_t{1} << 31),
             "{}: rows = {} exceeds the GPU refinement's limit of 4194240", where, pr.rows);
  hilo::cuda_detail::DeviceScope scope(pr.device);
  int sms = 0;
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, pr.device), "cudaDeviceGetAttribute");
  const int64_t rows = pr.rows, cols = pr.cols, r = pr.rank, n_b = rows * r, n_a = r * cols;
  // The factors live as one buffer [B | A] so that Adam and the best-copy run once over both.
  DeviceBuffer w = device_array<float>(rows * cols, pr.w);
  DeviceBuffer h = pr.h ? device_array<float>(cols, pr.h) : DeviceBuffer();
  DeviceBuffer factors = device_array<float>(n_b + n_a), best = device_array<float>(n_b + n_a);
  check_cuda(cudaMemcpy(factors.as<float>(), pr.b, n_b * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  check_cuda(cudaMemcpy(factors.as<float>() + n_b, pr.a, n_a * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  // Like the CPU, the initial factors are the answer until a step beats them (they are if every error is NaN).
  check_cuda(cudaMemcpy(best.get(), factors.get(), (n_b + n_a) * sizeof(float), cudaMemcpyDeviceToDevice), "cudaMemcpy");
  DeviceBuffer grads = device_array<float>(n_b + n_a), m1 = device_array<float>(n_b + n_a),
               m2 = device_array<float>(n_b + n_a);
  DeviceBuffer s = device_array<float>(rows * cols), g = device_array<float>(rows * cols);
  DeviceBuffer row_err = device_array<double>(rows), row_ref = device_array<double>(rows);
  DeviceBuffer trace = device_array<double>(pr.steps + 1), improved = device_array<int>(1),
               vmax = device_array<unsigned>(2);
  const double inf = std::numeric_limits<double>::infinity();
  DeviceBuffer best_rel = device_array<double>(1, &inf);

  float* B = factors.as<float>();
  float* A = B + n_b;
  float* G = g.as<float>();
  const GemmShape scale_shape{rows, cols, r}, grad_b_shape{rows, r, cols}, grad_a_shape{r, cols, rows};
  const int splits_b = dense_gemm_splits(grad_b_shape, sms), splits_a = dense_gemm_splits(grad_a_shape, sms);
  const int64_t workspace_floats = std::max<int64_t>(splits_b > 1 ? splits_b * n_b : 0, splits_a > 1 ? splits_a * n_a : 0);
  DeviceBuffer workspace = device_array<float>(workspace_floats);
  const CodebookArgs cb = codebook_args(*pr.codebook);
  Stream stream;
  void* st = stream.get();
  auto check = [&](int e, const char* what) { check_cuda(static_cast<cudaError_t>(e), what); };
  AdamStep adam;
  adam.lr_b = pr.lr_b, adam.lr_a = pr.lr_a;
  for (int step = 0; step <= pr.steps; ++step) {
    // S = B A: B is K-major (row i, rank k at i * r + k); A is I-major for the columns (A[k][c] at k * cols + c).
    check(launch_dense_gemm({B, r, Major::K}, {A, cols, Major::I}, scale_shape, s.as<float>(), cols, 1, nullptr, st),
          "the scale product");
    check(launch_evaluate(w.as<float>(), s.as<float>(), h.as<float>(), G, rows, cols, cb, row_err.as<double>(),
                          row_ref.as<double>(), st),
          "the evaluation kernel");
    check(launch_track_best(row_err.as<double>(), row_ref.as<double>(), rows, step, trace.as<double>(),
                            best_rel.as<double>(), improved.as<int>(), B, best.as<float>(), n_b + n_a, st),
          "the best-step kernel");
    if (step == pr.steps) break;
    if (on_step) {
      if (step % kSyncEvery == 0) check_cuda(cudaStreamSynchronize(stream.get()), "the refinement");
      on_step(static_cast<double>(step) / pr.steps);
    }
    // gB[i][k] = sum_c G[i][c] A[k][c]; gA[k][c] = sum_i B[i][k] G[i][c].
    check(launch_dense_gemm({G, cols, Major::K}, {A, cols, Major::K}, grad_b_shape, grads.as<float>(), r, splits_b,
                            workspace.as<float>(), st),
          "the gradient of B");
    check(launch_dense_gemm({B, r, Major::I}, {G, cols, Major::I}, grad_a_shape, grads.as<float>() + n_b, cols,
                            splits_a, workspace.as<float>(), st),
          "the gradient of A");
    const float t = static_cast<float>(step + 1);
    adam.c1 = 1.0f - std::pow(adam.beta1, t);
    adam.c2 = 1.0f - std::pow(adam.beta2, t);
    check(launch_adam(B, grads.as<float>(), m1.as<float>(), m2.as<float>(), n_b, n_a, adam, vmax.as<unsigned>(), sms, st),
          "the Adam kernels");
  }
  check_cuda(cudaStreamSynchronize(stream.get()), "the refinement");
  check_cuda(cudaMemcpy(pr.b, best.as<float>(), n_b * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check_cuda(cudaMemcpy(pr.a, best.as<float>() + n_b, n_a * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  if (report) {
    std::vector<double> rel(static_cast<std::size_t>(pr.steps + 1));
    check_cuda(cudaMemcpy(rel.data(), trace.get(), rel.size() * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
    report->trace.insert(report->trace.end(), rel.begin(), rel.end());
  }
}

}  // namespace hilo::lords::detail
