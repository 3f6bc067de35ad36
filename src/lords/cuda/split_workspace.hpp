// Split-k workspace: device memory that outlives a GEMM call, one per (device, stream), as cuBLAS keeps one per
// handle. The wgmma GEMMs store their split-k partial sums there and add them in the kernel (the last part of a
// tile to arrive adds every part, in part order), instead of a per-call allocation, a counter memset and a second
// kernel: those stand between two consecutive calls and keep the next one from starting early (programmatic
// dependent launch).
//
// The tile counters are zero between calls: each part arrives by atomicInc with the wrap at the split count, so the
// last arrival leaves its tile's counter at zero. Calls on one stream never overlap in the workspace (a kernel
// touches it only after griddepcontrol.wait, once the previous kernel has completed). What must not happen is two
// streams using one workspace at once: a graph captured on a stream keeps that stream's workspace, so two graphs
// captured on one stream must not be replayed concurrently on two streams (docs/lords.md section 8).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace hilo::lords::cuda_detail {

struct SplitWorkspace {
  float* partial = nullptr;   // kWorkspacePartialBytes of partial sums
  int* counters = nullptr;    // kWorkspaceCounters tile counters, zero between calls
};
constexpr int64_t kWorkspacePartialBytes = int64_t{16} << 20;
constexpr int kWorkspaceCounters = 4096;

// The workspace of `stream` on the current device (`device`) for `parts` partial sums of `part_floats` floats each
// and `tiles` counters, created zeroed on first use (also during stream capture, as PyTorch's allocator does: the
// capture mode is relaxed for the allocation); nullptr where they do not fit, where the workspace is off
// (HILO_GEMM_WORKSPACE), past 64 workspaces, or where the allocation fails (the callers then fall back to per-call
// buffers and a sum kernel).
const SplitWorkspace* split_workspace(int device, cudaStream_t stream, int64_t parts, int64_t part_floats,
                                      int64_t tiles);

// Tests: 0 never uses a workspace (per-call buffers and the sum kernel), 1 always where one fits, -1 the default
// (HILO_GEMM_WORKSPACE: off unless 1, until a device has measured it).
void force_split_workspace(int mode);

}  // namespace hilo::lords::cuda_detail
