// y = x . (codes -> values -> times the scale)^T on CUDA cores. A warp owns an output row; each lane decodes 8
// consecutive codes per step (one 32-/16-bit load, or 3 bytes at 3 bits), scales them (a block scale, or LoRDS'
// S[i, c] = sum_k B[i, k] A[k, c] as the CPU's fma chain in k order), and accumulates the products with up to 8
// activation rows. 8 warps per block share the LoRDS factor loads through L1. Sums are reduced across the warp
// with shuffles in a fixed order: deterministic.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "gemv.hpp"

namespace hilo::lords::cuda_detail {
namespace {

constexpr int kWarps = 8;
constexpr int kBatch = 8;  // activation rows per pass

__device__ __forceinline__ float bf16_bits(uint16_t b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }

__device__ __forceinline__ void unpack8(const uint4& v, float (&out)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(w[i] << 16);
    out[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
  }
}

template <int Bits>
__device__ __forceinline__ uint32_t load_codes(const uint8_t* row, int64_t c) {
  if constexpr (Bits == 4) return *reinterpret_cast<const uint32_t*>(row + c / 2);
  if constexpr (Bits == 2) return *reinterpret_cast<const uint16_t*>(row + c / 4);
  const uint8_t* p = row + c / 8 * 3;
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16;
}

template <int Bits, bool Lords>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(GemvArgs g, int64_t batch0, int nb) {
  extern __shared__ float brows[];  // LoRDS: [kWarps][rank]
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = g.lut[threadIdx.x];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  float* brow = brows + warp * g.rank;
  if (Lords && row < g.rows)
    for (int k = lane; k < g.rank; k += 32) brow[k] = bf16_bits(g.b[row * g.rank + k]);
  __syncthreads();
  if (row >= g.rows) return;

  float acc[kBatch];
#pragma unroll
  for (int b = 0; b < kBatch; ++b) acc[b] = 0.0f;
  const uint8_t* codes = g.qweight + row * g.row_bytes;
  const int64_t blocks = g.cols / g.block;
  for (int64_t c = lane * 8; c < g.cols; c += 32 * 8) {
    const uint32_t packed = load_codes<Bits>(codes, c);
    float w[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) w[j] = lut[(packed >> (j * Bits)) & ((1u << Bits) - 1)];
    if constexpr (Lords) {
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int k = 0; k < g.rank; ++k) {
        float a[8];
        unpack8(*reinterpret_cast<const uint4*>(g.a + k * g.cols + c), a);
        const float bk = brow[k];
#pragma unroll
        for (int j = 0; j < 8; ++j) s[j] = fmaf(bk, a[j], s[j]);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) w[j] *= s[j];
    } else {
      const float sc = bf16_bits(g.scales[row * blocks + c / g.block]);
#pragma unroll
      for (int j = 0; j < 8; ++j) w[j] *= sc;
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      if (b < nb) {
        float x[8];
        unpack8(*reinterpret_cast<const uint4*>(g.x + (batch0 + b) * g.cols + c), x);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[b] = fmaf(w[j], x[j], acc[b]);
      }
    }
  }
#pragma unroll
  for (int b = 0; b < kBatch; ++b) {
    float v = acc[b];
#pragma unroll
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, off);
    if (lane == 0 && b < nb) {
      const __nv_bfloat16 h = __float2bfloat16_rn(v);
      g.y[(batch0 + b) * g.rows + row] = *reinterpret_cast<const uint16_t*>(&h);
    }
  }
}

template <int Bits, bool Lords>
int launch_for(const GemvArgs& g, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((g.rows + kWarps - 1) / kWarps));
  const size_t smem = Lords ? sizeof(float) * kWarps * g.rank : 0;
  for (int64_t b0 = 0; b0 < g.batch; b0 += kBatch) {
    const int nb = static_cast<int>(g.batch - b0 < kBatch ? g.batch - b0 : kBatch);
    gemv_kernel<Bits, Lords><<<grid, kWarps * 32, smem, stream>>>(g, b0, nb);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_gemv(const GemvArgs& g, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  switch (g.bits * 2 + (g.lords ? 1 : 0)) {
    case 4: return launch_for<2, false>(g, stream);
    case 5: return launch_for<2, true>(g, stream);
    case 6: return launch_for<3, false>(g, stream);
    case 7: return launch_for<3, true>(g, stream);
    case 8: return launch_for<4, false>(g, stream);
    case 9: return launch_for<4, true>(g, stream);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace hilo::lords::cuda_detail
