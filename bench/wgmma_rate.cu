// Microbenchmark: the tensor pipe's rate for Hopper's warpgroup MMA at the small N the LoRDS kernels use. The batch-1
// GEMV multiplies the decoded codes (A, registers) by x * A (B, shared memory) in m64n56k16; a batch-16 kernel that
// rebuilt the scale tile on wgmma would need m64n64k16 for S = B A and m64n16k16 for the product with x. Whether the
// pipe sustains its peak at such N (the data sheet's 4096 dense FLOP per cycle and SM) decides both the batch-1
// GEMV's ceiling and whether that design can pay (docs/notes/gpu-lords.md, "Twentieth session").
//
// One CTA per SM (the shared memory asked for leaves room for one), W warpgroups per CTA. Each warpgroup issues
// groups of 4 wgmma.m64nNk16 (bf16 inputs, f32 accumulators, all into one accumulator set as a GEMM's k loop does),
// commits each group and waits until at most one other is in flight. A is in registers ("RS") or in shared memory
// ("SS"); the operands hold random bits (zeros would let the clock run higher than real data does). Per CTA the SM
// cycles (clock64) of the loop; the table gives dense FLOP per cycle and SM (the mean over CTAs) and the grid's
// TFLOP/s from CUDA events.
//
// usage: bench_wgmma_rate [--n 8,16,32,56,64,128,256] [--warpgroups 1,2,4] [--iters 4000] [--json PATH]
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
#include "lords/cuda/wgmma_rs.cuh"

namespace {

constexpr int kSmemBytes = 160 * 1024;  // one CTA per SM
constexpr int kGroup = 4;  // wgmmas per commit group (a GEMM's 64-column chunk: 4 k-steps)

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
using hilo::cuda_ptx::fence_operands;
using hilo::cuda_ptx::wgmma_commit;
using hilo::cuda_ptx::wgmma_fence;
using hilo::cuda_ptx::wgmma_wait;

// Accumulator operand lists for N / 2 floats (ptx.cuh has the others).
#define WGMMA_RATE_ACC4 HILO_WGMMA_D4(0)
#define WGMMA_RATE_R4 "%0,%1,%2,%3"

template <int N>
struct Wgmma;

// One wgmma.m64nNk16.f32.bf16.bf16 accumulating into d, A in registers (rs) or shared memory (ss), B in shared
// memory (K-major). Operands: the N / 2 accumulators %0 .., then the A registers or A's descriptor, B's descriptor
// (AR / AD name them) and the scale-d flag (SD; always 1: accumulate).
#define DEFINE_WGMMA(N, ACC, REGS, AR, AD, SD_RS, SD_SS)                                                        \
  template <>                                                                                                   \
  struct Wgmma<N> {                                                                                             \
    __device__ __forceinline__ static void rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b) {     \
      asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, " SD_RS ", 0;\n"                                          \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 {" REGS "}, " AR ", p, 1, 1, 0;\n}\n" \
                   : ACC                                                                                        \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));                          \
    }                                                                                                           \
    __device__ __forceinline__ static void ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b) {            \
      asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, " SD_SS ", 0;\n"                                          \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 {" REGS "}, " AD ", p, 1, 1, 0, 0;\n}\n" \
                   : ACC                                                                                        \
                   : "l"(desc_a), "l"(desc_b), "r"(1));                                                         \
    }                                                                                                           \
  };
DEFINE_WGMMA(8, WGMMA_RATE_ACC4, WGMMA_RATE_R4, "{%4,%5,%6,%7}, %8", "%4, %5", "%9", "%6")
DEFINE_WGMMA(16, HILO_WGMMA_ACC8, HILO_WGMMA_R8, "{%8,%9,%10,%11}, %12", "%8, %9", "%13", "%10")
DEFINE_WGMMA(32, HILO_WGMMA_ACC16, HILO_WGMMA_R16, "{%16,%17,%18,%19}, %20", "%16, %17", "%21", "%18")
DEFINE_WGMMA(56, HILO_WGMMA_ACC28, HILO_WGMMA_R28, "{%28,%29,%30,%31}, %32", "%28, %29", "%33", "%30")
DEFINE_WGMMA(64, HILO_WGMMA_ACC32, HILO_WGMMA_R32, "{%32,%33,%34,%35}, %36", "%32, %33", "%37", "%34")
DEFINE_WGMMA(128, HILO_WGMMA_ACC64, HILO_WGMMA_R64, "{%64,%65,%66,%67}, %68", "%64, %65", "%69", "%66")
DEFINE_WGMMA(256, HILO_WGMMA_ACC128, HILO_WGMMA_R128, "{%128,%129,%130,%131}, %132", "%128, %129", "%133", "%130")
#undef DEFINE_WGMMA

// K-major operands without swizzle: 8 x 16-byte core matrices, 128 bytes apart along K and 256 along M / N.
__device__ __forceinline__ uint64_t desc_noswizzle(uint32_t addr) {
  return hilo::lords::cuda_detail::smem_desc_noswizzle(addr, 128, 256);
}
#endif

// cycles[blockIdx.x] = SM cycles of the loop; sink keeps the accumulators alive.
template <int N, bool RS>
__global__ void wgmma_rate(int iters, long long* cycles, float* sink) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smem[];
  // Random bits in the operands (an LCG per thread), so the tensor cores toggle as with real data.
  uint32_t seed = 2654435761u * (threadIdx.x + 1) + blockIdx.x;
  for (int i = threadIdx.x; i < kSmemBytes / 4; i += blockDim.x) {
    seed = seed * 1664525u + 1013904223u;
    reinterpret_cast<uint32_t*>(smem)[i] = seed & 0x3F7F3F7Fu;  // bf16 pairs of moderate magnitude, no NaN / Inf
  }
  uint32_t a[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    seed = seed * 1664525u + 1013904223u;
    a[i] = seed & 0x3F7F3F7Fu;
  }
  __syncthreads();
  hilo::cuda_ptx::fence_proxy_async();
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int wg = threadIdx.x / 128;
  // Each warpgroup its own operands: A (2 KB) at 8 KB * wg (SS), B (up to 8 KB) at 64 KB + 16 KB * wg.
  const uint64_t desc_a = desc_noswizzle(base + wg * 8192), desc_b = desc_noswizzle(base + 65536 + wg * 16384);
  float d[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; ++i) d[i] = 0.0f;
  __syncthreads();
  const long long start = clock64();
  for (int it = 0; it < iters; ++it) {
    wgmma_fence();
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      if constexpr (RS) Wgmma<N>::rs(d, a, desc_b);
      else Wgmma<N>::ss(d, desc_a, desc_b);
    }
    wgmma_commit();
    wgmma_wait<1>();
  }
  wgmma_wait<0>();
  fence_operands(d);
  __syncthreads();
  const long long stop = clock64();
  if (threadIdx.x == 0) cycles[blockIdx.x] = stop - start;
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < N / 2; ++i) s += d[i];
  if (s == 1.2345f) sink[threadIdx.x] = s;  // never true in practice; keeps the work
#endif
}


struct Result {
  double flop_per_cycle_sm, tflops, us;
  int regs;
};

template <int N, bool RS>
Result run(int sms, int warpgroups, int iters) {
  auto* kernel = wgmma_rate<N, RS>;
  HILO_BENCH_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  cudaFuncAttributes attr{};
  HILO_BENCH_CUDA(cudaFuncGetAttributes(&attr, kernel));
  if (attr.numRegs * 128 * warpgroups > 65536) return {0, 0, 0, attr.numRegs};  // does not fit one SM
  long long* cycles = nullptr;
  float* sink = nullptr;
  HILO_BENCH_CUDA(cudaMalloc(&cycles, sms * sizeof(long long)));
  HILO_BENCH_CUDA(cudaMalloc(&sink, 512 * sizeof(float)));
  kernel<<<sms, 128 * warpgroups, kSmemBytes>>>(iters / 10, cycles, sink);  // warm-up (clocks up)
  HILO_BENCH_CUDA(cudaGetLastError());
  cudaEvent_t a, b;
  HILO_BENCH_CUDA(cudaEventCreate(&a));
  HILO_BENCH_CUDA(cudaEventCreate(&b));
  HILO_BENCH_CUDA(cudaEventRecord(a));
  kernel<<<sms, 128 * warpgroups, kSmemBytes>>>(iters, cycles, sink);
  HILO_BENCH_CUDA(cudaEventRecord(b));
  HILO_BENCH_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  HILO_BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
  std::vector<long long> host(sms);
  HILO_BENCH_CUDA(cudaMemcpy(host.data(), cycles, sms * sizeof(long long), cudaMemcpyDeviceToHost));
  double mean_cycles = 0;
  for (long long c : host) mean_cycles += static_cast<double>(c) / sms;
  const double flop_per_cta = 2.0 * 64 * N * 16 * kGroup * iters * warpgroups;
  HILO_BENCH_CUDA(cudaFree(cycles));
  HILO_BENCH_CUDA(cudaFree(sink));
  HILO_BENCH_CUDA(cudaEventDestroy(a));
  HILO_BENCH_CUDA(cudaEventDestroy(b));
  return {flop_per_cta / mean_cycles, flop_per_cta * sms / (ms * 1e-3) / 1e12, ms * 1e3, attr.numRegs};
}

template <bool RS>
Result run_n(int n, int sms, int warpgroups, int iters) {
  switch (n) {
    case 8: return run<8, RS>(sms, warpgroups, iters);
    case 16: return run<16, RS>(sms, warpgroups, iters);
    case 32: return run<32, RS>(sms, warpgroups, iters);
    case 56: return run<56, RS>(sms, warpgroups, iters);
    case 64: return run<64, RS>(sms, warpgroups, iters);
    case 128: return run<128, RS>(sms, warpgroups, iters);
    default: return run<256, RS>(sms, warpgroups, iters);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The tensor pipe's rate for wgmma.m64nNk16 (bf16 -> f32) at each N, A in registers or shared memory"};
  std::vector<int> ns{8, 16, 32, 56, 64, 128, 256}, warpgroups{1, 2, 4};
  int iters = 4000;
  std::string json_path;
  app.add_option("--n", ns, "wgmma N")->delimiter(',')->check(CLI::IsMember({8, 16, 32, 56, 64, 128, 256}));
  app.add_option("--warpgroups", warpgroups, "Warpgroups per SM")->delimiter(',')->check(CLI::Range(1, 4));
  app.add_option("--iters", iters, "Groups per warpgroup")->check(CLI::Range(10, 10000000));
  app.add_option("--json", json_path, "Write the results as JSON here");
  CLI11_PARSE(app, argc, argv);

  int dev = 0, sms = 0, clock_khz = 0;
  const cudaDeviceProp prop = hilo_bench::hopper_or_exit("bench_wgmma_rate");
  HILO_BENCH_CUDA(cudaGetDevice(&dev));
  HILO_BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  HILO_BENCH_CUDA(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
  std::printf("%s, %d SMs, %d MHz; wgmma.m64nNk16 bf16 -> f32, %d per commit group, %d groups per warpgroup\n",
              prop.name, sms, clock_khz / 1000, kGroup, iters);
  std::printf("| A operand | N | warpgroups per SM | registers | FLOP per cycle and SM | of 4096 | TFLOP/s |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  nlohmann::json rows = nlohmann::json::array();
  for (const bool rs : {true, false})
    for (int n : ns)
      for (int w : warpgroups) {
        const Result r = rs ? run_n<true>(n, sms, w, iters) : run_n<false>(n, sms, w, iters);
        if (r.us == 0) {
          std::printf("| %s | %d | %d | %d | (does not fit) | | |\n", rs ? "registers" : "shared", n, w, r.regs);
          continue;
        }
        std::printf("| %s | %d | %d | %d | %.0f | %.0f%% | %.0f |\n", rs ? "registers" : "shared", n, w, r.regs,
                    r.flop_per_cycle_sm, 100 * r.flop_per_cycle_sm / 4096, r.tflops);
        rows.push_back({{"a", rs ? "registers" : "shared"}, {"n", n}, {"warpgroups", w}, {"registers", r.regs},
                        {"flop_per_cycle_sm", r.flop_per_cycle_sm}, {"tflops", r.tflops}, {"us", r.us}});
      }
  if (!json_path.empty()) {
    const nlohmann::json doc = {{"device", prop.name}, {"sms", sms}, {"clock_khz", clock_khz}, {"group", kGroup},
                                {"iters", iters}, {"rows", rows}};
    if (!hilo::bench::write_json(json_path, doc)) return 1;
  }
  return 0;
}
