// Hopper warpgroup MMA with the A operand in registers ("RS"): the decoded codes are A (each warp's 16 rows, the same
// fragment mma.sync takes). fp16 for the LoRDS GEMV's rank product (x * A in shared memory as B), bf16 for the batch
// GEMM (the activations as B). Compiled only for sm_90a (the callers check HILO_HAVE_SM90A and the device).
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

// desc moved `bytes` (a multiple of 16) further: one 32-bit add to the address field, which cannot carry into the
// strides while the address stays below 256 KB (every shared-memory address does), so a loop can encode a tile's
// descriptor once and advance it per step.
__device__ __forceinline__ uint64_t smem_desc_advance(uint64_t desc, uint32_t bytes) {
  return desc >> 32 << 32 | static_cast<uint32_t>(static_cast<uint32_t>(desc) + bytes / 16);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// D (64 x N, f32) += A (64 x 16, registers: each warp's mma.m16n8k16 A fragment for its 16 rows) * B (16 x N,
// shared memory, K-major, described by desc_b); with accumulate 0, D = A * B (wgmma's scale-d: the way to restart
// accumulators that earlier wgmmas wrote, since any other instruction defining them makes ptxas serialise every
// wgmma of the function). Warp w of the warpgroup holds rows 16 w + lane / 4 (+ 8 for d[4j + 2], d[4j + 3]) and
// columns 8j + 2 (lane % 4) (+ 1 for odd d): mma.m16n8k16's C layout per 8-column tile.
// NAME(d, a, desc_b, accumulate) for the instruction SHAPE_TYPES ("m64nNk16.f32.<A type>.<B type>"), with N / 2
// accumulators listed by ACC / REGS (src/cuda/ptx.cuh), the A registers and descriptor at %N/2 .. %N/2 + 4 (TAIL) and
// accumulate at %N/2 + 5 (SCALE).
#define HILO_WGMMA_RS(NAME, SHAPE_TYPES, NACC, ACC, REGS, TAIL, SCALE)                                      \
  __device__ __forceinline__ void NAME(float (&d)[NACC], const uint32_t (&a)[4], uint64_t desc_b,           \
                                       uint32_t accumulate = 1) {                                           \
    asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, " SCALE ", 0;\n"                                         \
                 "wgmma.mma_async.sync.aligned." SHAPE_TYPES " {" REGS "}, " TAIL ", p, 1, 1, 0;\n}\n" \
                 : ACC                                                                                     \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));              \
  }

// fp16 (the LoRDS GEMV's rank product: decoded codes times x * A).
HILO_WGMMA_RS(wgmma_m64n32k16_f16_rs, "m64n32k16.f32.f16.f16", 16, HILO_WGMMA_ACC16, HILO_WGMMA_R16,
              "{%16,%17,%18,%19}, %20", "%21")
HILO_WGMMA_RS(wgmma_m64n56k16_f16_rs, "m64n56k16.f32.f16.f16", 28, HILO_WGMMA_ACC28, HILO_WGMMA_R28,
              "{%28,%29,%30,%31}, %32", "%33")
HILO_WGMMA_RS(wgmma_m64n64k16_f16_rs, "m64n64k16.f32.f16.f16", 32, HILO_WGMMA_ACC32, HILO_WGMMA_R32,
              "{%32,%33,%34,%35}, %36", "%37")
// bf16 (the batch GEMMs: decoded weights times the activations; the small-batch GEMM's scale tile, B times A^T).
HILO_WGMMA_RS(wgmma_m64n16k16_bf16_rs, "m64n16k16.f32.bf16.bf16", 8, HILO_WGMMA_ACC8, HILO_WGMMA_R8,
              "{%8,%9,%10,%11}, %12", "%13")
HILO_WGMMA_RS(wgmma_m64n32k16_bf16_rs, "m64n32k16.f32.bf16.bf16", 16, HILO_WGMMA_ACC16, HILO_WGMMA_R16,
              "{%16,%17,%18,%19}, %20", "%21")
HILO_WGMMA_RS(wgmma_m64n64k16_bf16_rs, "m64n64k16.f32.bf16.bf16", 32, HILO_WGMMA_ACC32, HILO_WGMMA_R32,
              "{%32,%33,%34,%35}, %36", "%37")
HILO_WGMMA_RS(wgmma_m64n128k16_bf16_rs, "m64n128k16.f32.bf16.bf16", 64, HILO_WGMMA_ACC64, HILO_WGMMA_R64,
              "{%64,%65,%66,%67}, %68", "%69")
HILO_WGMMA_RS(wgmma_m64n256k16_bf16_rs, "m64n256k16.f32.bf16.bf16", 128, HILO_WGMMA_ACC128, HILO_WGMMA_R128,
              "{%128,%129,%130,%131}, %132", "%133")
#undef HILO_WGMMA_RS

// D (64 x 64, f32) = A (64 x 16, shared memory, K-major) * B (the same as above) (+ D when accumulate): the scale
// tile of the 256-row scale GEMM, whose registers cannot hold B's factors beside 128 accumulators.
__device__ __forceinline__ void wgmma_m64n64k16_bf16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b,
                                                        uint32_t accumulate = 1) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, %34, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" HILO_WGMMA_R32
               "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
               : HILO_WGMMA_ACC32
               : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

template <int N>
__device__ __forceinline__ void wgmma_m64nNk16_f16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b,
                                                      uint32_t accumulate = 1) {
  static_assert(N == 32 || N == 56 || N == 64);
  if constexpr (N == 32) wgmma_m64n32k16_f16_rs(d, a, desc_b, accumulate);
  else if constexpr (N == 56) wgmma_m64n56k16_f16_rs(d, a, desc_b, accumulate);
  else wgmma_m64n64k16_f16_rs(d, a, desc_b, accumulate);
}

template <int N>
__device__ __forceinline__ void wgmma_bf16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b) {
  static_assert(N == 16 || N == 32 || N == 64 || N == 128 || N == 256);
  if constexpr (N == 16) wgmma_m64n16k16_bf16_rs(d, a, desc_b);
  else if constexpr (N == 32) wgmma_m64n32k16_bf16_rs(d, a, desc_b);
  else if constexpr (N == 64) wgmma_m64n64k16_bf16_rs(d, a, desc_b);
  else if constexpr (N == 128) wgmma_m64n128k16_bf16_rs(d, a, desc_b);
  else wgmma_m64n256k16_bf16_rs(d, a, desc_b);
}
#endif

}  // namespace hilo::lords::cuda_detail
