// Split-k workspaces per (device, stream) (split_workspace.hpp).
#include "split_workspace.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "../../core/env.hpp"

namespace hilo::lords::cuda_detail {
namespace {

std::atomic<int> forced{-1};
constexpr size_t kMostWorkspaces = 64;  // a program that makes streams without end falls back past this

// Zeroed device memory for one workspace, allocated outside any capture's record: the thread's capture mode is
// relaxed for the calls, and the zeroing runs on a private non-blocking stream (never the capturing one).
bool allocate_zeroed(void** ptr, size_t bytes) {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  if (cudaThreadExchangeStreamCaptureMode(&mode) != cudaSuccess) return false;
  bool ok = cudaMalloc(ptr, bytes) == cudaSuccess;
  cudaStream_t zeroing = nullptr;
  if (ok) ok = cudaStreamCreateWithFlags(&zeroing, cudaStreamNonBlocking) == cudaSuccess;
  if (ok) ok = cudaMemsetAsync(*ptr, 0, bytes, zeroing) == cudaSuccess && cudaStreamSynchronize(zeroing) == cudaSuccess;
  if (zeroing) cudaStreamDestroy(zeroing);
  if (!ok && *ptr) cudaFree(*ptr), *ptr = nullptr;
  cudaThreadExchangeStreamCaptureMode(&mode);
  if (!ok) cudaGetLastError();  // the fallback path runs; leave no sticky error for the next check
  return ok;
}

}  // namespace

void force_split_workspace(int mode) { forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed); }

const SplitWorkspace* split_workspace(int device, cudaStream_t stream, int64_t parts, int64_t part_floats,
                                      int64_t tiles, int per_thread) {
  if (parts * part_floats * 4 > kWorkspacePartialBytes || tiles > kWorkspaceCounters || tiles < 1) return nullptr;
  // HILO_GEMM_WORKSPACE: 0 never, 1 wherever it fits, unset the rule (split_workspace.hpp). The tests force it on and
  // off (force_split_workspace).
  static const int from_env = env_override("HILO_GEMM_WORKSPACE", 0, 1, -1);
  int mode = forced.load(std::memory_order_relaxed);
  if (mode < 0) mode = from_env;
  if (mode < 0) mode = split_workspace_by_default(parts / tiles, per_thread);
  if (mode == 0) return nullptr;
  // Never freed: a workspace lives as long as the process, as cuBLAS' handles usually do.
  static std::mutex mutex;
  static std::map<std::tuple<int, cudaStream_t, std::thread::id>, SplitWorkspace> workspaces;
  const std::lock_guard lock(mutex);
  // Keyed by the stream's handle, as PyTorch keys cuBLAS workspaces: a destroyed stream's handle comes back only once
  // its work has completed (its resources are released then), so a new stream that reuses it cannot overlap the old
  // one's calls. cudaStreamPerThread names a different stream in each thread: those get a workspace per thread.
  const auto key = std::tuple{device, stream, stream == cudaStreamPerThread ? std::this_thread::get_id() : std::thread::id{}};
  if (const auto it = workspaces.find(key); it != workspaces.end()) return &it->second;
  if (workspaces.size() >= kMostWorkspaces) return nullptr;
  void* memory = nullptr;
  if (!allocate_zeroed(&memory, kWorkspacePartialBytes + sizeof(int) * kWorkspaceCounters)) return nullptr;
  SplitWorkspace w;
  w.partial = static_cast<float*>(memory);
  w.counters = reinterpret_cast<int*>(static_cast<char*>(memory) + kWorkspacePartialBytes);
  return &workspaces.emplace(key, w).first->second;
}

}  // namespace hilo::lords::cuda_detail
