// Host side of TMA (tma.cuh): the tensor map of a row-major bf16 matrix, encoded through the driver entry point the
// runtime hands out (no link against libcuda).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>

namespace hilo::cuda_host {

// Map of the bf16 matrix [rows, cols] (row-major, cols a multiple of 8, base 16-byte aligned) read in boxes of
// box_rows x 64 columns, written to shared memory in wgmma's 128-byte swizzle (swizzle128 in ptx.cuh); elements
// past either end read as zeros. Returns a CUDA error code (cudaErrorInvalidValue for a shape TMA cannot take).
inline int encode_bf16_rows_map(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int box_rows) {
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                              const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                              CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static Encode encode = nullptr;
  static cudaError_t found = cudaSuccess;
  static std::once_flag once;
  std::call_once(once, [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult status{};
    found = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &status);
    if (found == cudaSuccess && (status != cudaDriverEntryPointSuccess || fn == nullptr)) found = cudaErrorNotSupported;
    encode = reinterpret_cast<Encode>(fn);
  });
  if (found != cudaSuccess) return static_cast<int>(found);
  if (rows < 1 || cols < 8 || cols % 8 != 0 || reinterpret_cast<uintptr_t>(base) % 16 != 0 || box_rows < 1 ||
      box_rows > 256)
    return static_cast<int>(cudaErrorInvalidValue);
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? 0 : static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace hilo::cuda_host
