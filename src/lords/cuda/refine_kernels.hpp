// Kernels of the GPU Adam refinement (refine_adam.cpp drives them). Every float operation mirrors the CPU's
// refine_adam (src/lords/refine.cpp) one for one (no contraction), so for the same factors the GPU assigns the same
// codes and forms the same gradient G; only the sums of the gradient products (dense_gemm) differ in order.
#pragma once

#include <cstdint>

namespace hilo::lords::cuda_detail {

struct CodebookArgs {
  float thresholds[15] = {};  // midpoints between consecutive values (CodeAssigner's)
  float values[16] = {};
  int count = 0;              // number of thresholds
  int zero = 0;               // the zero code (for W / 0 and NaN)
};

// One CTA per row i: codes of W/S, e = W - v S, G = -2 e v h, row_err[i] = sum h e^2, row_ref[i] = sum h W^2
// (f64). h may be null (all ones). cols a multiple of 4, rows 16-byte aligned.
int launch_evaluate(const float* w, const float* s, const float* h, float* g, int64_t rows, int64_t cols,
                    const CodebookArgs& cb, double* row_err, double* row_ref, void* stream);

// The relative error of one step: trace[step] = sqrt(sum err / sum ref), summed in a fixed order; where it beats
// *best_rel, *best_rel takes it and `current` (n floats) is copied to `best`.
int launch_track_best(const double* row_err, const double* row_ref, int64_t rows, int step, double* trace,
                      double* best_rel, int* improved, const float* current, float* best, int64_t n, void* stream);

// Adam on the factors stored as one buffer [B | A] (n_b + n_a floats), gradients in the same layout. vmax: two
// uint32 (zeroed here), the largest second moment of B and of A, which set each matrix's epsilon floor.
struct AdamStep {
  float beta1 = 0.9f, beta2 = 0.999f, c1 = 1, c2 = 1;  // c = 1 - beta^t
  float lr_b = 0, lr_a = 0;
};
int launch_adam(float* params, const float* grads, float* m, float* v, int64_t n_b, int64_t n_a, const AdamStep& step,
                unsigned* vmax, int sm_count, void* stream);

}  // namespace hilo::lords::cuda_detail
