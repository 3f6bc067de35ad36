// The streaming-floor kernel (stream_read.hpp).
#include <cuda_runtime.h>

#include "cuda/pdl.hpp"
#include "cuda/ptx.cuh"
#include "stream_read.hpp"

namespace hilo::bench {
namespace {

constexpr int kThreads = 512, kCtasPerSm = 4, kInFlight = 4;

__global__ void __launch_bounds__(kThreads) stream_read_kernel(const uint4* data, std::size_t n16, unsigned* out) {
  cuda_ptx::griddep_launch_dependents();
  const std::size_t stride = std::size_t{gridDim.x} * kThreads;
  std::size_t i = std::size_t{blockIdx.x} * kThreads + threadIdx.x;
  unsigned acc = 0;
  for (; i + (kInFlight - 1) * stride < n16; i += kInFlight * stride) {
    uint4 v[kInFlight];
#pragma unroll
    for (int k = 0; k < kInFlight; ++k) v[k] = __ldcs(data + i + k * stride);
#pragma unroll
    for (int k = 0; k < kInFlight; ++k) acc ^= v[k].x ^ v[k].y ^ v[k].z ^ v[k].w;
  }
  for (; i < n16; i += stride) {
    const uint4 v = __ldcs(data + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  cuda_ptx::griddep_wait();
  if (acc == 0x9E3779B9u) *out = acc;
}

}  // namespace

int stream_read(const void* data, std::size_t bytes, unsigned* out, void* stream, bool early) {
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(sms * kCtasPerSm));
  cfg.blockDim = dim3(kThreads);
  cfg.stream = static_cast<cudaStream_t>(stream);
  cudaLaunchAttribute attr[1];
  cuda_detail::add_pdl_attribute(cfg, attr, early);
  const cudaError_t e = cudaLaunchKernelEx(&cfg, stream_read_kernel, static_cast<const uint4*>(data), bytes / 16, out);
  return static_cast<int>(e != cudaSuccess ? e : cudaGetLastError());
}

}  // namespace hilo::bench
