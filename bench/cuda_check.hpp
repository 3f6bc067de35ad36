// The CUDA benchmarks' error check: a failed runtime call ends the program with the call's text and CUDA's message
// (benchmarks have nothing to recover; the library's own checks throw hilo::Error instead, src/cuda/host.hpp).
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

namespace hilo_bench {

inline void cuda_or_exit(cudaError_t e, const char* call) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "%s failed: %s\n", call, cudaGetErrorString(e));
  std::exit(1);
}

}  // namespace hilo_bench

#define HILO_BENCH_CUDA(call) hilo_bench::cuda_or_exit((call), #call)
