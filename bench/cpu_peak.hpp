// Measured FMA peak of this CPU (GFLOP/s, f32), the ceiling the CPU indexer's GFLOP/s are compared with.
#pragma once

namespace hilo::bench {

// Runs independent AVX-512 FMA chains on `threads` threads for about `seconds`; 0 when AVX-512F is absent.
double measure_fma_peak_gflops(int threads, double seconds = 0.3);

}  // namespace hilo::bench
