// Host-side CUDA helpers shared by the CUDA APIs (compiled by the host compiler): error checks that throw
// hilo::Error, and a scope that makes a device current and restores the previous one.
#pragma once

#include <cuda_runtime.h>

#include "../core/check.hpp"

namespace hilo::cuda_detail {

inline void check_cuda(cudaError_t e, const char* what) {
  HILO_CHECK(e == cudaSuccess, "CUDA error {} ({}) in {}", cudaGetErrorName(e), cudaGetErrorString(e), what);
}

class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device != previous_) check_cuda(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceScope() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace hilo::cuda_detail
