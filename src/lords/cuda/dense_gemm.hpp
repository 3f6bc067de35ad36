// A small f32 GEMM on CUDA cores for the GPU refinement's skinny products (S = B A, G A^T, B^T G): C[m][n] =
// sum_k P(m, k) Q(n, k). Each output is one fma chain over k in ascending order, starting from +0, when the k range
// is not split: for S = B A that is exactly the canonical scale kernel of kernels.hpp, so the GPU's scales are
// bit-identical to the CPU's. Split k ranges go to partial sums that are added in split order (deterministic).
#pragma once

#include <cstdint>

namespace hilo::lords::cuda_detail {

// Where element (i, k) of an operand lives: KMajor at p[i * ld + k], IMajor at p[k * ld + i].
enum class Major { K, I };
struct GemmOperand {
  const float* p = nullptr;
  int64_t ld = 0;
  Major major = Major::K;
};

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
};

// Output rows of `ldc` floats. splits > 1 needs `workspace` of splits * m * n floats. Returns a CUDA error code.
int launch_dense_gemm(const GemmOperand& p, const GemmOperand& q, const GemmShape& shape, float* c, int64_t ldc,
                      int splits, float* workspace, void* stream);
// A split count that fills the device (>= 2 CTAs per SM) with at least 512 of k per split; 1 = exact chain.
int dense_gemm_splits(const GemmShape& shape, int sm_count);

}  // namespace hilo::lords::cuda_detail
