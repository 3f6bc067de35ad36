// Tuning overrides from the environment (HILO_GEMM_WGMMA, HILO_GEMM_SPLIT, HILO_PDL, ...), read by the kernels' host
// code. A plain header, so that the CPU tests check the parsing the GPU launchers rely on.
#pragma once

#include <cstdlib>

namespace hilo {

// The variable's value when it is a whole decimal integer in [lo, hi]; otherwise (unset, empty, not a number, out of
// range) `fallback`. An unset variable is never read as 0: for HILO_GEMM_WGMMA, 0 means "never".
inline int env_override(const char* name, int lo, int hi, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long k = std::strtol(v, &end, 10);
  return *end == '\0' && k >= lo && k <= hi ? static_cast<int>(k) : fallback;
}

// An on/off switch (read where called; callers keep it in a static): unset gives `fallback`, "0" false, any other
// integer true.
inline bool env_flag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) != 0 : fallback;
}

}  // namespace hilo
