// Host-side helpers of the CUDA path: the device guard, stream-ordered scratch buffers, launch shapes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "common.cuh"

namespace hilo::hisa::cuda_detail {

// Makes the tensors' device current for the call and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    HILO_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) HILO_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

// Scratch memory from the stream-ordered allocator: allocation and release are queued on the stream, so a call
// needs no synchronisation for its scratch, and the driver's pool makes repeated calls cheap.
class Scratch {
 public:
  explicit Scratch(cudaStream_t stream) : stream_(stream) {}
  ~Scratch() {
    for (void* p : blocks_) cudaFreeAsync(p, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* alloc(int64_t count) {
    void* p = nullptr;
    HILO_CUDA_CHECK(cudaMallocAsync(&p, static_cast<size_t>(count > 0 ? count : 1) * sizeof(T), stream_));
    blocks_.push_back(p);
    bytes_ += count * static_cast<int64_t>(sizeof(T));
    return static_cast<T*>(p);
  }
  int64_t bytes() const { return bytes_; }

 private:
  cudaStream_t stream_;
  std::vector<void*> blocks_;
  int64_t bytes_ = 0;
};

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace hilo::hisa::cuda_detail
