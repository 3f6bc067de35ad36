// Microbenchmark: what LoRDS' scale tile costs the tensor pipe per 16-column step of the weights, at 256 activation
// rows (batch 1024: the wgmma GEMMs' tiles) and at 16 (batch 16: the scale-on-wgmma GEMM's). One step, per SM (two
// consumer warpgroups of 64 weight rows):
//  - "product": one wgmma.m64nBNk16 per warpgroup, BN the activation rows (A, the decoded weights, in registers):
//    block-wise's tensor work;
//  - "+ S on mma.sync": the same plus S = B A for the step in each warp's own stream, the wgmma GEMM's LoRDS build
//    (scale_mma of gemm_common.cuh: 16 rows x 16 columns x the ranks per warp, m16n8k16 and an m16n8k8 for an odd
//    last group of 8);
//  - "+ S on wgmma": the same plus one wgmma.m64n64k16 per warpgroup with both operands in shared memory (64 rows x
//    16 columns x 64 ranks, as the scale GEMM of wgmma_scale_gemm.cu issues it at 256 rows: 4 k-steps per 4-step
//    half; at 16-128 rows it takes B from registers, the same tensor work).
// Only tensor work is issued (no decode, no loads in the loop), so the ratios of cycles per step are what the tensor
// pipe alone allows LoRDS against block-wise in each design (docs/notes/gpu-lords.md, "Twenty-ninth session"). The
// second table is mma.sync.m16n8k16's own rate (independent accumulator chains per warp), the scale tile's
// instruction there.
//
// usage: bench_scale_step_rate [--rows 16,256] [--ranks 56,64] [--iters 20000] [--json PATH]
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cuda/ptx.cuh"
#include "cuda_check.hpp"
#include "micro_bench.hpp"
#include "lords/cuda/gemm_common.cuh"
#include "lords/cuda/wgmma_rs.cuh"

namespace {

using hilo::lords::cuda_detail::k16_groups;
constexpr int kSmemBytes = 160 * 1024;  // one CTA per SM
constexpr int kThreads = 256;           // two consumer warpgroups, as in the wgmma GEMMs
enum Scale { kProductOnly = 0, kScaleMmaSync = 1, kScaleWgmma = 2 };

// Random bits for operands (an LCG; zeros would let the clock run higher than real data does): bf16 pairs of
// moderate magnitude, no NaN / Inf.
__device__ __forceinline__ uint32_t next_bits(uint32_t& seed) {
  seed = seed * 1664525u + 1013904223u;
  return seed & 0x3F7F3F7Fu;
}

// cycles[blockIdx.x] = SM cycles of `iters` steps; sink keeps the accumulators alive.
template <int Mode, int R8, int BN>
__global__ void __launch_bounds__(kThreads, 1) step_rate(int iters, long long* cycles, float* sink) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace hilo::lords::cuda_detail;
  extern __shared__ __align__(1024) unsigned char smem[];
  uint32_t seed = 2654435761u * (threadIdx.x + 1) + blockIdx.x;
  for (int i = threadIdx.x; i < kSmemBytes / 4; i += blockDim.x) reinterpret_cast<uint32_t*>(smem)[i] = next_bits(seed);
  constexpr int K16 = k16_groups(R8);
  uint32_t a[4], bfac[K16][4], afr[2][K16][2];
  for (int i = 0; i < 4; ++i) a[i] = next_bits(seed);
  for (int j = 0; j < K16; ++j)
    for (int e = 0; e < 4; ++e) bfac[j][e] = next_bits(seed);
  for (int n = 0; n < 2; ++n)
    for (int j = 0; j < K16; ++j) afr[n][j][0] = next_bits(seed), afr[n][j][1] = next_bits(seed);
  __syncthreads();
  hilo::cuda_ptx::fence_proxy_async();
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int wg = threadIdx.x / 128;
  // x: BN <= 256 rows x 128 bytes (32 KB) at 0; the warpgroup's rows of B (8 KB) at 64 KB + 8 KB wg; A^T (8 KB) at 96 KB.
  const uint64_t x_desc = hilo::cuda_ptx::smem_desc_sw128(base);
  const uint64_t b_desc = hilo::cuda_ptx::smem_desc_sw128(base + 65536 + 8192 * wg);
  const uint64_t at_desc = hilo::cuda_ptx::smem_desc_sw128(base + 98304);
  float acc[BN / 2], s[32], kept = 0.0f;
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
#pragma unroll
  for (int i = 0; i < 32; ++i) s[i] = 0.0f;
  __syncthreads();
  const long long start = clock64();
#pragma unroll 1
  for (int it = 0; it < iters; ++it) {
    wgmma_fence();
    wgmma_bf16_rs<BN>(acc, a, x_desc);
    if constexpr (Mode == kScaleWgmma) wgmma_m64n64k16_bf16_ss(s, b_desc, at_desc);
    wgmma_commit();
    if constexpr (Mode == kScaleMmaSync) {  // the wgmma GEMM's per-step S, while the product runs
      float sc[2][4];
      scale_mma<R8>(bfac, afr, sc);
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) kept += sc[n][e];
    }
    wgmma_wait<1>();
  }
  wgmma_wait<0>();
  hilo::cuda_ptx::fence_operands(acc);
  hilo::cuda_ptx::fence_operands(s);
  __syncthreads();
  const long long stop = clock64();
  if (threadIdx.x == 0) cycles[blockIdx.x] = stop - start;
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) kept += acc[i];
#pragma unroll
  for (int i = 0; i < 32; ++i) kept += s[i];
  if (kept == 1.2345f) sink[threadIdx.x] = kept;  // never true in practice; keeps the work
#endif
}

// mma.sync.m16n8k16 (bf16 -> f32) alone: each warp `Chains` independent accumulators, one mma into each per pass.
template <int Chains>
__global__ void mma_sync_rate(int iters, long long* cycles, float* sink) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  uint32_t seed = 2654435761u * (threadIdx.x + 1) + blockIdx.x;
  uint32_t a[4];
  for (int i = 0; i < 4; ++i) a[i] = next_bits(seed);
  const uint32_t b0 = next_bits(seed), b1 = next_bits(seed);
  float d[Chains][4] = {};
  __syncthreads();
  const long long start = clock64();
  for (int it = 0; it < iters; ++it)
#pragma unroll
    for (int c = 0; c < Chains; ++c) hilo::lords::cuda_detail::mma_bf16(d[c], a, b0, b1);
  __syncthreads();
  const long long stop = clock64();
  if (threadIdx.x == 0) cycles[blockIdx.x] = stop - start;
  float kept = 0.0f;
  for (int c = 0; c < Chains; ++c) kept += d[c][0] + d[c][1] + d[c][2] + d[c][3];
  if (kept == 1.2345f) sink[threadIdx.x] = kept;
#endif
}

// The mean over CTAs of a kernel's SM cycles, one CTA per SM.
template <typename Kernel>
double mean_cycles(Kernel kernel, int sms, int threads, size_t smem, int iters) {
  HILO_BENCH_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  long long* cycles = nullptr;
  float* sink = nullptr;
  HILO_BENCH_CUDA(cudaMalloc(&cycles, sms * sizeof(long long)));
  HILO_BENCH_CUDA(cudaMalloc(&sink, 1024 * sizeof(float)));
  kernel<<<sms, threads, smem>>>(iters / 10, cycles, sink);  // warm-up (clocks up)
  kernel<<<sms, threads, smem>>>(iters, cycles, sink);
  HILO_BENCH_CUDA(cudaGetLastError());
  HILO_BENCH_CUDA(cudaDeviceSynchronize());
  std::vector<long long> host(sms);
  HILO_BENCH_CUDA(cudaMemcpy(host.data(), cycles, sms * sizeof(long long), cudaMemcpyDeviceToHost));
  HILO_BENCH_CUDA(cudaFree(cycles));
  HILO_BENCH_CUDA(cudaFree(sink));
  double mean = 0;
  for (long long c : host) mean += static_cast<double>(c) / sms;
  return mean;
}

template <int R8, int BN>
double step_cycles(int mode, int sms, int iters) {
  const auto kernel = mode == kProductOnly    ? step_rate<kProductOnly, R8, BN>
                      : mode == kScaleMmaSync ? step_rate<kScaleMmaSync, R8, BN>
                                              : step_rate<kScaleWgmma, R8, BN>;
  return mean_cycles(kernel, sms, kThreads, kSmemBytes, iters) / iters;
}
template <int R8>
double step_cycles_rows(int rows, int mode, int sms, int iters) {
  return rows == 16 ? step_cycles<R8, 16>(mode, sms, iters) : step_cycles<R8, 256>(mode, sms, iters);
}

// Tensor FLOPs per step and SM: the product, and S in each design (mma.sync: R8 / 2 m16n8k16 and an m16n8k8 for an
// odd R8, per 8-column half of the step, per warp; wgmma: one m64n64k16 per warpgroup, whatever the rank <= 64).
double product_flop(int rows) { return 2.0 * 2 * 64 * rows * 16; }
double scale_flop(int mode, int r8) {
  if (mode == kScaleMmaSync) return 8.0 * 2 * (r8 / 2 * 4096.0 + r8 % 2 * 2048.0);
  return mode == kScaleWgmma ? 2.0 * 2 * 64 * 64 * 16 : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Tensor-pipe cycles per 16-column step of the weights at 16 and 256 activation rows: the product alone, "
               "with S on mma.sync, with S on wgmma; and mma.sync's own rate"};
  std::vector<int> rows_list{16, 256}, ranks{56, 64};
  int iters = 20000;
  std::string json_path;
  app.add_option("--rows", rows_list, "Activation rows per CTA (the product's N)")
      ->delimiter(',')
      ->check(CLI::IsMember({16, 256}));
  app.add_option("--ranks", ranks, "Padded ranks of S (56: 7 groups of 8, the 14336-wide layers' 49; 64)")
      ->delimiter(',')
      ->check(CLI::IsMember({56, 64}));
  app.add_option("--iters", iters, "Steps per CTA")->check(CLI::Range(100, 10000000));
  app.add_option("--json", json_path, "Write the results as JSON here");
  CLI11_PARSE(app, argc, argv);

  int dev = 0, sms = 0;
  const cudaDeviceProp prop = hilo_bench::hopper_or_exit("bench_scale_step_rate");
  HILO_BENCH_CUDA(cudaGetDevice(&dev));
  HILO_BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  std::printf("%s, %d SMs; one CTA of 2 warpgroups per SM, %d steps\n", prop.name, sms, iters);
  std::printf("| rows | rank | step | tensor FLOP per step and SM | cycles per step | vs the product alone | FLOP per "
              "cycle and SM | of 4096 |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  nlohmann::json steps = nlohmann::json::array(), mma = nlohmann::json::array();
  const char* names[] = {"product", "+ S on mma.sync", "+ S on wgmma"};
  for (int rows : rows_list)
    for (int rank : ranks) {
      double product_cycles = 0;
      for (int mode : {kProductOnly, kScaleMmaSync, kScaleWgmma}) {
        const double c = rank == 56 ? step_cycles_rows<7>(rows, mode, sms, iters)
                                    : step_cycles_rows<8>(rows, mode, sms, iters);
        if (mode == kProductOnly) product_cycles = c;
        const double flop = product_flop(rows) + scale_flop(mode, rank / 8);
        std::printf("| %d | %d | %s | %.0f | %.1f | %.3f | %.0f | %.0f%% |\n", rows, rank, names[mode], flop, c,
                    c / product_cycles, flop / c, 100 * flop / c / 4096);
        steps.push_back({{"rows", rows}, {"rank", rank}, {"step", names[mode]}, {"flop", flop}, {"cycles", c},
                         {"vs_product", c / product_cycles}});
      }
    }
  std::printf("\n| mma.sync.m16n8k16: warps per SM | chains per warp | FLOP per cycle and SM | of 4096 |\n"
              "| --- | --- | --- | --- |\n");
  for (int warps : {4, 8, 16})
    for (int chains : {2, 4, 8}) {
      const auto kernel = chains == 2 ? mma_sync_rate<2> : chains == 4 ? mma_sync_rate<4> : mma_sync_rate<8>;
      const double c = mean_cycles(kernel, sms, 32 * warps, 0, iters);
      const double per_cycle = 4096.0 * chains * warps * iters / c;
      std::printf("| %d | %d | %.0f | %.0f%% |\n", warps, chains, per_cycle, 100 * per_cycle / 4096);
      mma.push_back({{"warps", warps}, {"chains", chains}, {"flop_per_cycle_sm", per_cycle}});
    }
  if (!json_path.empty()) {
    const nlohmann::json doc = {{"device", prop.name}, {"sms", sms}, {"iters", iters}, {"steps", steps},
                                {"mma_sync", mma}};
    if (!hilo::bench::write_json(json_path, doc)) return 1;
  }
  return 0;
}
