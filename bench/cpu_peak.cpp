#include "cpu_peak.hpp"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <omp.h>

namespace hilo::bench {

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) static double fma_loop(double seconds) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  long iters = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    for (int rep = 0; rep < 10000; ++rep) {
#pragma GCC unroll 24
      for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    iters += 10000;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  alignas(64) float sink[16];
  __m512 total = acc[0];
  for (int i = 1; i < 24; ++i) total = _mm512_add_ps(total, acc[i]);
  _mm512_store_ps(sink, total);
  volatile float keep = sink[0];
  (void)keep;
  return iters * 24.0 * 32.0 / elapsed / 1e9;  // 16 lanes x 2 flops
}
#endif

double measure_fma_peak_gflops(int threads, double seconds) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512f")) return 0;
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  total += fma_loop(seconds);
  return total;
#else
  (void)threads;
  (void)seconds;
  return 0;
#endif
}

}  // namespace hilo::bench
