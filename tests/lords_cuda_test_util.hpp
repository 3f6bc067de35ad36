// What the LoRDS / block-wise CUDA matmul tests share (test_lords_cuda*.cpp): random layers, the CPU oracle with
// the tolerance of each path, and the GPU call into a poisoned output.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"

namespace hilo::lords_test {

struct Case {
  lords::Method method;
  lords::CodebookKind codebook;
  int bits, block;
  int64_t rows, cols;
  int rank = 0;         // LoRDS: 0 = parity rank
  float x_scale = 1;    // activations ~ N(0, x_scale)
  std::vector<int64_t> batches = {1, 3, 8, 11, 24, 40, 130};
};

lords::QuantizedLinear quantize_case(const Case& c, std::mt19937_64& gen);

// A layer's CPU oracle and the tolerance scale of each output: |W| as the tensor-core path sees it, |q| sum_k |B_ik
// A_kc| (LoRDS) or |w| (block-wise). Tolerances: test_lords_cuda.cpp's opening comment.
class Oracle {
 public:
  explicit Oracle(const lords::QuantizedLinear& q);
  bool tensor_cores() const { return q_.method == lords::Method::Blockwise || q_.rank <= 128; }
  // Whether the library serves this batch with the GEMM (its own rule).
  bool gemm(int64_t batch) const;
  // y (bf16 [batch, rows], from the GPU) against the oracle applied to x (bf16 [batch, cols]).
  void expect_matches(const Tensor& x, const Tensor& y, const std::string& label) const;

 private:
  const lords::QuantizedLinear& q_;
  std::vector<double> wmag_;
};

// dev applied to dx (batch rows) on the GPU into a poisoned output of `rows` features, copied back to the host.
Tensor gpu_matmul(const lords::cuda::DeviceLinear& dev, const test::DeviceTensor& dx, int64_t batch, int64_t rows);
// Two bf16 outputs of one shape hold the same bits; the first element that differs is named after `label`.
void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& label);
// A random layer of case c on the GPU against the oracle, at each of c's batches (x ~ N(0, c.x_scale)).
void check_case(const Case& c, std::mt19937_64& gen);
// Whether the current device runs the wgmma GEMMs (an sm_90a build on a 9.x device).
bool wgmma_here();

}  // namespace hilo::lords_test
