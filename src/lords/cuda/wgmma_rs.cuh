// Hopper warpgroup MMA with the A operand in registers (wgmma ... .f16.f16, "RS"), for the LoRDS GEMV's rank
// product: the decoded codes are A (each warp's 16 rows, the same fragment mma.sync takes), x * A in shared memory is
// B. Compiled only for sm_90a (the callers check HILO_HAVE_SM90A and the device).
#pragma once

#include <cstdint>

#include "../../cuda/ptx.cuh"

namespace hilo::lords::cuda_detail {

using cuda_ptx::fence_proxy_async;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
using cuda_ptx::fence_operands;
using cuda_ptx::wgmma_commit;
using cuda_ptx::wgmma_fence;
using cuda_ptx::wgmma_wait;
#endif

// Shared-memory descriptor of a K-major operand without swizzle: 8 x 16-byte core matrices, `k_stride` bytes apart
// along K (the leading dimension) and `n_stride` bytes apart along N (the stride dimension).
__device__ __forceinline__ uint64_t smem_desc_noswizzle(uint32_t addr, uint32_t k_stride, uint32_t n_stride) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | static_cast<uint64_t>(k_stride >> 4) << 16 |
         static_cast<uint64_t>(n_stride >> 4) << 32;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// D (64 x 56, f32) += A (64 x 16 fp16, registers: the warp's mma.m16n8k16 A fragment) * B (16 x 56 fp16, shared
// memory, K-major, described by desc_b). Warp w of the warpgroup holds rows 16 w + lane / 4 (+ 8 for d[4j + 2],
// d[4j + 3]) and columns 8j + 2 (lane % 4) (+ 1 for odd d): mma.m16n8k16's C layout per 8-column tile.
__device__ __forceinline__ void wgmma_m64n56k16_f16_rs(float (&d)[28], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
      "wgmma.mma_async.sync.aligned.m64n56k16.f32.f16.f16 {"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27"
      "}, {%28,%29,%30,%31}, %32, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
}

// D (64 x 64, f32) += A (64 x 16 fp16, registers: the warp's mma.m16n8k16 A fragment) * B (16 x 64 fp16, shared
// memory, K-major, described by desc_b). Warp w of the warpgroup holds rows 16 w + lane / 4 (+ 8 for d[4j + 2],
// d[4j + 3]) and columns 8j + 2 (lane % 4) (+ 1 for odd d): mma.m16n8k16's C layout per 8-column tile.
__device__ __forceinline__ void wgmma_m64n64k16_f16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
      "}, {%32,%33,%34,%35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
}

template <int N>
__device__ __forceinline__ void wgmma_m64nNk16_f16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b) {
  static_assert(N == 56 || N == 64);
  if constexpr (N == 56) wgmma_m64n56k16_f16_rs(d, a, desc_b);
  else wgmma_m64n64k16_f16_rs(d, a, desc_b);
}
#endif

}  // namespace hilo::lords::cuda_detail
