// The LoRDS Adam refinement on a CUDA device (src/lords/cuda/refine_adam.cpp; builds without CUDA refuse it). Host
// arrays in, host arrays out: quantize() does the rest (initialisation, rounding, final codes) exactly as on the CPU.
#pragma once

#include <cstdint>
#include <functional>

#include "hilo/lords.hpp"

namespace hilo::lords::detail {

struct AdamProblem {
  const float* w = nullptr;  // [rows, cols] row-major
  int64_t rows = 0, cols = 0;
  const float* h = nullptr;  // [cols] channel weights, or null (all ones)
  const Codebook* codebook = nullptr;
  float* b = nullptr;  // [rows, rank]: the initial factors in, the best factors seen out
  float* a = nullptr;  // [rank, cols]
  int rank = 0;
  int steps = 0;
  float lr_b = 0, lr_a = 0;  // absolute step sizes
  int device = 0;
};

// Refuses a QuantConfig::device that is not -1 or an existing CUDA device, and ALS on a device (messages name them).
void check_device(const QuantConfig& cfg);

// The CPU's refine_adam on the GPU: same codes and gradient for the same factors, the gradient products summed in
// another order; deterministic. Fills report->trace (relative weighted error per step); on_step as on the CPU.
void refine_adam_cuda(const AdamProblem& problem, QuantReport* report, const std::function<void(double)>& on_step);

}  // namespace hilo::lords::detail
