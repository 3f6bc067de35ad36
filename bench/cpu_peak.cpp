#include "cpu_peak.hpp"

#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>

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

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

#if defined(__x86_64__)
// Sums n floats (n a multiple of 64) with four independent vector chains: never compute-bound.
__attribute__((target("avx512f"))) static float sum_avx512(const float* p, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (std::size_t i = 0; i < n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#endif

static float sum_floats(const float* p, std::size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return sum_avx512(p, n);
#endif
  float s[8] = {};
  for (std::size_t i = 0; i < n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

double measure_read_bandwidth_gbs(int threads, std::size_t bytes) {
  constexpr std::size_t kPiece = std::size_t{1} << 20;  // floats per work item
  const std::size_t pieces = bytes / sizeof(float) / kPiece, n = pieces * kPiece;
  std::unique_ptr<float[]> buf(new float[n]);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::size_t p = 0; p < pieces; ++p)
    for (std::size_t i = 0; i < kPiece; ++i) buf[p * kPiece + i] = 1.0f;  // first touch by the reading threads
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    float total = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
    for (std::size_t p = 0; p < pieces; ++p) total += sum_floats(buf.get() + p * kPiece, kPiece);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile float keep = total;
    (void)keep;
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  return best;
}

}  // namespace hilo::bench
