// What the Hopper microbenchmarks (wgmma_rate.cu, scale_step_rate.cu, dsmem_store.cu) share: the device check (and
// through json_out.hpp the JSON output, written whole or not at all).
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "cuda_check.hpp"
#include "json_out.hpp"

namespace hilo_bench {

// The current device's properties; ends the program with a message naming `program` unless it is a Hopper GPU.
inline cudaDeviceProp hopper_or_exit(const char* program) {
  int dev = 0;
  HILO_BENCH_CUDA(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  HILO_BENCH_CUDA(cudaGetDeviceProperties(&prop, dev));
  if (prop.major != 9) {
    std::fprintf(stderr, "%s needs a Hopper GPU (sm_90); this is %s (sm_%d%d)\n", program, prop.name, prop.major,
                 prop.minor);
    std::exit(1);
  }
  return prop;
}

}  // namespace hilo_bench
