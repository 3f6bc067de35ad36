// Microbenchmark: how many bytes per cycle an SM can store into the shared memory of the other CTAs of its cluster
// (Hopper's distributed shared memory, through the SM-to-SM network), next to stores into its own. It decides whether
// LoRDS' batch GEMM can share its scale tile S = B A between the CTAs of a cluster (docs/notes/gpu-lords.md, "What
// bounds LoRDS at batch 1024"): at batch 1024 that needs ~22 bytes per cycle and SM of remote f32 stores.
//
// One wave of clusters (cudaOccupancyMaxActiveClusters), one CTA per SM (the shared memory asked for leaves room for
// one), 256 threads. Each iteration a CTA stores `kib` KiB of float4: into its own shared memory ("local"), into the
// next CTA of its cluster ("1 peer") or spread over all the others ("all peers"). Cycles: clock64 around the loop and
// the cluster barrier that completes the stores, per CTA; the table gives bytes per cycle per SM (the mean over CTAs)
// and the whole grid's GB/s from CUDA events.
//
// usage: bench_dsmem_store [--clusters 2,4,8] [--kib 32] [--iters 2000] [--json PATH]
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "micro_bench.hpp"

namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;
constexpr int kSmemBytes = 160 * 1024;  // more than half of an SM's 228 KB: one CTA per SM

enum class Target { Local, OnePeer, AllPeers };

const char* name(Target t) { return t == Target::Local ? "local" : t == Target::OnePeer ? "1 peer" : "all peers"; }

__device__ __forceinline__ void store_shared(uint32_t addr, float4 v) {
  asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w)
               : "memory");
}
__device__ __forceinline__ void store_cluster(uint32_t addr, float4 v) {
  asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "f"(v.x), "f"(v.y), "f"(v.z),
               "f"(v.w)
               : "memory");
}
// The address of shared-window address `local` in the CTA of cluster rank `rank`.
__device__ __forceinline__ uint32_t map_rank(uint32_t local, uint32_t rank) {
  uint32_t out;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(out) : "r"(local), "r"(rank));
  return out;
}

__global__ void __launch_bounds__(kThreads, 1)
    store_kernel(Target target, int n16, int iters, long long* cycles) {
  extern __shared__ float4 buf[];
  cg::cluster_group cluster = cg::this_cluster();
  const uint32_t rank = cluster.block_rank(), size = cluster.num_blocks();
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(buf));
  const int peers = target == Target::AllPeers ? static_cast<int>(size) - 1 : 1;
  const int per_peer = n16 / peers;  // float4s per target and iteration
  uint32_t dst[8];
  for (int p = 0; p < peers && p < 8; ++p) dst[p] = map_rank(base, (rank + 1 + p) % size);
  cluster.sync();  // every CTA of the cluster runs before any remote store
  const long long t0 = clock64();
  for (int it = 0; it < iters; ++it) {
    const float4 v = make_float4(static_cast<float>(it), 1.0f, 2.0f, static_cast<float>(rank));
    if (target == Target::Local) {
      for (int i = threadIdx.x; i < n16; i += kThreads) store_shared(base + 16 * i, v);
    } else {
      for (int p = 0; p < peers && p < 8; ++p)
        for (int i = threadIdx.x; i < per_peer; i += kThreads) store_cluster(dst[p] + 16 * i, v);
    }
  }
  cluster.sync();  // the stores have landed
  if (threadIdx.x == 0) cycles[blockIdx.x] = clock64() - t0;
}

bool check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Stores into the shared memory of the other CTAs of a cluster (distributed shared memory): bytes per "
               "cycle per SM"};
  std::vector<int> clusters = {2, 4, 8};
  int kib = 32, iters = 2000;
  std::string json_path;
  app.add_option("--clusters", clusters, "Cluster sizes")->delimiter(',')->check(CLI::Range(2, 8));
  app.add_option("--kib", kib, "KiB each CTA stores per iteration")->check(CLI::Range(1, 128));
  app.add_option("--iters", iters, "Iterations")->check(CLI::Range(1, 1000000));
  app.add_option("--json", json_path, "Write the results as JSON here");
  CLI11_PARSE(app, argc, argv);

  int device = 0, sms = 0, clock_khz = 0;
  cudaDeviceProp prop{};
  if (!check(cudaGetDevice(&device), "cudaGetDevice") || !check(cudaGetDeviceProperties(&prop, device), "properties"))
    return 1;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device);
  if (!check(cudaFuncSetAttribute(store_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes), "smem") ||
      !check(cudaFuncSetAttribute(store_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1), "cluster size"))
    return 1;
  const int n16 = kib * 1024 / 16;
  long long* cycles = nullptr;
  if (!check(cudaMalloc(&cycles, sizeof(long long) * sms), "cudaMalloc")) return 1;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);

  std::printf("%s, %d SMs | %d KiB per CTA and iteration, %d iterations\n", prop.name, sms, kib, iters);
  std::printf("%8s %10s %6s %16s %12s\n", "cluster", "target", "CTAs", "B/cycle per SM", "GB/s (grid)");
  nlohmann::json rows = nlohmann::json::array();
  for (int size : clusters)
    for (Target target : {Target::Local, Target::OnePeer, Target::AllPeers}) {
      cudaLaunchConfig_t cfg = {};
      cudaLaunchAttribute attr[1];
      attr[0].id = cudaLaunchAttributeClusterDimension;
      attr[0].val.clusterDim.x = static_cast<unsigned>(size), attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
      cfg.blockDim = dim3(kThreads);
      cfg.dynamicSmemBytes = kSmemBytes;
      cfg.attrs = attr, cfg.numAttrs = 1;
      cfg.gridDim = dim3(static_cast<unsigned>(size));
      int active = 0;
      if (!check(cudaOccupancyMaxActiveClusters(&active, store_kernel, &cfg), "cudaOccupancyMaxActiveClusters"))
        return 1;
      if (active <= 0) {
        std::printf("%8d %10s: no cluster of this size fits\n", size, name(target));
        continue;
      }
      const int ctas = active * size;
      cfg.gridDim = dim3(static_cast<unsigned>(ctas));
      const auto launch = [&] { return cudaLaunchKernelEx(&cfg, store_kernel, target, n16, iters, cycles); };
      if (!check(launch(), "warm-up launch") || !check(cudaDeviceSynchronize(), "warm-up")) return 1;
      cudaEventRecord(start);
      if (!check(launch(), "launch")) return 1;
      cudaEventRecord(stop);
      if (!check(cudaEventSynchronize(stop), "run")) return 1;
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      std::vector<long long> host(static_cast<std::size_t>(ctas));
      cudaMemcpy(host.data(), cycles, sizeof(long long) * ctas, cudaMemcpyDeviceToHost);
      double mean_cycles = 0;
      for (long long c : host) mean_cycles += static_cast<double>(c) / ctas;
      const int peers = target == Target::AllPeers ? size - 1 : 1;
      const double cta_bytes = target == Target::Local ? 16.0 * n16 * iters : 16.0 * (n16 / peers) * peers * iters;
      const double per_cycle = cta_bytes / mean_cycles, gbs = cta_bytes * ctas / (ms * 1e6);
      std::printf("%8d %10s %6d %16.1f %12.0f\n", size, name(target), ctas, per_cycle, gbs);
      rows.push_back({{"cluster", size}, {"target", name(target)}, {"ctas", ctas}, {"bytes_per_cycle_per_sm", per_cycle},
                      {"grid_gbs", gbs}, {"ms", ms}});
    }
  cudaFree(cycles);
  if (!json_path.empty()) {
    const nlohmann::json doc = {{"device", prop.name}, {"sms", sms}, {"clock_khz", clock_khz}, {"kib", kib},
                                {"iters", iters}, {"rows", rows}};
    if (!hilo::bench::write_json(json_path, doc)) return 1;
  }
  return 0;
}
