// What CUDA support this build and machine have. Safe to call in any build: without CUDA it reports none.
#pragma once

#include <string>

namespace hilo::cuda {

bool built_with_cuda();
// Number of usable CUDA devices (0 when the build has no CUDA, there is no driver, or no device).
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)", or an empty string when the device does not exist.
std::string device_description(int device);

}  // namespace hilo::cuda
