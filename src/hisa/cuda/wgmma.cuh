// Hopper (sm_90a) warpgroup MMA for the indexer's scoring kernel: thin PTX wrappers (the asynchronous copies are in
// src/cuda/ptx.cuh).
// Operands live in shared memory in the 128-byte-swizzled K-major layout (swizzle128 and smem_desc_sw128 in
// src/cuda/ptx.cuh).
#pragma once

#include <cstdint>

#include "../../cuda/ptx.cuh"

namespace hilo::hisa::cuda_detail {

using cuda_ptx::cp_async16;
using cuda_ptx::cp_async4;
using cuda_ptx::cp_async_commit;
using cuda_ptx::cp_async_wait;
using cuda_ptx::smem_u32;

using cuda_ptx::smem_desc_sw128;
using cuda_ptx::swizzle128;

using cuda_ptx::fence_proxy_async;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
using cuda_ptx::fence_operands;
using cuda_ptx::wgmma_commit;
using cuda_ptx::wgmma_fence;
using cuda_ptx::wgmma_wait;

// D (64 x 128, f32) = A (64 x 32 e4m3, K-major) * B (128 x 32 e4m3, K-major)^T (+ D when accumulate).
// Thread t of the warpgroup holds rows 16 * (t / 32) + (t % 32) / 4 (+ 8 for d[4j + 2], d[4j + 3]) and columns
// 8j + 2 (t % 4) (+ 1 for odd d).
__device__ __forceinline__ void wgmma_m64n128k32_e4m3(float (&d)[64], uint64_t desc_a, uint64_t desc_b,
                                                      int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 {"
      HILO_WGMMA_R64
      "}, %64, %65, p, 1, 1;\n}\n"
      : HILO_WGMMA_ACC64
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// D (64 x 64, f32) = A (64 x 32 e4m3) * B (64 x 32 e4m3)^T (+ D when accumulate); same fragment layout as above
// (columns 8j + 2 (t % 4) + e, j < 8).
__device__ __forceinline__ void wgmma_m64n64k32_e4m3(float (&d)[32], uint64_t desc_a, uint64_t desc_b,
                                                     int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 {"
      HILO_WGMMA_R32
      "}, %32, %33, p, 1, 1;\n}\n"
      : HILO_WGMMA_ACC32
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// D (64 x 32, f32) = A (64 x 32 e4m3) * B (32 x 32 e4m3)^T (+ D when accumulate); same fragment layout as above
// (columns 8j + 2 (t % 4) + e, j < 4).
__device__ __forceinline__ void wgmma_m64n32k32_e4m3(float (&d)[16], uint64_t desc_a, uint64_t desc_b,
                                                     int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 {"
      HILO_WGMMA_R16
      "}, %16, %17, p, 1, 1;\n}\n"
      : HILO_WGMMA_ACC16
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// The decode kernel's MMA: one query row's H heads as N.
template <int H>
__device__ __forceinline__ void wgmma_m64nHk32_e4m3(float (&d)[H / 2], uint64_t desc_a, uint64_t desc_b,
                                                    int accumulate) {
  if constexpr (H == 64) wgmma_m64n64k32_e4m3(d, desc_a, desc_b, accumulate);
  else wgmma_m64n32k32_e4m3(d, desc_a, desc_b, accumulate);
}
#endif

}  // namespace hilo::hisa::cuda_detail
