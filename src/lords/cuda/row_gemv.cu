// Block-wise GEMV for 1..8 activation rows in which each CTA owns whole rows (the maths and operands of
// mma_gemv.hpp; the tiled code layout of src/lords/gpu_layout.hpp).
//
// Why a second GEMV: the cluster GEMV (mma_gemv.cu) gives each warp its own 16 rows and splits the columns across a
// cluster of CTAs, so every call pays a cluster reduction and, per CTA, a serial prologue for a few KB of codes
// (1024x4096 at batch 1: 7.4 µs for 2 MB on an H200). Here the 8 warps of a CTA split the columns of the same 32 rows
// and add their partial sums in shared memory, so most layers need no cluster at all; only layers with too few row
// tiles to fill the GPU (or activations too wide for shared memory) split the columns over a cluster.
//
// Per CTA: x (bf16) and the CTA's block scales are requested by cp.async first (L2 hits that would otherwise queue
// behind the codes), then the first tiles' codes; the pair table is written from the kernel parameters meanwhile.
// x then becomes mma B fragments in place, [activation row][step][4 lanes] x 8 bytes, which the lanes whose
// activation row exists read conflict-free: fp16 unscaled where the slab's range allows, else scaled by one power of
// two (docs/lords.md section 8). Warp w takes column tiles w, w + 8, ... of the slab (neighbouring warps read
// neighbouring kilobytes), keeps kDepth tiles of codes in flight in registers, and scales its per-block sums by the
// block scale in f32. Deterministic: every sum is added in a fixed order.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "../gpu_layout.hpp"
#include "mma_common.cuh"
#include "row_gemv.hpp"

namespace hilo::lords::cuda_detail {
namespace {

using gpu_layout::kTileCols;
using gpu_layout::kTileRows;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kSteps = gpu_layout::kStepsPerTile;
constexpr int kMaxRows = 8;                 // activation rows per launch (the mma's 8 columns)
constexpr int kMaxCluster = 8;              // column slabs per row range
constexpr int kMaxFragBytes = 96 * 1024;    // x fragments of a slab: steps x rows x 32 bytes
constexpr int kMaxSmemBytes = 200 * 1024;   // the launcher falls back to the cluster GEMV above this

template <int Bits, int MT>
struct RowShape {
  static constexpr int kPairs = 1 << (2 * Bits), kWords = 2 * Bits, kTileBytes = 256 * Bits;
  // Tiles in flight per warp: 4 KB of codes at 4 bits. Two CTAs per SM (<= 128 registers): 4 tiles per row tile
  // with two row tiles per CTA needs ~170 registers, one CTA per SM, and measured slower (H200, 4096x4096 at
  // batch 1: 9.6 against 7.5 µs).
  static constexpr int kDepth = 4 / MT;
  // Pair table rows of 256 bytes (lut_offset, fill_pair_table in mma_common.cuh).
  static constexpr int kLutBytes = kPairs * 256;
};

// Shared memory of a launch whose slab has `tiles` column tiles and touches at most `blocks` scale blocks.
template <int Bits, int MT>
size_t row_smem_bytes(int tiles, int nb, int blocks) {
  using S = RowShape<Bits, MT>;
  return S::kLutBytes + size_t{32} * tiles * kSteps * nb + size_t{32} * MT * blocks +
         size_t{4} * ((kWarps + 2) * nb * MT * kTileRows + kMaxCluster);  // + the inbox (cluster_inbox_floats)
}

// x[16] (bf16 pairs w[0..7]) -> the 4 lanes' B fragments of one step: lane t holds (x[2t], x[2t+1]) and
// (x[2t+8], x[2t+9]) as fp16 pairs, each value times `scale`.
__device__ __forceinline__ void step_fragments(const uint32_t (&w)[8], float scale, uint4& lo, uint4& hi) {
  uint32_t f[8];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    f[2 * k] = half2_bits(bf16_lo(w[k]) * scale, bf16_hi(w[k]) * scale);
    f[2 * k + 1] = half2_bits(bf16_lo(w[k + 4]) * scale, bf16_hi(w[k + 4]) * scale);
  }
  lo = make_uint4(f[0], f[1], f[2], f[3]);
  hi = make_uint4(f[4], f[5], f[6], f[7]);
}

// BS: steps (16 columns) per scale block within a tile: 2, 4 or 8 (blocks of 32, 64, >= 128 columns).
template <int Bits, int MT, int BS>
__global__ void __launch_bounds__(kThreads, 2) row_gemv_kernel(MmaArgs g, int nb, int tiles_per_cta) {
  using S = RowShape<Bits, MT>;
  constexpr int kWords = S::kWords, kTileBytes = S::kTileBytes, PD = S::kDepth, kRows = MT * kTileRows;
  static_assert(PD % 2 == 0 && kSteps % BS == 0);
  // Shared memory: the pair table first (lookups index smem directly), x fragments [nb][steps][2] x 16 B, block
  // scales bf16 [MT][nblk][16], the warps' sums [kWarps][nb][kRows], the CTA's sums [nb][kRows].
  extern __shared__ __align__(16) unsigned char smem[];
  uint4* xs = reinterpret_cast<uint4*>(smem + S::kLutBytes);
  __shared__ unsigned warp_max[kWarps];
  __shared__ int x_has_normal;

  if (gridDim.x > 1 && g.push_sum) cluster_arrive_relaxed();  // matched in cluster_sum_push
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  const int c0 = blockIdx.x * tiles_per_cta, c1 = min(c0 + tiles_per_cta, g.col_tiles);
  const int ntiles = c1 - c0, steps = ntiles * kSteps;
  const int my_tiles = ntiles > warp ? (ntiles - warp + kWarps - 1) / kWarps : 0;  // tiles warp, warp + 8, ...
  const int rt0 = blockIdx.y * MT;
  uint16_t* scale_s = reinterpret_cast<uint16_t*>(xs + steps * nb * 2);

  // 1. x of the slab as 16-byte chunks, [row][step][half] (zero past the layer), and the block scales, by cp.async,
  // requested before the codes: behind 32 KB of code loads per CTA these L2 hits waited ~20% of the kernel's time
  // (H200, 14336x4096 at batch 1, Nsight Compute's stall samples). Launched early (g.early_start), x may still be
  // written by the previous kernel: then it is requested after the codes and griddep_wait().
  const int col0 = c0 * kTileCols;
  const uint32_t xs_addr = smem_u32(xs);
  const auto request_x = [&] {
    for (int b = 0; b < nb; ++b) {
      const uint16_t* xr = g.x + static_cast<int64_t>(b) * g.cols;
      for (int i = threadIdx.x; i < steps * 2; i += kThreads) {
        const int col = col0 + 8 * i;
        const bool inside = col < g.cols;
        cp_async16(xs_addr + 16 * (b * steps * 2 + i), xr + (inside ? col : 0), inside ? 16 : 0);
      }
    }
  };
  if (!g.early_start) request_x();
  const int blk_lo = col0 >> g.block_shift;
  const int nblk = ((c1 * kTileCols - 1) >> g.block_shift) - blk_lo + 1;
  float* partial = reinterpret_cast<float*>(scale_s + MT * nblk * kTileRows);
  float* cta_sum = partial + kWarps * nb * kRows;
  float* inbox = cta_sum + nb * kRows;  // the other slabs' sums of this CTA's elements (cluster_sum_push)
  const uint32_t scale_addr = smem_u32(scale_s);
#pragma unroll
  for (int m = 0; m < MT; ++m) {  // 2 chunks of 8 scales per block
    const int rt = min(rt0 + m, g.row_tiles - 1);
    const uint16_t* src = g.scales + (static_cast<int64_t>(rt) * g.scale_blocks + blk_lo) * kTileRows;
    for (int i = threadIdx.x; i < nblk * 2; i += kThreads) cp_async16(scale_addr + 16 * (m * nblk * 2 + i), src + 8 * i, 16);
  }

  // 2. This warp's first tiles of codes: in flight while the CTA sets up.
  const uint8_t* codes[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    const int rt = min(rt0 + m, g.row_tiles - 1);  // a row tile past the layer repeats the last one, never stored
    codes[m] = g.codes + (static_cast<int64_t>(rt) * g.col_tiles + c0 + warp) * kTileBytes;
  }
  uint32_t buf[PD][MT][kWords];
#pragma unroll
  for (int d = 0; d < PD; ++d)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int i = 0; i < kWords; ++i) buf[d][m][i] = 0;
      if (d < my_tiles) load_tile<Bits>(codes[m] + static_cast<int64_t>(d) * kWarps * kTileBytes, lane, buf[d][m]);
    }

  // 3. The pair table from the codebook in the kernel's parameters (no global load to wait for). The next kernel may
  // start its own weight loads now; this one reads x (and writes y) only after the previous kernel has completed.
  griddep_launch_dependents();
  fill_pair_table<Bits>(g.values_h, smem, kThreads);
  if (threadIdx.x == 0) x_has_normal = 0;
  griddep_wait();
  if (g.early_start) request_x();
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  // 4. x to fp16 B fragments, in place: each 32-byte (row, step) chunk of 16 bf16 becomes the 4 lanes' fragments.
  // Fast path: unscaled, exact while max |x| is in [2^-6, 2^15) (every bf16 value >= 2^-17 is then exact in fp16,
  // and smaller ones are below 2^-11 of the largest). Otherwise (rare: tiny, huge or non-finite activations) the
  // slab is converted again from global memory with one power of two that brings max |x| just under 2^15.
  unsigned mx = 0;
  for (int i = threadIdx.x; i < steps * nb; i += kThreads) {
    const uint4 lo = xs[2 * i], hi = xs[2 * i + 1];
    mx = bf16_abs_max(hi, bf16_abs_max(lo, mx));
    const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    step_fragments(w, 1.0f, xs[2 * i], xs[2 * i + 1]);
  }
  if (__any_sync(0xFFFFFFFFu, mx >= 0x3C80u) && lane == 0) x_has_normal = 1;  // some |x| >= 2^-6
  float unscale = 1.0f;
  if (__syncthreads_or(mx >= 0x4700u) || !x_has_normal) {  // some |x| >= 2^15 (or Inf/NaN), or all |x| < 2^-6
    const unsigned xmax_bits = cta_max<kWarps>(mx, warp_max);
    const int e2 = fp16_exponent(__uint_as_float(xmax_bits << 16));
    const float scale = ldexpf(1.0f, e2);
    unscale = ldexpf(1.0f, -e2);
    for (int i = threadIdx.x; i < steps * nb; i += kThreads) {
      const int b = i / steps, col = col0 + 16 * (i % steps);
      uint32_t w[8] = {};
      if (col < g.cols) {
        const uint4* src = reinterpret_cast<const uint4*>(g.x + static_cast<int64_t>(b) * g.cols + col);
        const uint4 lo = src[0], hi = src[1];
        w[0] = lo.x, w[1] = lo.y, w[2] = lo.z, w[3] = lo.w, w[4] = hi.x, w[5] = hi.y, w[6] = hi.z, w[7] = hi.w;
      }
      step_fragments(w, scale, xs[2 * i], xs[2 * i + 1]);
    }
    __syncthreads();
  }

  // 5. Main loop. Per tile: the 8 B fragments, then per row tile all 32 pair lookups before the 8 mma, so the
  // shared-memory latency is paid once per tile; blocks alternate between two accumulator sets, so a block's scaling
  // overlaps the next block's mma chain.
  const uint32_t lane4 = 4 * lane;
  const uint2* xf = reinterpret_cast<const uint2*>(xs) + gq * steps * 4 + t;  // + step * 4
  const bool has_x = gq < nb;
  float acc[2][MT][4], yb[MT][4];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int k = 0; k < 4; ++k) acc[0][m][k] = acc[1][m][k] = yb[m][k] = 0.0f;

  for (int j0 = 0; j0 < my_tiles; j0 += PD) {
#pragma unroll
    for (int d = 0; d < PD; ++d) {  // ring slot d holds the warp's tile j0 + d
      const int j = j0 + d;
      if (j >= my_tiles) break;
      const int lt = warp + kWarps * j;  // tile within the slab
      const uint2* xt = xf + lt * kSteps * 4;
      uint2 bfr[kSteps];
#pragma unroll
      for (int s = 0; s < kSteps; ++s) bfr[s] = has_x ? xt[s * 4] : make_uint2(0u, 0u);
      const int blk_tile = ((col0 + lt * kTileCols) >> g.block_shift) - blk_lo;  // tiles start on block boundaries
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        uint32_t a[kSteps][4];
#pragma unroll
        for (int s = 0; s < kSteps; ++s)
#pragma unroll
          for (int slot = 0; slot < 4; ++slot)
            a[s][slot] = *reinterpret_cast<const uint32_t*>(smem + lut_offset<Bits>(buf[d][m], 4 * s + slot, lane4));
        const uint16_t* sc = scale_s + (m * nblk + blk_tile) * kTileRows + gq;
#pragma unroll
        for (int s = 0; s < kSteps; ++s) {
          const int set = BS < kSteps ? (s / BS) & 1 : d & 1;  // PD is even: slot parity = tile parity
          float(&c)[4] = set ? acc[1][m] : acc[0][m];
          mma16816(c, a[s], bfr[s]);
          if ((s + 1) % BS == 0) {  // a scale block (or the tile) ends here
            const int k = s / BS;   // block within the tile
            const float s0 = __uint_as_float(static_cast<uint32_t>(sc[k * kTileRows]) << 16);
            const float s1 = __uint_as_float(static_cast<uint32_t>(sc[k * kTileRows + 8]) << 16);
            yb[m][0] = fmaf(c[0], s0, yb[m][0]);
            yb[m][1] = fmaf(c[1], s0, yb[m][1]);
            yb[m][2] = fmaf(c[2], s1, yb[m][2]);
            yb[m][3] = fmaf(c[3], s1, yb[m][3]);
            c[0] = c[1] = c[2] = c[3] = 0.0f;
          }
        }
      }
#pragma unroll
      for (int m = 0; m < MT; ++m)  // refill the slot with the tile PD ahead
        if (j + PD < my_tiles)
          load_tile<Bits>(codes[m] + static_cast<int64_t>(j + PD) * kWarps * kTileBytes, lane, buf[d][m]);
    }
  }

  // 6. The warps' sums (rows gq, gq + 8 of each row tile x activation rows 2t, 2t + 1), added in warp order.
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int b = 2 * t + (k & 1), r = m * kTileRows + gq + 8 * (k >> 1);
      if (b < nb) partial[(warp * nb + b) * kRows + r] = yb[m][k];
    }
  __syncthreads();
  const int n_out = nb * kRows;
  float v = 0.0f;
  if (threadIdx.x < n_out) {
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += partial[w * nb * kRows + threadIdx.x];
    v *= unscale;
  }
  const auto store = [&](int i, float value) {
    const int64_t row = static_cast<int64_t>(rt0) * kTileRows + i % kRows;
    if (row < g.rows) {
      const __nv_bfloat16 h = __float2bfloat16_rn(value);
      g.y[i / kRows * g.rows + row] = *reinterpret_cast<const uint16_t*>(&h);
    }
  };
  if (gridDim.x == 1) {
    if (threadIdx.x < n_out) store(threadIdx.x, v);
    return;
  }
  // Column slabs of one row range form a cluster: their sums are added in slab order through distributed shared
  // memory (each thread pushes the element it wrote).
  if (threadIdx.x < n_out) cta_sum[threadIdx.x] = v;
  cluster_add<kMaxCluster>(g.push_sum, cta_sum, inbox, n_out, store);
}

struct RowGeometry {
  int ks = 0, tiles_per_cta = 0, nblk_max = 0;
  size_t smem = 0;
};

// Column slabs: enough CTAs to give every SM one (1024x4096: 32 row CTAs -> 5 slabs), and slabs narrow enough for
// the x fragments of nb rows; HILO_ROWS_SPLIT=1..8 forces the count for sweeps.
template <int Bits, int MT>
RowGeometry plan_rows(const MmaArgs& g, int row_ctas, int nb) {
  static const int forced = env_override("HILO_ROWS_SPLIT", 1, kMaxCluster, 0);
  int ks = forced > 0 ? forced : std::clamp((g.sm_count + row_ctas - 1) / row_ctas, 1, kMaxCluster);
  ks = std::min(ks, g.col_tiles);
  RowGeometry geo;
  for (;; ++ks) {
    geo.tiles_per_cta = (g.col_tiles + ks - 1) / ks;
    geo.ks = (g.col_tiles + geo.tiles_per_cta - 1) / geo.tiles_per_cta;
    const int block = 1 << g.block_shift;
    geo.nblk_max = (geo.tiles_per_cta * kTileCols + block - 1) / block + 1;
    geo.smem = row_smem_bytes<Bits, MT>(geo.tiles_per_cta, nb, geo.nblk_max);
    const bool fits = size_t{32} * geo.tiles_per_cta * kSteps * nb <= kMaxFragBytes && geo.smem <= kMaxSmemBytes;
    if (fits || ks >= std::min(kMaxCluster, g.col_tiles)) return fits ? geo : RowGeometry{};
  }
}

template <int Bits, int MT, int BS>
int launch_rows(MmaArgs g, cudaStream_t stream) {
  const int row_ctas = (g.row_tiles + MT - 1) / MT;
  const int nb_max = static_cast<int>(std::min<int64_t>(g.batch, kMaxRows));
  const RowGeometry geo = plan_rows<Bits, MT>(g, row_ctas, nb_max);
  if (geo.ks == 0) return -1;  // does not fit: the caller uses the cluster GEMV
  constexpr auto kernel = row_gemv_kernel<Bits, MT, BS>;
  if (const int e = allow_smem_once<kernel>(g.device, kMaxSmemBytes); e != 0) return e;
  // Above 4 activation rows the row GEMV serves the call only where all its CTAs run in one wave (H200, NF4 B=64,
  // batch 8: 4096x4096 11.4 against the cluster GEMV's 14.5 µs and 1024x4096 6.2 against 9.7 in one wave;
  // 14336x4096 35.9 against 23.4 µs and 4096x14336 41.5 against 33.6 µs in 3-4 waves).
  if (nb_max > 4 && int64_t{geo.ks} * row_ctas > int64_t{ctas_per_sm<kernel>(g.device, kThreads, geo.smem)} * g.sm_count)
    return -1;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(geo.ks);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(geo.ks), static_cast<unsigned>(row_ctas));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = geo.smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = geo.ks > 1 ? 1 : 0;  // a single slab is a plain launch
  g.early_start = add_pdl_attribute(cfg, attr);
  g.push_sum = push_sum_enabled();
  const uint16_t* x = g.x;
  uint16_t* y = g.y;
  for (int64_t b0 = 0; b0 < g.batch; b0 += kMaxRows) {
    g.x = x + b0 * g.cols;
    g.y = y + b0 * g.rows;
    const int nb = static_cast<int>(std::min<int64_t>(kMaxRows, g.batch - b0));
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, g, nb, geo.tiles_per_cta);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  return static_cast<int>(cudaGetLastError());
}

// Two row tiles per CTA halve the per-CTA set-up and the B-fragment reads per code (H200, NF4 B=64, batch 1, two
// against one: 4096x4096 7.5 against 8.4 µs, 14336x4096 16.1 against 18.0, 4096x14336 13.9 against 16.5, 1024x4096
// 4.4 against 4.7).
constexpr int kRowTilesPerCta = 2;

template <int Bits>
int launch_bits(const MmaArgs& g, cudaStream_t stream) {
  switch (g.block_shift) {
    case 5: return launch_rows<Bits, kRowTilesPerCta, 2>(g, stream);
    case 6: return launch_rows<Bits, kRowTilesPerCta, 4>(g, stream);
    default: return launch_rows<Bits, kRowTilesPerCta, 8>(g, stream);  // blocks >= 128 columns: one per tile at most
  }
}

}  // namespace

bool row_gemv_serves(const MmaArgs& g) {
  // HILO_GEMV_ROWS=0: the cluster GEMV serves these calls too (A/B runs).
  static const bool enabled = env_flag("HILO_GEMV_ROWS", true);
  return enabled && !g.lords && g.block_shift >= 5 && g.batch >= 1 && g.batch <= kMaxRows;
}

int launch_row_gemv(const MmaArgs& g, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, stream); });
}

}  // namespace hilo::lords::cuda_detail
