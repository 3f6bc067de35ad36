// Device helpers shared by the tensor-core GEMV and GEMM (mma_gemv.cu, mma_gemm.cu): bf16 halves, the tiled code
// loads (src/lords/gpu_layout.hpp) and the pair-table lookups that turn two codes into one A-fragment register.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace hilo::lords::cuda_detail {

__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xFFFF0000u); }

template <int Bits>
__device__ __forceinline__ void load_tile(const uint8_t* tile, int lane, uint32_t (&w)[2 * Bits]) {
  if constexpr (Bits == 3) {
#pragma unroll
    for (int j = 0; j < 3; ++j) {
      const uint2 v = __ldcs(reinterpret_cast<const uint2*>(tile) + j * 32 + lane);
      w[2 * j] = v.x;
      w[2 * j + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int j = 0; j < Bits / 2; ++j) {
      const uint4 v = __ldcs(reinterpret_cast<const uint4*>(tile) + j * 32 + lane);
      w[4 * j] = v.x;
      w[4 * j + 1] = v.y;
      w[4 * j + 2] = v.z;
      w[4 * j + 3] = v.w;
    }
  }
}

// Pair p (two codes, 2 Bits bits) of a lane's bit string; p is a constant after unrolling.
template <int Bits>
__device__ __forceinline__ uint32_t pair_at(const uint32_t (&w)[2 * Bits], int p) {
  constexpr int kW = 2 * Bits;
  const int o = p * kW, wi = o / 32, sh = o % 32;
  const uint32_t v = sh + kW <= 32 ? w[wi] >> sh : __funnelshift_r(w[wi], w[wi + 1 < kW ? wi + 1 : wi], sh);
  return v & ((1u << kW) - 1);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ uint32_t lds_u32(uint32_t addr) {
  uint32_t v;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(addr));
  return v;
}
// Shared-memory byte offset of pair p's table entry for this lane (table [pair][32 lanes] of u32), minus the lane
// part: the 4-bit case takes the pair straight out of a byte.
template <int Bits>
__device__ __forceinline__ uint32_t pair_offset(const uint32_t (&w)[2 * Bits], int p) {
  if constexpr (Bits == 4) return __byte_perm(w[p / 4], 0, 0x4440 | (p % 4)) * 128;
  return pair_at<Bits>(w, p) * 128;
}

}  // namespace hilo::lords::cuda_detail
