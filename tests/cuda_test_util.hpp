// Helpers for the GPU tests: device copies of host tensors, and the tie-aware comparison of index sets.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <set>

#include "hilo/cuda.hpp"
#include "hilo/hisa.hpp"
#include "test_util.hpp"

namespace hilo::test {

#define SKIP_WITHOUT_GPU()                                                                  \
  do {                                                                                      \
    if (hilo::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";                  \
  } while (0)

// A device copy of a host tensor (or an uninitialised device tensor), freed on destruction.
class DeviceTensor {
 public:
  explicit DeviceTensor(const Tensor& host) : dtype_(host.dtype()), shape_(host.shape()), bytes_(host.nbytes()) {
    EXPECT_EQ(cudaMalloc(&data_, bytes_ ? bytes_ : 1), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, host.view().data(), bytes_, cudaMemcpyHostToDevice), cudaSuccess);
  }
  DeviceTensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
    bytes_ = dtype_size(dtype_);
    for (int64_t s : shape_) bytes_ *= static_cast<std::size_t>(s);
    EXPECT_EQ(cudaMalloc(&data_, bytes_ ? bytes_ : 1), cudaSuccess);
    EXPECT_EQ(cudaMemset(data_, 0x5A, bytes_), cudaSuccess);  // poison
  }
  ~DeviceTensor() { cudaFree(data_); }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  TensorView view() const { return TensorView(data_, dtype_, shape_, {}, Device{DeviceKind::CUDA, 0}); }
  operator TensorView() const { return view(); }
  Tensor to_host() const {
    Tensor t(dtype_, shape_);
    EXPECT_EQ(cudaMemcpy(t.view().data(), data_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return t;
  }
  void poison() { EXPECT_EQ(cudaMemset(data_, 0x5A, bytes_), cudaSuccess); }
  // A host copy of any device view.
  static Tensor host_copy(const TensorView& v) {
    Tensor t(v.dtype(), v.shape());
    EXPECT_EQ(cudaMemcpy(t.view().data(), v.data(), t.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    return t;
  }

 private:
  void* data_ = nullptr;
  DType dtype_;
  Shape shape_;
  std::size_t bytes_ = 0;
};

// Compares a GPU index row with the CPU's. The GPU sums fp8 products in the tensor cores' order, so scores differ by
// rounding and membership may differ among keys whose exact scores lie within `rel_tol * max|score|` of the CPU's
// k-th score. Returns the number of differing entries that such ties do not explain (0 expected), and adds the
// number of tie swaps to `ties`.
template <typename ScoreOf>
int unexplained_differences(const std::set<int32_t>& gpu, const std::set<int32_t>& cpu, ScoreOf score_of,
                            double kth_score, double max_abs, double rel_tol, int64_t& ties) {
  int bad = 0;
  for (const auto* pair : {&gpu, &cpu}) {
    const auto& a = *pair;
    const auto& b = pair == &gpu ? cpu : gpu;
    for (int32_t x : a) {
      if (b.count(x)) continue;
      if (std::fabs(score_of(x) - kth_score) <= rel_tol * max_abs)
        ++ties;
      else
        ++bad;
    }
  }
  return bad;
}

}  // namespace hilo::test
