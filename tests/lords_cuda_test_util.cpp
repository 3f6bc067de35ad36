// What the LoRDS / block-wise CUDA matmul tests share (lords_cuda_test_util.hpp).
#include "lords_cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "lords/cuda/mma_gemm.hpp"
#include "lords/cuda/wgmma_gemm.hpp"
#include "lords/gpu_layout.hpp"

namespace hilo::lords_test {

lords::QuantizedLinear quantize_case(const Case& c, std::mt19937_64& gen) {
  const Tensor w = test::random_tensor(DType::F32, {c.rows, c.cols}, gen, 0.05f);
  lords::QuantConfig cfg;
  cfg.method = c.method;
  cfg.codebook = c.codebook;
  cfg.bits = c.bits;
  cfg.block = c.block;
  cfg.rank = c.rank;
  cfg.steps = 5;
  return lords::quantize(w, cfg);
}

Oracle::Oracle(const lords::QuantizedLinear& q) : q_(q), wmag_(static_cast<std::size_t>(q.rows * q.cols)) {
  std::vector<float> wq(wmag_.size());
  lords::dequantize(q, wq.data());
  for (int64_t i = 0; i < q.rows; ++i)
    for (int64_t k = 0; k < q.cols; ++k) {
      double m = std::abs(double(wq[i * q.cols + k]));
      if (q.method == lords::Method::Lords && tensor_cores()) {
        double s_ik = 0, sba = 0;
        for (int r = 0; r < q.rank; ++r) {
          const double ba = double(bf16_to_f32(q.b[i * q.rank + r])) * bf16_to_f32(q.a[r * q.cols + k]);
          s_ik += ba;
          sba += std::abs(ba);
        }
        m = s_ik != 0 ? m / std::abs(s_ik) * sba : sba;  // |q| sum_k |B A| (|q| <= 1 where S = 0)
      }
      wmag_[static_cast<std::size_t>(i * q.cols + k)] = m;
    }
}

bool Oracle::gemm(int64_t batch) const {
  lords::cuda_detail::MmaArgs path;
  path.batch = batch, path.lords = q_.method == lords::Method::Lords;
  path.rank = q_.rank, path.rank_pad = lords::gpu_layout::padded_rank(q_.rank);
  return tensor_cores() && lords::cuda_detail::use_mma_gemm(path);
}

void Oracle::expect_matches(const Tensor& x, const Tensor& y, const std::string& label) const {
  const int64_t batch = x.shape()[0], rows = q_.rows, cols = q_.cols;
  const bool lords = q_.method == lords::Method::Lords;
  const double rel = gemm(batch)        ? (lords ? 3 : 2) * std::ldexp(1.0, -9)
                     : tensor_cores() ? std::ldexp(1.0, -10)
                                      : 1e-5;
  std::vector<float> xf(static_cast<std::size_t>(batch * cols)), ref(static_cast<std::size_t>(batch * rows));
  convert(x.view().data(), DType::BF16, xf.data(), DType::F32, xf.size());
  lords::reference::matmul(q_, xf.data(), batch, ref.data());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < rows; ++i) {
      double mag = 0;
      for (int64_t k = 0; k < cols; ++k) mag += wmag_[i * cols + k] * std::abs(double(xf[b * cols + k]));
      const double got = bf16_to_f32(y.ptr<uint16_t>()[b * rows + i]), want = ref[b * rows + i];
      ASSERT_NEAR(got, want, std::ldexp(std::abs(want), -8) + rel * mag + 1e-30)
          << label << lords::to_string(q_.method) << " " << q_.codebook.name() << " B" << q_.block << " rank "
          << q_.rank << " [" << rows << ", " << cols << "] batch " << batch << (gemm(batch) ? " (gemm)" : "")
          << " row " << b << " out " << i;
    }
}

Tensor gpu_matmul(const lords::cuda::DeviceLinear& dev, const test::DeviceTensor& dx, int64_t batch, int64_t rows) {
  const test::DeviceTensor dy(DType::BF16, {batch, rows});  // poisoned
  lords::cuda::matmul(dev, dx, dy);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return dy.to_host();
}

void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& label) {
  ASSERT_EQ(a.shape(), b.shape()) << label;
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.ptr<uint16_t>()[i], b.ptr<uint16_t>()[i]) << label << " element " << i;
}

void check_case(const Case& c, std::mt19937_64& gen) {
  const lords::QuantizedLinear q = quantize_case(c, gen);
  const lords::cuda::DeviceLinear dev(q);
  const Oracle oracle(q);
  for (int64_t batch : c.batches) {
    const Tensor x = test::random_tensor(DType::BF16, {batch, c.cols}, gen, c.x_scale);
    oracle.expect_matches(x, gpu_matmul(dev, test::DeviceTensor(x), batch, c.rows),
                          "x ~ " + std::to_string(c.x_scale) + ": ");
  }
}

bool wgmma_here() {
  int device = 0;
  return cudaGetDevice(&device) == cudaSuccess && lords::cuda_detail::sm90a_device(device);
}

}  // namespace hilo::lords_test
