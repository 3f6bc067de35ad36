// A parallel loop over independent work items (OpenMP, dynamic schedule). Items must not depend on each other,
// so results never depend on the thread count or the schedule. Exceptions thrown by an item are rethrown on the
// calling thread after the loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hilo/threads.hpp"

namespace hilo {
inline int current_thread() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Calls body(item) for item in [0, n). `on_progress(done)` (optional) runs on the calling thread only.
template <typename Body>
void parallel_for(int64_t n, int threads, Body&& body, const std::function<void(int64_t)>& on_progress = {}) {
  std::exception_ptr error;
  std::mutex error_mutex;
  std::atomic<int64_t> done{0};
  const int nt = resolve_threads(threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && n > 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
    const int64_t finished = ++done;
    if (on_progress && current_thread() == 0) on_progress(finished);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace hilo
