// LoRDS and block-wise quantized layers on NVIDIA GPUs: y = x . W^T straight from the packed codes (issue 5).
// Tensor-core kernels (Hopper, sm_90a) for block-wise layers and LoRDS layers up to rank 128, codes re-laid out at
// upload into mma fragment order and decoded in registers: GEMVs for small batches (block-wise: CTAs that own whole
// rows; LoRDS in the activation-expanded form, split-K over a thread-block cluster; fp16 operands) and a GEMM for
// larger ones (codes decoded once per CTA for up to 128 activation rows, LoRDS' scale tile computed by an mma, bf16
// operands, f32 accumulation). Larger ranks use a CUDA-core kernel with the CPU's exact scales. Semantics:
// docs/lords.md section 8; speed: docs/results/lords-cuda.md.
// This header includes no CUDA headers.
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
// accumulation, y rounded to bf16 (nearest even); deterministic (no atomics). Queued on `stream` (a cudaStream_t;
// nullptr = default stream); capturable in CUDA graphs (the GEMM's split-k workspace is stream-ordered memory).
// Non-finite activations give non-finite outputs.
void matmul(const DeviceLinear& w, const TensorView& x, const TensorView& y, void* stream = nullptr);

}  // namespace hilo::lords::cuda
