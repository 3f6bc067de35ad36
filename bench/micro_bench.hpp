// What the Hopper microbenchmarks (wgmma_rate.cu, scale_step_rate.cu, dsmem_store.cu) share: the device check and
// the JSON output, written to a temporary file and renamed, so that a failed run never leaves half a file.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cuda_check.hpp"

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

// doc at `path` (the --json option), whole or not at all; false (with a message) where it cannot be written.
inline bool write_json(const std::string& path, const nlohmann::json& doc) {
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp);
  out << doc.dump(1) << "\n";
  out.close();
  if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "--json: cannot write %s\n", path.c_str());
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace hilo_bench
