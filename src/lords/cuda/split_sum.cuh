// Split k added in the kernel (the classic last-block reduction): each part of an output tile stores its f32
// accumulators, arrives on the tile's counter, and the part that arrives last adds every part in part order and goes
// on to store the tile. Part order, starting from part 0's value, gives the bits of the separate sum kernel over a
// per-call buffer (sum_splits_kernel), so the two paths agree exactly. Used by the wgmma GEMMs (tail_sum,
// wgmma_gemm_parts.cuh) and the mma.sync GEMM (mma_gemm.cu); the parts and counters live in the stream's workspace
// (split_workspace.hpp) or a per-call buffer.
#pragma once

#include <cuda_runtime.h>

#include "../../cuda/tma.cuh"
#include "split_workspace.hpp"

namespace hilo::lords::cuda_detail {

// The `Threads` threads of the epilogue (whole warps, threads 0 .. Threads - 1 of the CTA, all of them here) each hold
// N accumulators. `parts`: the tile's [splits][N][Threads] floats (each thread's values strided by Threads, so that the
// stores and loads are coalesced whatever the accumulators' layout); `counter`: the tile's arrival counter, zero before
// the call and left at zero (atomicInc wraps at splits - 1); `flag`: 4 bytes of shared memory no thread reads or
// writes any more. Returns true in the last part to arrive, whose acc then holds the sum of all parts.
template <int N, int Threads>
__device__ __forceinline__ bool add_split_parts(float (&acc)[N], float* parts, int part, int splits, int* counter,
                                                void* flag) {
  const int tid = static_cast<int>(threadIdx.x);
  float* mine = parts + int64_t{part} * N * Threads + tid;
#pragma unroll
  for (int i = 0; i < N; ++i) __stcg(mine + i * Threads, acc[i]);
  __threadfence();  // this thread's parts before the arrival below
  cuda_ptx::named_barrier_sync<Threads>(1);
  volatile int* last = static_cast<volatile int*>(flag);
  if (tid == 0) *last = atomicInc(reinterpret_cast<unsigned*>(counter), splits - 1) == splits - 1u;
  cuda_ptx::named_barrier_sync<Threads>(1);
  if (!*last) return false;
  __threadfence();  // the other parts, fenced before their arrivals, are visible from here on
  // Parts outermost, G parts at a time: the G x N loads of a group are independent and in flight together, so the sum
  // costs ceil(splits / G) L2 round trips, not splits (16 splits of a small tile would otherwise wait for 16 in turn).
  // G x N <= kSplitSumLoadFloats registers of loads (the workspace's rule counts on it). (Elements outermost with a
  // run-time loop over the parts inside made N x splits dependent round trips: the first build's tail was 1.2x
  // slower.) Still added one part after another, in order.
  constexpr int G = N >= kSplitSumLoadFloats ? 1 : kSplitSumLoadFloats / N;
#pragma unroll 1
  for (int base = 0; base < splits; base += G) {
    float v[G][N];
#pragma unroll
    for (int q = 0; q < G; ++q)
      if (base + q < splits) {
        const float* part_q = parts + int64_t{base + q} * N * Threads + tid;
#pragma unroll
        for (int i = 0; i < N; ++i) v[q][i] = __ldcg(part_q + i * Threads);
      }
#pragma unroll
    for (int q = 0; q < G; ++q)
      if (base + q < splits)
#pragma unroll
        for (int i = 0; i < N; ++i) acc[i] = q == 0 && base == 0 ? v[q][i] : acc[i] + v[q][i];
  }
  return true;
}

}  // namespace hilo::lords::cuda_detail
