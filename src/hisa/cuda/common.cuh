// Device helpers shared by the HISA CUDA kernels: error checks, the score order, fp8 MMA.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../../cuda/ptx.cuh"
#include "launch.hpp"

namespace hilo::hisa::cuda_detail {

// Throws hilo::Error naming the call and the CUDA error (defined in launch.cu, which includes hilo's error type).
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);

#define HILO_CUDA_CHECK(call)                                                                      \
  do {                                                                                             \
    const cudaError_t hilo_err_ = (call);                                                          \
    if (hilo_err_ != cudaSuccess) ::hilo::hisa::cuda_detail::throw_cuda_error(hilo_err_, #call, __FILE__, __LINE__); \
  } while (0)
// After every launch: launch-configuration errors show here, asynchronous faults at the next synchronisation.
#define HILO_CUDA_LAUNCHED(name) HILO_CUDA_CHECK(cudaGetLastError())

// The first statement of every kernel started by launch_early() (runtime.cuh): it waits until the previous kernel on
// the stream has completed and its writes are visible, so nothing of this kernel touches memory before that. A
// no-op for a plain launch. The kernels do not trigger their dependents early (griddepcontrol.launch_dependents at
// the start made HISA decode 4-12% slower on an H100): the next kernel starts launching as this one's CTAs exit.
__device__ __forceinline__ void early_launch_prologue() { cuda_ptx::griddep_wait(); }

__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Monotone map of f32 to uint32, NaN -> 0 (the lowest key). Key 0 marks "no candidate" in every GPU top-k.
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t u = __float_as_uint(x);
  const uint32_t flip = static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u;
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? 0u : (u ^ flip);
}

__device__ __forceinline__ float key_to_float(uint32_t key) {
  const uint32_t u = (key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key;
  return __uint_as_float(u);
}

// D += A * B on fp8 e4m3 tensor cores, f32 accumulation: one warp, A 16x32 (row), B 32x8 (col).
__device__ __forceinline__ void mma_e4m3_16x8x32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__host__ __device__ inline int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace hilo::hisa::cuda_detail
