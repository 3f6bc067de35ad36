// Host-side helpers of the CUDA path: the device guard, stream-ordered scratch buffers, launch shapes.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "../../cuda/pdl.hpp"
#include "common.cuh"

namespace hilo::hisa::cuda_detail {

using hilo::cuda_detail::add_pdl_attribute;

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

// hilo's own stream-ordered memory pool on the current device: freed scratch stays reserved (release threshold
// unlimited), so repeated calls do not map and unmap memory; the caller's default pool is left alone.
cudaMemPool_t scratch_pool();
// Smallest slab (bytes); 0: one allocation per buffer.
size_t& scratch_slab_bytes();
// Whether new slabs are filled with 0x7F bytes (tests; set_scratch_poison).
bool& scratch_poison();

// Scratch memory for one call, queued on the call's stream (no synchronisation). Requests are carved out of slabs
// of at least 32 MiB from scratch_pool(), so a call makes one or two allocator calls instead of one per buffer.
class Scratch {
 public:
  explicit Scratch(cudaStream_t stream) : stream_(stream), pool_(scratch_pool()) {}
  ~Scratch() {
    for (void* p : slabs_) cudaFreeAsync(p, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* alloc(int64_t count) {
    const size_t bytes = (static_cast<size_t>(count > 0 ? count : 1) * sizeof(T) + 255) / 256 * 256;
    if (used_ + bytes > size_) {
      size_ = std::max<size_t>(bytes, scratch_slab_bytes());
      void* p = nullptr;
      HILO_CUDA_CHECK(cudaMallocFromPoolAsync(&p, size_, pool_, stream_));
      if (scratch_poison()) HILO_CUDA_CHECK(cudaMemsetAsync(p, 0x7F, size_, stream_));
      slabs_.push_back(p);
      base_ = static_cast<char*>(p);
      used_ = 0;
    }
    T* out = reinterpret_cast<T*>(base_ + used_);
    used_ += bytes;
    bytes_ += static_cast<int64_t>(bytes);
    return out;
  }
  int64_t bytes() const { return bytes_; }

 private:
  cudaStream_t stream_;
  cudaMemPool_t pool_;
  std::vector<void*> slabs_;
  char* base_ = nullptr;
  size_t size_ = 0, used_ = 0;
  int64_t bytes_ = 0;
};

// The current device's entry of a per-device cache (function-local tables of 64 entries).
template <class T>
T& current_device_entry(T (&table)[64]) {
  int device = 0;
  HILO_CUDA_CHECK(cudaGetDevice(&device));
  return table[device & 63];
}

// kernel<<<grid, block, smem, stream>>>(args...), started by programmatic dependent launch unless HILO_PDL=0
// (add_pdl_attribute, src/cuda/pdl.hpp); the kernel must begin with early_launch_prologue(). Launch errors throw.
template <typename... Params, typename... Args>
void launch_early(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attrs[1];
  add_pdl_attribute(config, attrs);
  HILO_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

// Raises a kernel's dynamic shared-memory limit once per kernel and device (the attribute call is not free).
template <auto Kernel>
void allow_smem(size_t bytes) {
  static size_t allowed[64] = {};
  size_t& done = current_device_entry(allowed);
  if (bytes > done) {
    HILO_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    done = bytes;
  }
}

// An attribute of the current device, asked once per device (for attributes that are never 0).
template <cudaDeviceAttr Attribute>
int device_attribute() {
  static int known[64] = {};
  int& value = current_device_entry(known);
  int device = 0;
  if (value == 0) {
    HILO_CUDA_CHECK(cudaGetDevice(&device));
    HILO_CUDA_CHECK(cudaDeviceGetAttribute(&value, Attribute, device));
  }
  return value;
}

inline int multiprocessor_count() { return device_attribute<cudaDevAttrMultiProcessorCount>(); }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace hilo::hisa::cuda_detail
