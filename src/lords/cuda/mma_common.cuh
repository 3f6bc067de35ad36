// Device helpers shared by the tensor-core GEMVs and GEMMs (mma_gemv.cu, row_gemv.cu, mma_gemm.cu, wgmma_gemm.cu):
// bf16 halves, the tiled code loads (src/lords/gpu_layout.hpp), the pair-table lookups that turn two codes into one
// A-fragment register, and the launchers' shared-memory limit.
#pragma once

#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cfloat>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "../../core/env.hpp"
#include "../../cuda/pdl.hpp"
#include "../../cuda/ptx.cuh"

namespace hilo::lords::cuda_detail {

using cuda_ptx::cluster_addr;
using cuda_ptx::cluster_arrive_relaxed;
using cuda_ptx::cluster_wait;
using cuda_ptx::cp_async16;
using cuda_ptx::cp_async_commit;
using cuda_ptx::cp_async_wait;
using cuda_ptx::griddep_launch_dependents;
using cuda_ptx::griddep_wait;
using cuda_ptx::smem_u32;
using hilo::cuda_detail::add_pdl_attribute;  // the batch-1 GEMVs start early (HILO_PDL)

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

__device__ __forceinline__ uint32_t lds_u32(uint32_t addr) {
  uint32_t v;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(addr));
  return v;
}
// Shared-memory byte offset of pair p's table entry for this lane (table [pair][Copies lanes] of u32), minus the lane
// part: the 4-bit case takes the pair straight out of a byte.
template <int Bits, int Copies = 32>
__device__ __forceinline__ uint32_t pair_offset(const uint32_t (&w)[2 * Bits], int p) {
  if constexpr (Bits == 4) return __byte_perm(w[p / 4], 0, 0x4440 | (p % 4)) * (4 * Copies);
  return pair_at<Bits>(w, p) * (4 * Copies);
}

// Pair table rows of 256 bytes (the row GEMVs): 32 lane copies of pair p's half2 in bytes [256 p, 256 p + 128), so
// a pair's row offset is the pair shifted by a whole byte and the 4-bit lookup address is one byte permute of the
// code word and the lane's offset lane4 = 4 x lane. Byte offset of pair p's entry for this lane:
template <int Bits>
__device__ __forceinline__ uint32_t lut_offset(const uint32_t (&w)[2 * Bits], int p, uint32_t lane4) {
  if constexpr (Bits == 4) return __byte_perm(w[p / 4], lane4, 0x7604 | (p % 4) << 4);  // byte p%4 << 8 | lane4
  return pair_at<Bits>(w, p) << 8 | lane4;
}

// Writes that table (2^(2 Bits) rows of 256 bytes at `smem`) from the fp16 codebook values in the kernel's
// parameters, so no global load gates it. Thread e of `threads` writes lanes 4 (e % 8) .. + 3 of pairs e / 8,
// e / 8 + threads / 8, ...: the low code is the same for all its pairs.
template <int Bits>
__device__ __forceinline__ void fill_pair_table(const uint16_t (&values_h)[16], unsigned char* smem, int threads) {
  constexpr int kPairs = 1 << (2 * Bits), kMask = (1 << Bits) - 1;
  const int quad = threadIdx.x % 8;
  for (int p = threadIdx.x / 8; p < kPairs; p += threads / 8) {
    const uint32_t v = values_h[p & kMask] | static_cast<uint32_t>(values_h[p >> Bits]) << 16;
    *reinterpret_cast<uint4*>(smem + p * 256 + quad * 16) = make_uint4(v, v, v, v);
  }
}

// A float in the shared memory of CTA `rank` of this cluster (distributed shared memory).
__device__ __forceinline__ float ld_cluster_f32(uint32_t local_addr, uint32_t rank) {
  float v;
  asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(cluster_addr(local_addr, rank)));
  return v;
}

// The split-column tail of the GEMVs: each CTA of the cluster holds n partial sums in `cta_sum` (shared memory);
// element i's total over the CTAs, added in rank order (deterministic), goes to store(i, total). CTA q finishes
// i = q * blockDim.x + threadIdx.x, stepping by the cluster's threads. Every thread of every CTA calls it: two
// cluster barriers, the second keeping this CTA's shared memory alive until the others have read it.
template <int MaxCluster, typename Store>
__device__ __forceinline__ void cluster_sum(const float* cta_sum, int n, Store&& store) {
  const cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  cluster.sync();
  const int ks = static_cast<int>(cluster.num_blocks()), threads = static_cast<int>(blockDim.x);
  const uint32_t addr = smem_u32(cta_sum);
  for (int i = static_cast<int>(cluster.block_rank()) * threads + static_cast<int>(threadIdx.x); i < n;
       i += ks * threads) {
    float total = 0.0f;
#pragma unroll
    for (int q = 0; q < MaxCluster; ++q)
      if (q < ks) total += ld_cluster_f32(addr + 4 * i, q);
    store(i, total);
  }
  cluster.sync();
}

// Floats of cluster_sum_push's inbox for n elements over ks CTAs.
__host__ __device__ constexpr int cluster_inbox_floats(int n, int ks) { return ks * ((n + ks - 1) / ks); }

// The same sum by pushing: each CTA stores its partial of element i into the shared `inbox` of CTA i % ks (slot
// [rank][i / ks]: inbox holds ks x ceil(n / ks) floats), one cluster barrier (release / acquire) makes every store
// visible, and each CTA adds its own elements' ks partials in rank order from its own shared memory. The bits of
// cluster_sum (same order), with one fenced cluster barrier instead of two and stores instead of remote loads; no CTA
// touches another's shared memory after the barrier, so none waits for the others before exiting. cta_sum (n
// floats) must be complete (or each thread reads only the elements it wrote: i = threadIdx.x + k blockDim.x) and
// distinct from inbox. Every thread of every CTA calls it, after cluster_arrive_relaxed() at the kernel's start: the
// wait for that arrival here guarantees every CTA of the cluster runs before any stores into its shared memory.
template <typename Store>
__device__ __forceinline__ void cluster_sum_push(const float* cta_sum, float* inbox, int n, Store&& store) {
  const cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  const int ks = static_cast<int>(cluster.num_blocks()), rank = static_cast<int>(cluster.block_rank());
  const int per = (n + ks - 1) / ks, threads = static_cast<int>(blockDim.x);
  const uint32_t row = smem_u32(inbox) + 4u * static_cast<uint32_t>(rank * per);
  cluster_wait();  // the arrival of every CTA's start (cluster_arrive_relaxed): all of them run
  for (int i = static_cast<int>(threadIdx.x); i < n; i += threads) {
    const uint32_t remote = cluster_addr(row + 4u * (i / ks), static_cast<uint32_t>(i % ks));
    asm volatile("st.shared::cluster.f32 [%0], %1;\n" ::"r"(remote), "f"(cta_sum[i]) : "memory");
  }
  cluster.sync();
  for (int j = static_cast<int>(threadIdx.x); j < per && rank + ks * j < n; j += threads) {
    float total = 0.0f;
    for (int q = 0; q < ks; ++q) total += inbox[q * per + j];
    store(rank + ks * j, total);
  }
}

// The batch-1 GEMVs' split-k tail: cluster_sum_push where `push` (MmaArgs::push_sum), else cluster_sum.
template <int MaxCluster, typename Store>
__device__ __forceinline__ void cluster_add(bool push, const float* cta_sum, float* inbox, int n, Store&& store) {
  if (push)
    cluster_sum_push(cta_sum, inbox, n, store);
  else
    cluster_sum<MaxCluster>(cta_sum, n, store);
}

__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint2 b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
}

__device__ __forceinline__ uint32_t half2_bits(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Power of two that brings `bound` (max |operand|) just under 2^15: fp16 then holds x exactly (x * A to 11 bits).
__device__ __forceinline__ int fp16_exponent(float bound) {
  if (!(bound > 0.0f) || bound > FLT_MAX) return 0;  // zero or non-finite input: nothing to gain
  return min(max(14 - ilogbf(bound), -120), 120);
}

// max(mx, |x|) over the 8 bf16 values of v, as bit patterns (bf16 magnitudes order like their bit patterns).
__device__ __forceinline__ unsigned bf16_abs_max(const uint4& v, unsigned mx) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) mx = max(mx, max(w[k] & 0x7FFFu, (w[k] >> 16) & 0x7FFFu));
  return mx;
}

// The largest `v` over the CTA's Warps warps (every thread gets it); `warp_max` holds Warps values in shared memory.
// Contains a __syncthreads.
template <int Warps>
__device__ __forceinline__ unsigned cta_max(unsigned v, unsigned* warp_max) {
  v = __reduce_max_sync(0xFFFFFFFFu, v);
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = v;
  __syncthreads();
  unsigned m = 0;
#pragma unroll
  for (int w = 0; w < Warps; ++w) m = max(m, warp_max[w]);
  return m;
}

// Calls f(std::integral_constant<int, B>{}) for the layer's code width B in {2, 3, 4} (the launchers' template
// argument); cudaErrorInvalidValue for any other width.
template <class F>
int with_bits(int bits, F&& f) {
  switch (bits) {
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

// The most clusters of cfg's shape (cluster size, threads, shared memory) the GPU holds at once; INT_MAX when the
// query fails (the launch then decides).
template <auto Kernel>
inline int max_active_clusters(const cudaLaunchConfig_t& cfg) {
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, Kernel, &cfg) == cudaSuccess) return n;
  (void)cudaGetLastError();  // the query's own error, not the caller's
  return INT_MAX;
}

// The batch-1 GEMVs' split-K reduction: cluster_sum_push (default) or cluster_sum (HILO_CLUSTER_PUSH=0), for A/B runs.
inline bool push_sum_enabled() {
  static const bool on = env_flag("HILO_CLUSTER_PUSH", true);
  return on;
}

// CTAs of Kernel with `threads` threads and `smem` bytes of shared memory that one SM holds (cached per device and
// shape; 0 when the query fails).
template <auto Kernel>
int ctas_per_sm(int device, int threads, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, size_t>, int> known;
  const std::lock_guard lock(mu);
  const auto key = std::make_tuple(device, threads, smem);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, Kernel, threads, smem) != cudaSuccess) {
    (void)cudaGetLastError();  // the query's own error, not the caller's
    n = 0;
  }
  return known[key] = n;
}

// The same for clusters: how many clusters of Kernel launched as `cfg` (its cluster dimension, threads and shared
// memory) the device holds at once (cached per device; 0 when the query fails).
template <auto Kernel>
int clusters_resident(int device, const cudaLaunchConfig_t& cfg) {
  static std::mutex mu;
  static std::map<int, int> known;
  const std::lock_guard lock(mu);
  if (const auto it = known.find(device); it != known.end()) return it->second;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, Kernel, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();  // the query's own error, not the caller's
    n = 0;
  }
  return known[device] = n;
}

// Raises Kernel's dynamic shared-memory limit to `bytes` once per device (not a stream operation: the first call,
// before any graph capture in practice, sets it). Returns a CUDA error code.
template <auto Kernel>
int allow_smem_once(int device, int bytes) {
  static std::atomic<uint64_t> raised{0};  // bit d: done on device d
  if (device < 0 || device >= 64) return static_cast<int>(cudaErrorInvalidDevice);
  if (raised.load() >> device & 1) return static_cast<int>(cudaSuccess);
  const cudaError_t e = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e == cudaSuccess) raised.fetch_or(uint64_t{1} << device);
  return static_cast<int>(e);
}

}  // namespace hilo::lords::cuda_detail
