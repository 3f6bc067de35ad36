// Programmatic dependent launch (sm_90+), shared by the CUDA paths: a kernel launched with
// cudaLaunchAttributeProgrammaticStreamSerialization may start while the previous kernel on the stream finishes.
// Only kernels that touch nothing a previous kernel may write before griddep_wait() (ptx.cuh) may be launched so.
// Header-only (hilo's core/env.hpp aside): compiled by nvcc and the host compiler alike.
#pragma once

#include <cuda_runtime.h>

#include "../core/env.hpp"

namespace hilo::cuda_detail {

// Whether the kernels built for it start early: on unless HILO_PDL=0 at start-up; benchmarks flip it for
// same-process A/B runs.
inline bool& pdl_enabled() {
  static bool on = env_flag("HILO_PDL", true);
  return on;
}

// Points cfg.attrs at `attrs` (which holds cfg.numAttrs attributes and has room for one more) and, where `on`, appends
// the programmatic-serialization attribute. Returns `on`.
inline bool add_pdl_attribute(cudaLaunchConfig_t& cfg, cudaLaunchAttribute* attrs, bool on = pdl_enabled()) {
  cfg.attrs = attrs;
  if (!on) return false;
  cudaLaunchAttribute& a = attrs[cfg.numAttrs++];
  a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a.val.programmaticStreamSerializationAllowed = 1;
  return true;
}

}  // namespace hilo::cuda_detail
