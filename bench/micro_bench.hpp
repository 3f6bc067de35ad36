// What the Hopper microbenchmarks (wgmma_rate.cu, scale_step_rate.cu, dsmem_store.cu) share: the device check and
// the JSON output, written whole or not at all.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "core/atomic_file.hpp"
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

// doc at `path` (the --json option), whole or not at all (hilo::AtomicFile); false, with a message, where it cannot
// be written.
inline bool write_json(const std::string& path, const nlohmann::json& doc) {
  try {
    hilo::AtomicFile file(path);
    const std::string text = doc.dump(1) + "\n";
    file.write(text.data(), text.size());
    file.commit();
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "--json: cannot write %s: %s\n", path.c_str(), e.what());
    return false;
  }
}

}  // namespace hilo_bench
