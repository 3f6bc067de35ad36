// PTX wrappers both GPU modules use (HISA's scoring kernels, the LoRDS GEMM and GEMVs): shared-memory addresses,
// asynchronous 16/4-byte global -> shared copies (sm_80+), programmatic dependent launch, the split cluster barrier
// and distributed shared-memory addresses (sm_90) and the wgmma ordering instructions (sm_90a).
#pragma once

#include <cstdint>

namespace hilo::cuda_ptx {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; bytes past `valid` (0 or 16) are zero-filled.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid) : "memory");
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, int valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Generic-proxy writes to shared memory (st.shared, cp.async) become visible to wgmma (the async proxy).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Programmatic dependent launch (sm_90+): a kernel launched with cudaLaunchAttributeProgrammaticStreamSerialization
// may start while the previous kernel in the stream still runs. griddep_wait() blocks until that kernel has completed
// and its memory writes are visible; griddep_launch_dependents() lets the next such kernel start once every CTA of
// this grid has issued it or exited. Both are no-ops for kernels launched without the attribute. The wait orders
// ordinary loads only: the compiler treats __ldg (ld.global.nc) as invariant and moves it across the wait either way
// (nvcc 13.0 sank a prepass's weight loads below it), so data of the previous kernel is never read by __ldg, and
// loads meant to overlap the previous kernel are written as ld.global.cg/.cs (__ldcg, __ldcs) ahead of the wait.
__device__ __forceinline__ void griddep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void griddep_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Split cluster barrier (sm_90+, barrier.cluster): arrive without a memory fence; wait for every thread of the
// cluster to have arrived.
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
#endif
}

// Distributed shared memory (sm_90+): the address, in the shared::cluster window, of the same shared-memory offset
// in CTA `rank` of this cluster.
__device__ __forceinline__ uint32_t cluster_addr(uint32_t local, uint32_t rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local), "r"(rank));
  return remote;
}

// wgmma's 128-byte-swizzled K-major operand layout: row r of 128 bytes at r * 128 with its 16-byte chunk c stored
// at chunk c ^ (r % 8), in 1024-byte aligned groups of 8 rows (what TMA's SWIZZLE_128B writes). A descriptor names
// such a tile; advancing K by 32 bytes advances its start address. Byte offset of (row, 16-byte chunk):
__host__ __device__ __forceinline__ uint32_t swizzle128(int row, int chunk) {
  return static_cast<uint32_t>(row * 128 + ((chunk ^ (row & 7)) << 4));
}

// Shared-memory matrix descriptor: K-major, 128B swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

// Operand lists of the wgmma wrappers (src/lords/cuda/wgmma_rs.cuh, src/hisa/cuda/wgmma.cuh): the f32 accumulators
// d[0 .. n-1] of a wrapper as "+f" operands (HILO_WGMMA_ACCn, built from runs HILO_WGMMA_Dk(first)) and their names
// %0 .. %n-1 in the instruction text (HILO_WGMMA_Rn); a wrapper's other operands follow at %n.
#define HILO_WGMMA_D4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define HILO_WGMMA_D8(i) HILO_WGMMA_D4(i), HILO_WGMMA_D4(i + 4)
#define HILO_WGMMA_D16(i) HILO_WGMMA_D8(i), HILO_WGMMA_D8(i + 8)
#define HILO_WGMMA_D32(i) HILO_WGMMA_D16(i), HILO_WGMMA_D16(i + 16)
#define HILO_WGMMA_ACC8 HILO_WGMMA_D8(0)
#define HILO_WGMMA_ACC16 HILO_WGMMA_D16(0)
#define HILO_WGMMA_ACC28 HILO_WGMMA_D16(0), HILO_WGMMA_D8(16), HILO_WGMMA_D4(24)
#define HILO_WGMMA_ACC32 HILO_WGMMA_D32(0)
#define HILO_WGMMA_ACC64 HILO_WGMMA_D32(0), HILO_WGMMA_D32(32)
#define HILO_WGMMA_ACC128 HILO_WGMMA_ACC64, HILO_WGMMA_D32(64), HILO_WGMMA_D32(96)
#define HILO_WGMMA_R8 "%0,%1,%2,%3,%4,%5,%6,%7"
#define HILO_WGMMA_R16 HILO_WGMMA_R8 ",%8,%9,%10,%11,%12,%13,%14,%15"
#define HILO_WGMMA_R28 HILO_WGMMA_R16 ",%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27"
#define HILO_WGMMA_R32 HILO_WGMMA_R16 ",%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define HILO_WGMMA_R64 \
  HILO_WGMMA_R32 ",%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47" \
                 ",%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define HILO_WGMMA_R128 \
  HILO_WGMMA_R64 ",%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79" \
                 ",%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95" \
                 ",%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111" \
                 ",%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Hopper warpgroup MMA ordering: fence before a wgmma reads registers written by other instructions, commit the
// issued wgmmas as a group, wait until at most N groups are in flight.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator reads across wgmma_wait.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
#endif

}  // namespace hilo::cuda_ptx
