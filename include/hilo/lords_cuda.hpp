// LoRDS and block-wise quantized layers on NVIDIA GPUs: y = x . W^T straight from the packed format (issue 5).
// First version: one correctness-first kernel family on CUDA cores for every method, bit width and batch
// (8 activation rows per pass). Block-wise layers read their codes once per 8 rows; LoRDS layers rebuild
// S = B . A with the CPU's fma chain (bit-identical scales) at r multiply-adds per weight, so they are compute-bound
// (docs/results/lords-cuda.md). This header includes no CUDA headers.
#pragma once

#include <cstdint>
#include <memory>

#include "hilo/lords.hpp"
#include "hilo/tensor.hpp"

namespace hilo::lords::cuda {

// A quantized linear layer copied to device memory unchanged (packed codes, bf16 scales or factors).
class DeviceLinear {
 public:
  explicit DeviceLinear(const QuantizedLinear& q, int device = 0);  // uploads synchronously
  ~DeviceLinear();
  DeviceLinear(DeviceLinear&&) noexcept;
  DeviceLinear& operator=(DeviceLinear&&) noexcept;

  int64_t rows() const;
  int64_t cols() const;
  int device() const;
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// x: BF16 [batch, cols], y: BF16 [batch, rows], contiguous on the layer's device, 16-byte aligned. f32
// accumulation, y rounded to bf16 (nearest even). Queued on `stream` (a cudaStream_t; nullptr = default stream).
void matmul(const DeviceLinear& w, const TensorView& x, const TensorView& y, void* stream = nullptr);

}  // namespace hilo::lords::cuda
