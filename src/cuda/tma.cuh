// Hopper's asynchronous copies into shared memory and the mbarriers that track them (sm_90): a 2D bulk tensor copy
// (TMA) of one box of a tensor map, and the mbarrier operations a producer / consumer ring needs. Callers compile
// these only for __CUDA_ARCH__ >= 900. The host side (the tensor map) is tensor_map.hpp.
#pragma once

#include <cstdint>

namespace hilo::cuda_ptx {

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
// An mbarrier whose phase completes after `count` arrivals (and the bytes announced by expect_tx).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Orders mbar_init before the async proxy (TMA) uses the barriers; other threads see them after a CTA barrier.
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
}
// One arrival that also announces `bytes` the phase waits for (the TMA copies' complete_tx).
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(bar),
               "r"(bytes)
               : "memory");
}
// One arrival, once this thread's earlier cp.async copies have landed (counted in the barrier's init count).
__device__ __forceinline__ void cp_async_mbar_arrive(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Blocks until the phase with this parity has completed (acquire: the copies and writes it tracked are visible).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n@!done bra WAIT;\n}\n" ::"r"(
          bar),
      "r"(parity)
      : "memory");
}

// One arrival on an mbarrier of any CTA of the cluster (remote_bar: cluster_addr of it), with the default (CTA-scope
// release) semantics: `.release.cluster` compiles to a MEMBAR.ALL.GPU before every arrival (sm_90a SASS, 2026-12-06).
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t remote_bar) {
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(remote_bar) : "memory");
}
// 16 bytes into another CTA's shared memory, counted as 16 complete_tx bytes on that CTA's mbarrier remote_bar.
__device__ __forceinline__ void st_async_16(uint32_t remote, const uint32_t (&v)[4], uint32_t remote_bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.b32 [%0], {%1, %2, %3, %4}, [%5];\n" ::"r"(
                   remote),
               "r"(v[0]), "r"(v[1]), "r"(v[2]), "r"(v[3]), "r"(remote_bar)
               : "memory");
}

// `bytes` (a multiple of 16; both addresses 16-byte aligned) from global memory into shared memory at dst, counted
// as complete_tx bytes on `bar` (a 1D bulk copy: no tensor map).
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

// The box of the 2D tensor map `map` (a __grid_constant__ kernel parameter) at element (x: inner, y: outer) into
// shared memory at dst (aligned as the map's swizzle needs); its bytes complete_tx on `bar`. Out-of-range elements
// are written as zeros and counted.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* map, int x, int y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(map), "r"(x), "r"(y), "r"(bar)
      : "memory");
}
#endif

// Moves registers between warpgroups of a warp-specialised kernel (sm_90a; elsewhere a no-op): the executing
// warpgroup's per-thread limit drops to / rises to N (a multiple of 8 in 24..256); inc waits until the CTA's pool has
// enough.
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// CTA barrier `id` (1..15; 0 is __syncthreads') among `Threads` threads (whole warps), e.g. the consumer warps of a
// producer / consumer kernel once the producer warp has left.
template <int Threads>
__device__ __forceinline__ void named_barrier_sync(int id) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "n"(Threads) : "memory");
}

}  // namespace hilo::cuda_ptx
