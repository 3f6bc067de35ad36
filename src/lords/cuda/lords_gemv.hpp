// The LoRDS GEMV for one activation row (lords_gemv.cu; internal interface, no CUDA headers). Arguments as for the
// cluster GEMV (mma_gemv.hpp).
#pragma once

#include <cstddef>

#include "mma_gemv.hpp"

namespace hilo::lords::cuda_detail {

// Whether launch_lords_gemv takes this call: LoRDS, batch 1, rank <= 64 (HILO_LORDS_GEMV=0 turns it off for A/B
// runs: the call then goes to the cluster GEMV or the GEMM as before).
bool lords_gemv_serves(const MmaArgs& g);
// A CUDA error code (0 = success), or -1 where no geometry fits (the caller then uses the cluster GEMV).
int launch_lords_gemv(const MmaArgs& g, void* stream);
// The kernel launch_lords_gemv takes for a call: the rank product on wgmma or mma.sync, row tiles per warp, and the
// rank n-tiles read (2, 4, 7 or 8). sm90a: the device runs sm_90a code (false is taken where the build has none).
// Host code only, so that the CPU tests check the choice.
struct LordsGemvVariant {
  bool wgmma = false;
  int row_tiles_per_warp = 2;
  int rank_tiles = 0;
};
LordsGemvVariant lords_gemv_variant(const MmaArgs& g, bool sm90a);
// Tests: later calls of the mma.sync variants form x * A in the prepass kernel (1) or in the GEMV (0), or as
// HILO_LORDS_XA_PREPASS says (-1); the wgmma variants always take the prepass.
void force_lords_xa_prepass(int mode);
// Tests: later calls add split-k sums through global memory (1), through clusters (0), or as the cost model and
// HILO_LORDS_GRID_SUM say (-1).
void force_lords_grid_sum(int mode);
// Tests: later calls take row_warps warps along rows (2, 4, 8, 16), `slabs` column slabs (1-8) and x * A chunks of
// stage_tiles column tiles (ring: slots), each 0 for the cost model's choice (or HILO_LORDS_WR / _SPLIT /
// _STAGE). A geometry that does not fit leaves the call to the cluster GEMV.
void force_lords_gemv_geometry(int row_warps, int slabs, int stage_tiles);
// Tests: later calls of the wgmma variants stream x * A through the ring of one-tile slots (1), stage it in two chunk
// buffers (0), or as HILO_LORDS_RING or the rule (the ring where k is split through global memory) says (-1).
void force_lords_ring(int mode);
// Tests: later calls of the wgmma variants whose geometry has one column group take the build that knows it at compile
// time (1), the general build (0), or as HILO_LORDS_WC1 says (-1; default on).
void force_lords_wc1(int mode);
// Tests: later calls of the wgmma variants take the stream-K geometry where one exists (1), never (0), or as
// HILO_LORDS_STREAMK says (-1; unset: never; -1: the rule, where its longest run is at most 90% of the chosen
// geometry's tiles per SM).
void force_lords_stream_k(int mode);
// Tests: what the last LoRDS GEMV launched on this thread ran as (zeros before the first): the layer's shape, CTAs,
// dynamic shared memory per CTA, column slabs, stream-K. A call that no geometry fits (it goes to the cluster GEMV)
// leaves it as it was.
struct LordsGemvLaunch {
  int64_t rows = 0, cols = 0;
  int ctas = 0;
  std::size_t smem = 0;
  int slabs = 0;
  bool stream_k = false;
};
LordsGemvLaunch last_lords_gemv_launch();

}  // namespace hilo::lords::cuda_detail
