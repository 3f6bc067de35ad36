// HILO_HOST_DEVICE: a function compiled for both the CPU and the GPU when nvcc builds it, plain inline otherwise, so
// host tests (built by g++) check the very code a kernel runs.
#pragma once

#if defined(__CUDACC__)
#define HILO_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define HILO_HOST_DEVICE inline
#endif
