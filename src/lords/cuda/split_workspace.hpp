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
// The last part of a tile loads this many floats per thread at once (add_split_parts, split_sum.cuh): parts of a tile
// x accumulators per thread within it cost one L2 round trip in its sum.
constexpr int kSplitSumLoadFloats = 32;

// The workspace of `stream` on the current device (`device`) for `parts` partial sums of `part_floats` floats each
// and `tiles` counters, `per_thread` of a part's floats in each thread of the CTA that adds them; created zeroed on
// first use (also during stream capture, as PyTorch's allocator does: the capture mode is relaxed for the
// allocation). nullptr where they do not fit, where the workspace is not chosen, past 64 workspaces, or where the
// allocation fails (the callers then fall back to per-call buffers and a sum kernel).
//
// Chosen by default only where the last part adds its tile in one L2 round trip (parts per tile x per_thread <=
// kSplitSumLoadFloats): measured on an H100 (twenty-sixth session), the workspace gained 1-2% there (4 parts of 8
// accumulators per thread) and lost 4-42% wherever the last part needs more (the sum kernel spreads those adds over
// the GPU). HILO_GEMM_WORKSPACE=0 never takes it, =1 wherever it fits.
const SplitWorkspace* split_workspace(int device, cudaStream_t stream, int64_t parts, int64_t part_floats,
                                      int64_t tiles, int per_thread);

// The default rule above: the last part's loads of a tile (splits x per_thread floats per thread) in one round trip.
constexpr bool split_workspace_by_default(int64_t splits, int per_thread) {
  return splits * per_thread <= kSplitSumLoadFloats;
}

// Tests: 0 never uses a workspace (per-call buffers and the sum kernel), 1 always where one fits, -1 the default
// (HILO_GEMM_WORKSPACE, else the one-round-trip rule above).
void force_split_workspace(int mode);

}  // namespace hilo::lords::cuda_detail
