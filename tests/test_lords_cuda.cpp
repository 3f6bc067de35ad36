// The LoRDS / block-wise CUDA matmul against the CPU oracle (dequantise, f64 dot products) on fresh random layers:
// every bit width and codebook, both methods, row counts that are not multiples of the block of rows, batches
// around the 8-row pass, outputs poisoned first. Tolerance: y is rounded to bf16 (2^-8 relative) after an f32
// accumulation in another order (1e-5 of sum |w x|).
#include <gtest/gtest.h>

#include <cmath>

#include "cuda_test_util.hpp"
#include "hilo/error.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"

namespace hilo {
namespace {
using test::DeviceTensor;

struct Case {
  lords::Method method;
  lords::CodebookKind codebook;
  int bits, block;
  int64_t rows, cols;
};

void check_case(const Case& c, std::mt19937_64& gen) {
  const Tensor w = test::random_tensor(DType::F32, {c.rows, c.cols}, gen, 0.05f);
  lords::QuantConfig cfg;
  cfg.method = c.method;
  cfg.codebook = c.codebook;
  cfg.bits = c.bits;
  cfg.block = c.block;
  cfg.steps = 5;
  const lords::QuantizedLinear q = lords::quantize(w, cfg);
  const lords::cuda::DeviceLinear dev(q);
  std::vector<float> wq(static_cast<std::size_t>(c.rows * c.cols));
  lords::dequantize(q, wq.data());
  for (int64_t batch : {1, 3, 8, 11}) {
    const Tensor x = test::random_tensor(DType::BF16, {batch, c.cols}, gen);
    std::vector<float> xf(static_cast<std::size_t>(batch * c.cols)), ref(static_cast<std::size_t>(batch * c.rows));
    convert(x.view().data(), DType::BF16, xf.data(), DType::F32, xf.size());
    lords::reference::matmul(q, xf.data(), batch, ref.data());
    const DeviceTensor dx(x);
    const DeviceTensor dy(DType::BF16, {batch, c.rows});  // poisoned
    lords::cuda::matmul(dev, dx, dy);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const Tensor y = dy.to_host();
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < c.rows; ++i) {
        double mag = 0;
        for (int64_t k = 0; k < c.cols; ++k) mag += std::abs(double(wq[i * c.cols + k]) * xf[b * c.cols + k]);
        const double got = bf16_to_f32(y.ptr<uint16_t>()[b * c.rows + i]), want = ref[b * c.rows + i];
        ASSERT_NEAR(got, want, std::ldexp(std::abs(want), -8) + 1e-5 * mag + 1e-30)
            << lords::to_string(c.method) << " " << q.codebook.name() << " B" << c.block << " [" << c.rows << ", "
            << c.cols << "] batch " << batch << " row " << b << " out " << i;
      }
  }
}

TEST(LordsCuda, MatmulMatchesTheCpuOracle) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  for (auto method : {lords::Method::Blockwise, lords::Method::Lords})
    for (auto cb : {lords::CodebookKind::NF, lords::CodebookKind::INT})
      for (int bits : {2, 3, 4}) {
        check_case({method, cb, bits, 32, 37, 96}, gen);
        check_case({method, cb, bits, 64, 300, 512}, gen);
        check_case({method, cb, bits, 128, 129, 1280}, gen);
      }
}

TEST(LordsCuda, BadArgumentsAreNamed) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(1);
  lords::QuantConfig cfg;
  cfg.method = lords::Method::Blockwise;
  const lords::QuantizedLinear q = lords::quantize(test::random_tensor(DType::F32, {16, 64}, gen), cfg);
  const lords::cuda::DeviceLinear dev(q);
  const DeviceTensor x(DType::BF16, {2, 64}), y(DType::BF16, {2, 16}), wrong(DType::F32, {2, 64}),
      short_y(DType::BF16, {2, 15});
  auto expect = [&](const TensorView& xv, const TensorView& yv, const char* needle) {
    try {
      lords::cuda::matmul(dev, xv, yv);
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect(wrong, y, "x has dtype F32");
  expect(x, short_y, "y");
  const Tensor host = test::random_tensor(DType::BF16, {2, 64}, gen);
  expect(host, y, "x is on cpu");
  lords::cuda::matmul(dev, x, y);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace hilo
