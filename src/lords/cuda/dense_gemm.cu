// The refinement's f32 GEMM: 64 x 64 output tiles, 256 threads with 4 x 4 outputs each, k staged through shared
// memory 16 at a time. The products are skinny (k or n is the LoRDS rank), so this simple tiling is bound by the
// operand loads, not by its arithmetic.
#include <cuda_runtime.h>

#include <algorithm>

#include "dense_gemm.hpp"

namespace hilo::lords::cuda_detail {
namespace {

constexpr int kTile = 64, kChunk = 16, kThreads = 256;
constexpr int kStride = kTile + 4;  // keeps float4 rows aligned and spreads the transposed stores over banks

// tile[kk][i] = element (i0 + i, k0 + kk) for i < 64, kk < kc; zero outside the operand.
template <Major M>
__device__ void stage(const GemmOperand& op, int64_t rows, int64_t i0, int64_t k0, int kc, float (*tile)[kStride]) {
  const int t = threadIdx.x;
  if constexpr (M == Major::K) {
    const int i = t / 4, kq = (t % 4) * 4;  // 4 threads read 16 consecutive k of one row
    const int64_t row = i0 + i;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int kk = kq + j;
      tile[kk][i] = row < rows && kk < kc ? op.p[row * op.ld + k0 + kk] : 0.0f;
    }
  } else {
    const int kk = t / 16, i = (t % 16) * 4;  // 16 threads read 64 consecutive rows of one k
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t row = i0 + i + j;
      tile[kk][i + j] = row < rows && kk < kc ? op.p[(k0 + kk) * op.ld + row] : 0.0f;
    }
  }
}

template <Major PM, Major QM>
__global__ void __launch_bounds__(kThreads) dense_gemm_kernel(GemmOperand p, GemmOperand q, GemmShape s, float* out,
                                                              int64_t ldo, int64_t split_stride, int64_t k_per_split) {
  __shared__ __align__(16) float ps[kChunk][kStride];
  __shared__ __align__(16) float qs[kChunk][kStride];
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTile, n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t kb = static_cast<int64_t>(blockIdx.z) * k_per_split, ke = min(s.k, kb + k_per_split);
  const int tm = threadIdx.x / 16 * 4, tn = threadIdx.x % 16 * 4;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  auto step = [&](int kk) {
    const float4 a = *reinterpret_cast<const float4*>(&ps[kk][tm]);
    const float4 b = *reinterpret_cast<const float4*>(&qs[kk][tn]);
    const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = __fmaf_rn(av[i], bv[j], acc[i][j]);
  };
  for (int64_t k0 = kb; k0 < ke; k0 += kChunk) {
    const int kc = static_cast<int>(ke - k0 < kChunk ? ke - k0 : kChunk);
    stage<PM>(p, s.m, m0, k0, kc, ps);
    stage<QM>(q, s.n, n0, k0, kc, qs);
    __syncthreads();
    if (kc == kChunk) {
#pragma unroll
      for (int kk = 0; kk < kChunk; ++kk) step(kk);
    } else {
      for (int kk = 0; kk < kc; ++kk) step(kk);  // only real k: the chain stays exactly the canonical one
    }
    __syncthreads();
  }
  float* o = out + static_cast<int64_t>(blockIdx.z) * split_stride;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + tm + i;
    if (row >= s.m) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (n0 + tn + j < s.n) o[row * ldo + n0 + tn + j] = acc[i][j];
  }
}

// c[i][j] = sum over splits in order of the partials [splits][m][n].
__global__ void sum_splits_kernel(const float* partial, int splits, int64_t m, int64_t n, float* c, int64_t ldc) {
  const int64_t count = m * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = partial[e];
    for (int z = 1; z < splits; ++z) sum = __fadd_rn(sum, partial[z * count + e]);
    c[e / n * ldc + e % n] = sum;
  }
}

template <Major PM, Major QM>
void launch(const GemmOperand& p, const GemmOperand& q, const GemmShape& s, float* out, int64_t ldo,
            int64_t split_stride, int64_t k_per_split, int splits, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((s.n + kTile - 1) / kTile), static_cast<unsigned>((s.m + kTile - 1) / kTile),
                  static_cast<unsigned>(splits));
  dense_gemm_kernel<PM, QM><<<grid, kThreads, 0, stream>>>(p, q, s, out, ldo, split_stride, k_per_split);
}

}  // namespace

int dense_gemm_splits(const GemmShape& s, int sm_count) {
  const int64_t tiles = ((s.m + kTile - 1) / kTile) * ((s.n + kTile - 1) / kTile);
  const int64_t want = (2 * static_cast<int64_t>(sm_count) + tiles - 1) / tiles;
  return static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(want, s.k / 512), 1, 64));
}

int launch_dense_gemm(const GemmOperand& p, const GemmOperand& q, const GemmShape& s, float* c, int64_t ldc,
                      int splits, float* workspace, void* stream_ptr) {
  if (s.m <= 0 || s.n <= 0) return cudaSuccess;
  if ((s.m + kTile - 1) / kTile > 65535 || splits < 1 || splits > 65535) return cudaErrorInvalidValue;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  // Split boundaries on whole chunks; the last split may be short, none is empty.
  int64_t per = (s.k + splits - 1) / splits;
  per = std::max<int64_t>(kChunk, (per + kChunk - 1) / kChunk * kChunk);
  splits = static_cast<int>(std::max<int64_t>(1, (s.k + per - 1) / per));
  float* out = splits > 1 ? workspace : c;
  const int64_t ldo = splits > 1 ? s.n : ldc, split_stride = s.m * s.n;
  if (p.major == Major::K && q.major == Major::K)
    launch<Major::K, Major::K>(p, q, s, out, ldo, split_stride, per, splits, stream);
  else if (p.major == Major::K)
    launch<Major::K, Major::I>(p, q, s, out, ldo, split_stride, per, splits, stream);
  else if (q.major == Major::K)
    launch<Major::I, Major::K>(p, q, s, out, ldo, split_stride, per, splits, stream);
  else
    launch<Major::I, Major::I>(p, q, s, out, ldo, split_stride, per, splits, stream);
  if (splits > 1) sum_splits_kernel<<<512, 256, 0, stream>>>(workspace, splits, s.m, s.n, c, ldc);
  return cudaGetLastError();
}

}  // namespace hilo::lords::cuda_detail
