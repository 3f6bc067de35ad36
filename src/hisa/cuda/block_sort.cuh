// Bitonic sort of a shared-memory array by one thread block (all threads call it; it ends synchronised).
#pragma once

namespace hilo::hisa::cuda_detail {

// Smallest power of two >= n (n >= 1).
__device__ __forceinline__ int pow2_at_least(int n) {
  int size = 1;
  while (size < n) size <<= 1;
  return size;
}

// Sorts a[0, n) ascending. a must have room for pow2_at_least(n) entries; the tail is filled with `pad`, which
// must compare >= every real entry. Each stage walks the size/2 compare pairs, so no thread idles on half of them.
template <class T>
__device__ void block_bitonic_sort(T* a, int n, T pad) {
  if (n <= 1) {
    __syncthreads();
    return;
  }
  const int size = pow2_at_least(n);
  for (int i = n + threadIdx.x; i < size; i += blockDim.x) a[i] = pad;
  __syncthreads();
  for (int span = 2; span <= size; span <<= 1)
    for (int stride = span >> 1; stride > 0; stride >>= 1) {
      for (int p = threadIdx.x; p < size / 2; p += blockDim.x) {
        const int lo = 2 * p - (p & (stride - 1)), hi = lo + stride;
        const bool ascending = (lo & span) == 0;
        const T x = a[lo], y = a[hi];
        if ((x > y) == ascending) a[lo] = y, a[hi] = x;
      }
      __syncthreads();
    }
}

}  // namespace hilo::hisa::cuda_detail
