// Kernels of the GPU Adam refinement: per-row evaluation (codes, error, gradient), best-step tracking, Adam.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "refine_kernels.hpp"

namespace hilo::lords::cuda_detail {
namespace {

constexpr int kThreads = 256;

// Deterministic block sum of one double per thread (fixed shuffle tree, then warps in order); valid in thread 0.
__device__ double block_sum(double x, double* scratch) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[warp] = x;
  __syncthreads();
  double sum = 0;
  if (threadIdx.x == 0)
    for (int w = 0; w < warps; ++w) sum += scratch[w];
  return sum;
}

__global__ void __launch_bounds__(kThreads) evaluate_kernel(const float* __restrict__ w, const float* __restrict__ s,
                                                            const float* __restrict__ h, float* __restrict__ g,
                                                            int64_t cols, CodebookArgs cb, double* row_err,
                                                            double* row_ref) {
  __shared__ float thresholds[16], values[16];
  __shared__ double scratch[kThreads / 32];
  if (threadIdx.x < 16) {
    thresholds[threadIdx.x] = cb.thresholds[threadIdx.x < 15 ? threadIdx.x : 0];
    values[threadIdx.x] = cb.values[threadIdx.x];
  }
  __syncthreads();
  const int64_t row = blockIdx.x;
  const float4* w4 = reinterpret_cast<const float4*>(w + row * cols);
  const float4* s4 = reinterpret_cast<const float4*>(s + row * cols);
  float4* g4 = reinterpret_cast<float4*>(g + row * cols);
  double err = 0, ref = 0;
  for (int64_t c4 = threadIdx.x; c4 < cols / 4; c4 += kThreads) {
    const float4 wv = w4[c4], sv = s4[c4];
    const float4 hv = h ? reinterpret_cast<const float4*>(h)[c4] : make_float4(1.f, 1.f, 1.f, 1.f);
    const float wa[4] = {wv.x, wv.y, wv.z, wv.w}, sa[4] = {sv.x, sv.y, sv.z, sv.w}, ha[4] = {hv.x, hv.y, hv.z, hv.w};
    float ga[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      // CodeAssigner::assign_ratio: x = W / S (a zero scale gives the zero code), code = thresholds below x.
      const float x = sa[j] == 0.0f ? NAN : __fdiv_rn(wa[j], sa[j]);
      int code = 0;
      for (int t = 0; t < cb.count; ++t) code += x > thresholds[t] ? 1 : 0;
      if (x != x) code = cb.zero;
      const float v = values[code];
      const float e = __fsub_rn(wa[j], __fmul_rn(v, sa[j]));
      err = __dadd_rn(err, __dmul_rn(__dmul_rn(static_cast<double>(ha[j]), e), e));
      ref = __dadd_rn(ref, static_cast<double>(__fmul_rn(__fmul_rn(wa[j], wa[j]), ha[j])));
      ga[j] = __fmul_rn(__fmul_rn(__fmul_rn(-2.0f, e), v), ha[j]);
    }
    g4[c4] = make_float4(ga[0], ga[1], ga[2], ga[3]);
  }
  err = block_sum(err, scratch);
  ref = block_sum(ref, scratch);
  if (threadIdx.x == 0) row_err[row] = err, row_ref[row] = ref;
}

__global__ void __launch_bounds__(1024) track_best_kernel(const double* row_err, const double* row_ref, int64_t rows,
                                                          int step, double* trace, double* best_rel, int* improved) {
  __shared__ double scratch[32];
  double err = 0, ref = 0;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) err += row_err[i], ref += row_ref[i];
  err = block_sum(err, scratch);
  ref = block_sum(ref, scratch);
  if (threadIdx.x == 0) {
    const double rel = ref > 0 ? sqrt(err / ref) : 0.0;
    trace[step] = rel;
    *improved = rel < *best_rel;
    if (*improved) *best_rel = rel;
  }
}

__global__ void copy_if_kernel(const int* improved, const float* src, float* dst, int64_t n) {
  if (!*improved) return;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[e] = src[e];
}

// m, v updates; the largest v of each matrix by one atomicMax per CTA (v >= 0, so its bits order like the floats).
__global__ void __launch_bounds__(kThreads) adam_moments_kernel(const float* g, float* m, float* v, int64_t n_b,
                                                                int64_t n, AdamStep st, unsigned* vmax) {
  float max_b = 0, max_a = 0;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float ge = g[e];
    const float me = __fadd_rn(__fmul_rn(st.beta1, m[e]), __fmul_rn(1.0f - st.beta1, ge));
    const float ve = __fadd_rn(__fmul_rn(st.beta2, v[e]), __fmul_rn(1.0f - st.beta2, __fmul_rn(ge, ge)));
    m[e] = me, v[e] = ve;
    if (e < n_b)
      max_b = fmaxf(max_b, ve);
    else
      max_a = fmaxf(max_a, ve);
  }
  for (int o = 16; o > 0; o >>= 1) {
    max_b = fmaxf(max_b, __shfl_xor_sync(0xffffffffu, max_b, o));
    max_a = fmaxf(max_a, __shfl_xor_sync(0xffffffffu, max_a, o));
  }
  if (threadIdx.x % 32 == 0) {
    atomicMax(vmax, __float_as_uint(max_b));
    atomicMax(vmax + 1, __float_as_uint(max_a));
  }
}

__global__ void __launch_bounds__(kThreads) adam_update_kernel(float* p, const float* m, const float* v, int64_t n_b,
                                                               int64_t n, AdamStep st, const unsigned* vmax) {
  // The CPU's epsilon: 1e-8 of the largest bias-corrected RMS of the matrix (plus 1e-30 for an all-zero gradient).
  const float floor_b = __fadd_rn(__fmul_rn(1e-8f, __fsqrt_rn(__fdiv_rn(__uint_as_float(vmax[0]), st.c2))), 1e-30f);
  const float floor_a = __fadd_rn(__fmul_rn(1e-8f, __fsqrt_rn(__fdiv_rn(__uint_as_float(vmax[1]), st.c2))), 1e-30f);
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool in_b = e < n_b;
    const float lr = in_b ? st.lr_b : st.lr_a, floor = in_b ? floor_b : floor_a;
    const float num = __fmul_rn(lr, __fdiv_rn(m[e], st.c1));
    const float den = __fadd_rn(__fsqrt_rn(__fdiv_rn(v[e], st.c2)), floor);
    p[e] = __fsub_rn(p[e], __fdiv_rn(num, den));
  }
}

}  // namespace

int launch_evaluate(const float* w, const float* s, const float* h, float* g, int64_t rows, int64_t cols,
                    const CodebookArgs& cb, double* row_err, double* row_ref, void* stream) {
  if (rows <= 0) return cudaSuccess;
  if (rows > 0x7fffffff || cols % 4 != 0) return cudaErrorInvalidValue;
  evaluate_kernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(w, s, h, g, cols, cb,
                                                                                                   row_err, row_ref);
  return cudaGetLastError();
}

int launch_track_best(const double* row_err, const double* row_ref, int64_t rows, int step, double* trace,
                      double* best_rel, int* improved, const float* current, float* best, int64_t n, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  track_best_kernel<<<1, 1024, 0, st>>>(row_err, row_ref, rows, step, trace, best_rel, improved);
  copy_if_kernel<<<256, 256, 0, st>>>(improved, current, best, n);
  return cudaGetLastError();
}

int launch_adam(float* params, const float* grads, float* m, float* v, int64_t n_b, int64_t n_a, const AdamStep& step,
                unsigned* vmax, int sm_count, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  const int64_t n = n_b + n_a;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(4 * sm_count, (n + kThreads - 1) / kThreads));
  if (const cudaError_t e = cudaMemsetAsync(vmax, 0, 2 * sizeof(unsigned), st); e != cudaSuccess) return e;
  adam_moments_kernel<<<blocks, kThreads, 0, st>>>(grads, m, v, n_b, n, step, vmax);
  adam_update_kernel<<<blocks, kThreads, 0, st>>>(params, m, v, n_b, n, step, vmax);
  return cudaGetLastError();
}

}  // namespace hilo::lords::cuda_detail
