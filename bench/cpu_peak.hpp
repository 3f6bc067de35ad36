// What the CPU benchmarks report their numbers against, measured in the same run: the f32 FMA peak and the
// memory read bandwidth; plus the small helpers every benchmark shares (timing, date, CPU name).
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace hilo::bench {

std::string cpu_model();
std::string today();  // UTC, YYYY-MM-DD

// Median wall time of `repeat` calls of f, in milliseconds.
template <typename F>
double median_ms(int repeat, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Read bandwidth from memory (GB/s): `threads` threads summing a buffer far larger than the caches.
double measure_read_bandwidth_gbs(int threads, std::size_t bytes = std::size_t{1} << 30);

// Runs independent AVX-512 FMA chains on `threads` threads for about `seconds`; 0 when AVX-512F is absent.
double measure_fma_peak_gflops(int threads, double seconds = 0.3);

}  // namespace hilo::bench
