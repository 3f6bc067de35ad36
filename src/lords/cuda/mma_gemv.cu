// Tensor-core matmul for small batches from the tiled code layout (src/lords/gpu_layout.hpp; the maths in
// mma_gemv.hpp). Work split: a CTA of 8 warps owns 128 rows (a 16-row tile per warp) and a slab of 128-column tiles;
// the slabs of one row range form a thread-block cluster (up to 8 CTAs) whose partial sums are added through
// distributed shared memory in rank order, so results are deterministic without atomics.
// Per warp and tile: the codes arrive as two (or three) 16/8-byte loads per lane, issued 2-4 tiles ahead; each pair
// of codes becomes a half2 A-fragment register through a pair table in shared memory (replicated per lane, so the
// lookups are free of bank conflicts); the B fragments (x, or x * A for LoRDS) are staged once per CTA in shared
// memory in fragment order and read with one conflict-free 8-byte load per lane.
#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "../gpu_layout.hpp"
#include "mma_common.cuh"
#include "lords_gemv.hpp"
#include "mma_gemv.hpp"
#include "row_gemv.hpp"

namespace hilo::lords::cuda_detail {
namespace {

using gpu_layout::kTileCols;
using gpu_layout::kTileRows;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kSteps = gpu_layout::kStepsPerTile;
constexpr int kMaxCluster = 8;
constexpr int kStageBytes = 48 * 1024;     // B fragments staged at a time
constexpr int kMaxScaleBytes = 64 * 1024;  // block-wise scales of a slab (8 MT row tiles x blocks x 16 rows)

// Fills frag[] with the B fragments of tiles [c_begin, c_end): block-wise x[n, col]; LoRDS x[b, col] A[k, col]
// for n = (b, k). Entry order (tile, step, n-tile, lane) is the read order.
template <int NT, int RPT>
__device__ void stage_fragments(const MmaArgs& g, int nb, int c_begin, int c_end, float scale, uint2* frag) {
  const uint32_t* x32 = reinterpret_cast<const uint32_t*>(g.x);
  const uint2* a2 = reinterpret_cast<const uint2*>(g.a);
  const int cols = static_cast<int>(g.cols), total = (c_end - c_begin) * kSteps * NT * 32;
#pragma unroll 4
  for (int e = threadIdx.x; e < total; e += kThreads) {
    const int lane = e % 32, j = e / 32 % NT, s = e / (32 * NT) % kSteps, c = c_begin + e / (32 * NT * kSteps);
    const int col = c * kTileCols + 16 * s + 2 * (lane % 4);
    const int b = RPT > 0 ? j / (RPT > 0 ? RPT : 1) : lane / 4;
    uint2 out = {0, 0};
    if (b < nb && col < cols) {  // cols is a multiple of 32: col + 9 is inside too
      const uint32_t* xr = x32 + static_cast<int64_t>(b) * (cols / 2);
      const uint32_t x0 = xr[col / 2], x1 = xr[col / 2 + 4];
      float v[4] = {bf16_lo(x0), bf16_hi(x0), bf16_lo(x1), bf16_hi(x1)};
      if constexpr (RPT > 0) {
        const uint2 a = a2[((c * kSteps + s) * RPT + j % RPT) * 32 + lane];
        v[0] *= bf16_lo(a.x);
        v[1] *= bf16_hi(a.x);
        v[2] *= bf16_lo(a.y);
        v[3] *= bf16_hi(a.y);
      }
      out.x = half2_bits(v[0] * scale, v[1] * scale);
      out.y = half2_bits(v[2] * scale, v[3] * scale);
    }
    frag[e] = out;
  }
}

// NT n-tiles of 8 mma columns. Block-wise: RPT = 0, NT = 1, the columns are 8 activation rows. LoRDS: RPT n-tiles
// (rank_pad / 8) per activation row, NT / RPT rows. Each warp owns MT row tiles (sharing each B fragment read from
// shared memory) and keeps the codes of PD column tiles in flight.
template <int Bits, int NT, int RPT, int MT>
struct Shape {
  static constexpr bool kLords = RPT > 0;
  static constexpr int kNB = kLords ? NT / (kLords ? RPT : 1) : 8;  // activation rows per pass
  static constexpr int kPairs = 1 << (2 * Bits), kWords = 2 * Bits, kTileBytes = 256 * Bits;
  static constexpr int kCtaRows = kWarps * kTileRows * MT;
  static constexpr int kDepth = std::max(1, (NT >= 8 ? 2 : 4) / MT);  // tiles in flight per warp
  static constexpr size_t kFixedSmem = sizeof(uint32_t) * kPairs * 32 + sizeof(float) * kNB * kCtaRows;
};

template <int Bits, int NT, int RPT, int MT>
__global__ void __launch_bounds__(kThreads) mma_gemv_kernel(MmaArgs g, int nb, int tiles_per_cta, int stage_tiles) {
  using S = Shape<Bits, NT, RPT, MT>;
  constexpr bool kLords = S::kLords;
  constexpr int kNB = S::kNB, kWords = S::kWords, kTileBytes = S::kTileBytes, kCtaRows = S::kCtaRows, PD = S::kDepth;
  extern __shared__ __align__(16) unsigned char smem[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);                  // [kPairs][32]
  float* partial = reinterpret_cast<float*>(lut + S::kPairs * 32);    // [kNB][kCtaRows]
  uint2* frag = reinterpret_cast<uint2*>(partial + kNB * kCtaRows);    // [stage_tiles][8][NT][32]
  uint32_t* scale_s = reinterpret_cast<uint32_t*>(frag + stage_tiles * kSteps * NT * 32);  // bf16 [8 MT][nblk][16]
  __shared__ unsigned warp_max[kWarps];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, t = lane % 4;
  const int c0 = blockIdx.x * tiles_per_cta, c1 = min(c0 + tiles_per_cta, g.col_tiles);
  const int mt0 = (blockIdx.y * kWarps + warp) * MT;  // this warp's row tiles: mt0 .. mt0 + MT - 1
  bool active[MT];
  const uint8_t* codes[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    active[m] = mt0 + m < g.row_tiles;
    codes[m] = g.codes + static_cast<int64_t>(active[m] ? mt0 + m : 0) * g.col_tiles * kTileBytes;
  }

  // The first PD tiles' codes are in flight while the CTA sets up.
  uint32_t buf[PD][MT][kWords];
#pragma unroll
  for (int d = 0; d < PD; ++d)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int i = 0; i < kWords; ++i) buf[d][m][i] = 0;
      if (active[m] && c0 + d < c1) load_tile<Bits>(codes[m] + static_cast<int64_t>(c0 + d) * kTileBytes, lane, buf[d][m]);
    }
  constexpr int kLutStores = (S::kPairs * 8 + kThreads - 1) / kThreads;
#pragma unroll
  for (int k = 0; k < kLutStores; ++k) {  // 32 copies of each pair value, 4 per store; all loads issued at once
    const int e = k * kThreads + threadIdx.x;
    if (S::kPairs * 8 % kThreads == 0 || e < S::kPairs * 8) {
      const uint32_t v = __ldg(g.pairs + e / 8);
      reinterpret_cast<uint4*>(lut)[e] = make_uint4(v, v, v, v);
    }
  }
  // Block-wise: this CTA's scales (its row tiles x the blocks its slab touches) move to shared memory up front, so
  // no block boundary waits on a global load.
  const int steps_per_block = g.block / 16;
  const int blk_lo = c0 * kSteps / steps_per_block, nblk = ((c1 * kSteps - 1) / steps_per_block) - blk_lo + 1;
  const uint16_t* scale_base[MT];  // block blk_lo of this warp's row tiles, in shared or global memory
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    const int mt = active[m] ? mt0 + m : 0;
    const uint16_t* global = g.scales + (static_cast<int64_t>(mt) * g.scale_blocks + blk_lo) * kTileRows;
    if (kLords || !g.stage_scales) {
      scale_base[m] = global;
      continue;
    }
    uint32_t* own = scale_s + (warp * MT + m) * nblk * kTileRows / 2;  // each warp stages its own row tiles
    for (int i = lane; i < nblk * kTileRows / 2; i += 32) own[i] = active[m] ? reinterpret_cast<const uint32_t*>(global)[i] : 0u;
    scale_base[m] = reinterpret_cast<const uint16_t*>(own);
  }
  unsigned xmax_bits;
  {  // max |x| over this slab, loaded with the tables above
    const int col0 = c0 * kTileCols, vecs = (min(c1 * kTileCols, static_cast<int>(g.cols)) - col0) / 8;
    unsigned mx = 0;
    for (int b = 0; b < nb; ++b) {
      const uint4* xr = reinterpret_cast<const uint4*>(g.x + static_cast<int64_t>(b) * g.cols + col0);
      for (int i = threadIdx.x; i < vecs; i += kThreads) mx = bf16_abs_max(xr[i], mx);
    }
    xmax_bits = cta_max<kWarps>(mx, warp_max);
  }
  const int e2 = fp16_exponent(__uint_as_float(xmax_bits << 16) * (kLords ? g.a_absmax : 1.0f));
  const float scale = ldexpf(1.0f, e2), unscale = ldexpf(1.0f, -e2);

  const uint32_t lut_lane = smem_u32(lut) + 4 * lane;
  float acc[MT][NT][4];
  float yb[MT][4];  // block-wise: rows g, g+8 x activation rows 2t, 2t+1
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.0f;
    yb[m][0] = yb[m][1] = yb[m][2] = yb[m][3] = 0.0f;
  }
  int in_block = c0 * kSteps % steps_per_block, blk = 0;  // blk counts from blk_lo
  auto flush_block = [&]() {  // block-wise: scale the finished block's sums into yb
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const uint16_t* sc = scale_base[m] + blk * kTileRows;
      const float s0 = __uint_as_float(static_cast<uint32_t>(sc[gq]) << 16);
      const float s1 = __uint_as_float(static_cast<uint32_t>(sc[gq + 8]) << 16);
      yb[m][0] = fmaf(acc[m][0][0], s0, yb[m][0]);
      yb[m][1] = fmaf(acc[m][0][1], s0, yb[m][1]);
      yb[m][2] = fmaf(acc[m][0][2], s1, yb[m][2]);
      yb[m][3] = fmaf(acc[m][0][3], s1, yb[m][3]);
      acc[m][0][0] = acc[m][0][1] = acc[m][0][2] = acc[m][0][3] = 0.0f;
    }
  };

  for (int cb = c0; cb < c1; cb += PD) {
#pragma unroll
    for (int d = 0; d < PD; ++d) {  // ring slot d holds tile cb + d
      const int c = cb + d;
      if (c >= c1) break;
      const int lc = (c - c0) % stage_tiles;
      if (lc == 0) {
        __syncthreads();
        stage_fragments<NT, RPT>(g, nb, c, min(c + stage_tiles, c1), scale, frag);
        __syncthreads();
      }
      if (active[0]) {
        const uint2* fr = frag + lc * kSteps * NT * 32 + lane;
#pragma unroll
        for (int s = 0; s < kSteps; ++s) {
          uint2 bfr[NT];
#pragma unroll
          for (int j = 0; j < NT; ++j) bfr[j] = fr[(s * NT + j) * 32];
#pragma unroll
          for (int m = 0; m < MT; ++m) {
            uint32_t a[4];
#pragma unroll
            for (int slot = 0; slot < 4; ++slot) a[slot] = lds_u32(lut_lane + pair_offset<Bits>(buf[d][m], 4 * s + slot));
#pragma unroll
            for (int j = 0; j < NT; ++j) mma16816(acc[m][j], a, bfr[j]);
          }
          if constexpr (!kLords) {
            if (++in_block == steps_per_block) {
              flush_block();
              in_block = 0;
              ++blk;
            }
          }
        }
      }
#pragma unroll
      for (int m = 0; m < MT; ++m)  // refill the slot with the tile PD ahead
        if (active[m] && c + PD < c1)
          load_tile<Bits>(codes[m] + static_cast<int64_t>(c + PD) * kTileBytes, lane, buf[d][m]);
    }
  }

  if (!kLords && active[0] && in_block != 0) flush_block();  // the slab ended inside a block
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (!active[m]) continue;
    const int r0 = (warp * MT + m) * kTileRows + gq;  // this lane's rows in the CTA: r0, r0 + 8
    if constexpr (kLords) {
      float py[kNB][2];
#pragma unroll
      for (int b = 0; b < kNB; ++b) py[b][0] = py[b][1] = 0.0f;
      const int64_t row = static_cast<int64_t>(mt0 + m) * kTileRows + gq;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int k = j % RPT * 8 + 2 * t;
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(g.b + row * g.rank_pad + k);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(g.b + (row + 8) * g.rank_pad + k);
        py[j / RPT][0] += acc[m][j][0] * bf16_lo(b0) + acc[m][j][1] * bf16_hi(b0);
        py[j / RPT][1] += acc[m][j][2] * bf16_lo(b1) + acc[m][j][3] * bf16_hi(b1);
      }
#pragma unroll
      for (int b = 0; b < kNB; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float v = py[b][h];
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 1);
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 2);
          if (t == 0) partial[b * kCtaRows + r0 + 8 * h] = v * unscale;
        }
    } else {
      partial[2 * t * kCtaRows + r0] = yb[m][0] * unscale;
      partial[(2 * t + 1) * kCtaRows + r0] = yb[m][1] * unscale;
      partial[2 * t * kCtaRows + r0 + 8] = yb[m][2] * unscale;
      partial[(2 * t + 1) * kCtaRows + r0 + 8] = yb[m][3] * unscale;
    }
  }

  // Every slab's partial sums are in its CTA's shared memory: add them in slab order.
  cluster_sum<kMaxCluster>(partial, nb * kCtaRows, [&](int i, float v) {
    const int b = i / kCtaRows;
    const int64_t row = static_cast<int64_t>(blockIdx.y) * kCtaRows + i % kCtaRows;
    if (row >= g.rows) return;
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    g.y[b * g.rows + row] = *reinterpret_cast<const uint16_t*>(&h);
  });
}

// CTAs per SM the column split aims for (4: in effect the widest split, clusters of 8 where the rows allow;
// measured against 1 and 2 in docs/results/lords-cuda.md); HILO_MMA_CTAS_PER_SM overrides it for A/B measurements.
int ctas_per_sm() {
  static const int n = env_override("HILO_MMA_CTAS_PER_SM", 1, 8, 4);
  return n;
}

// Column slabs per row range (the cluster size) forced for A/B sweeps: HILO_MMA_SPLIT=1..8 (unset: ctas_per_sm()).
int forced_split() {
  static const int n = env_override("HILO_MMA_SPLIT", 1, kMaxCluster, 0);
  return n;
}

// HILO_MMA_VERBOSE=1: the first launches print their geometry and occupancy to stderr (for sweeps).
template <auto Kernel>
void describe_launch(const cudaLaunchConfig_t& cfg, const char* variant) {
  static const bool verbose = env_override("HILO_MMA_VERBOSE", 1, 1, 0) == 1;
  static std::atomic<int> printed{0};
  if (!verbose || printed.fetch_add(1) >= 8) return;
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, static_cast<int>(cfg.blockDim.x),
                                                    cfg.dynamicSmemBytes) != cudaSuccess)
    (void)cudaGetLastError();  // a failed query is not the launch's error
  std::fprintf(stderr, "mma_gemv %s: grid %u x %u, cluster %u, smem %zu B, %d CTAs/SM, %d active clusters max\n",
               variant, cfg.gridDim.x, cfg.gridDim.y, cfg.gridDim.x, cfg.dynamicSmemBytes, per_sm,
               max_active_clusters<Kernel>(cfg));
}

// A launch's column split: ks slabs (the cluster size) of tiles_per_cta column tiles, and the shared memory that
// needs.
struct GemvGeometry {
  int ks, tiles_per_cta, stage_tiles;
  bool stage_scales;
  size_t smem;
};

template <int Bits, int NT, int RPT, int MT = 1>
int launch_variant(MmaArgs g, cudaStream_t stream) {
  using S = Shape<Bits, NT, RPT, MT>;
  const int row_ctas = (g.row_tiles + kWarps * MT - 1) / (kWarps * MT);
  const auto plan = [&](int ks) {
    GemvGeometry geo{};
    geo.tiles_per_cta = (g.col_tiles + ks - 1) / ks;
    geo.ks = (g.col_tiles + geo.tiles_per_cta - 1) / geo.tiles_per_cta;
    geo.stage_tiles = std::min(geo.tiles_per_cta, std::max(1, kStageBytes / (kSteps * NT * 32 * 8)));
    // Block-wise scales of the slab (at most tiles_per_cta * 128 / block + 2 blocks per row tile) go to shared
    // memory when they fit; very wide layers read them from global memory at each block boundary.
    const size_t scale_smem =
        RPT > 0 ? 0 : sizeof(uint16_t) * kWarps * MT * kTileRows * (geo.tiles_per_cta * kTileCols / g.block + 2);
    geo.stage_scales = scale_smem <= kMaxScaleBytes;
    geo.smem = S::kFixedSmem + sizeof(uint2) * geo.stage_tiles * kSteps * NT * 32 + (geo.stage_scales ? scale_smem : 0);
    return geo;
  };
  constexpr auto kernel = mma_gemv_kernel<Bits, NT, RPT, MT>;
  // The most any launch of this variant asks for.
  if (const int e = allow_smem_once<kernel>(g.device, int(S::kFixedSmem + kStageBytes + kMaxScaleBytes)); e != 0)
    return e;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.blockDim = dim3(kThreads);
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  const auto configure = [&](const GemvGeometry& geo) {
    cfg.gridDim = dim3(static_cast<unsigned>(geo.ks), static_cast<unsigned>(row_ctas));
    cfg.dynamicSmemBytes = geo.smem;
    attr[0].val.clusterDim.x = static_cast<unsigned>(geo.ks);
  };
  // Split the columns until about ctas_per_sm() CTAs per SM exist (clusters of at most 8), then narrow the clusters
  // until all of them fit on the GPU at once: a second wave costs more than the wider split saves (H200 sweep,
  // docs/results/lords-cuda.md: 14336x4096 block-wise at batch 1, 56 clusters, 24.5 us with 8 CTAs each, two waves
  // of at most 30 clusters, 20.1 us with 4, one wave of at most 62). Chosen once per layer shape and device: the
  // occupancy queries cost host time.
  static std::mutex mu;
  static std::map<std::tuple<int, int, int, int>, GemvGeometry> chosen;
  GemvGeometry geo;
  {
    const std::lock_guard lock(mu);
    const auto key = std::make_tuple(g.device, row_ctas, g.col_tiles, g.block);
    auto it = chosen.find(key);
    if (it == chosen.end()) {
      const int target = ctas_per_sm() * g.sm_count;
      geo = plan(forced_split() > 0 ? std::min(forced_split(), g.col_tiles)
                                    : std::clamp((target + row_ctas - 1) / row_ctas, 1,
                                                 std::min(kMaxCluster, g.col_tiles)));
      configure(geo);
      while (forced_split() == 0 && geo.ks > 1 && row_ctas > max_active_clusters<kernel>(cfg)) {
        geo = plan(geo.ks - 1);
        configure(geo);
      }
      it = chosen.emplace(key, geo).first;
    }
    geo = it->second;
  }
  configure(geo);
  g.stage_scales = geo.stage_scales;
  const int tiles_per_cta = geo.tiles_per_cta, stage_tiles = geo.stage_tiles;
  describe_launch<kernel>(cfg, S::kLords ? "lords" : "blockwise");
  const int64_t batch = g.batch;
  const uint16_t* x = g.x;
  uint16_t* y = g.y;
  for (int64_t b0 = 0; b0 < batch; b0 += S::kNB) {  // passes of kNB activation rows
    g.x = x + b0 * g.cols;
    g.y = y + b0 * g.rows;
    const int nb = static_cast<int>(std::min<int64_t>(S::kNB, batch - b0));
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, g, nb, tiles_per_cta, stage_tiles);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  return static_cast<int>(cudaGetLastError());
}

// Row tiles per warp for the small-n variants: 2 halves the shared-memory reads of B fragments and the CTAs' fixed
// costs, 1 doubles the CTAs, which layers with few rows need to fill the GPU (measured on H200, docs/results/
// lords-cuda.md). HILO_MMA_MT=1|2 overrides the choice for A/B measurements.
int row_tiles_per_warp(const MmaArgs& g) {
  static const int forced = env_override("HILO_MMA_MT", 1, 2, 0);
  if (forced != 0) return forced;
  return g.row_tiles >= 128 ? 2 : 1;
}

template <int Bits>
int launch_bits(const MmaArgs& g, cudaStream_t stream) {
  const bool two = row_tiles_per_warp(g) == 2;
  if (!g.lords) return two ? launch_variant<Bits, 1, 0, 2>(g, stream) : launch_variant<Bits, 1, 0>(g, stream);
  const bool one = g.batch == 1;  // a single row: no mma columns spent on absent rows
  switch (g.rank_pad) {
    case 16:
      return one ? (two ? launch_variant<Bits, 2, 2, 2>(g, stream) : launch_variant<Bits, 2, 2>(g, stream))
                 : launch_variant<Bits, 16, 2>(g, stream);
    case 32:
      return one ? (two ? launch_variant<Bits, 4, 4, 2>(g, stream) : launch_variant<Bits, 4, 4>(g, stream))
                 : launch_variant<Bits, 16, 4>(g, stream);
    case 64: return one ? launch_variant<Bits, 8, 8>(g, stream) : launch_variant<Bits, 16, 8>(g, stream);
    case 128: return launch_variant<Bits, 16, 16>(g, stream);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace

int launch_mma_gemv(const MmaArgs& g, void* stream_ptr) {
  if (lords_gemv_serves(g))
    if (const int e = launch_lords_gemv(g, stream_ptr); e != -1) return e;
  if (row_gemv_serves(g))
    if (const int e = launch_row_gemv(g, stream_ptr); e != -1) return e;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, stream); });
}

}  // namespace hilo::lords::cuda_detail
