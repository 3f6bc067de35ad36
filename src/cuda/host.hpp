// Host-side CUDA helpers shared by the CUDA APIs (compiled by the host compiler): error checks that throw
// hilo::Error, and a scope that makes a device current and restores the previous one.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

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

// Device memory freed on destruction; optionally filled from the host (synchronously) or zeroed.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes, const void* host = nullptr) {
    if (bytes == 0) return;
    check_cuda(cudaMalloc(&ptr_, bytes), "cudaMalloc");
    if (host)
      check_cuda(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    else
      check_cuda(cudaMemset(ptr_, 0, bytes), "cudaMemset");
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

}  // namespace hilo::cuda_detail
