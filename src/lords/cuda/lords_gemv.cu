// The LoRDS GEMV for one activation row, host side: the environment's and the tests' switches, the geometry's cost
// model, and the launches of the prepass (lords_gemv_prepass.cuh) and the kernel (lords_gemv_kernel.cuh, where the
// design is described).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>

#include "lords_gemv.hpp"
#include "lords_gemv_kernel.cuh"
#include "lords_gemv_prepass.cuh"
#include "lords_gemv_shape.cuh"
#include "wgmma_gemm.hpp"

namespace hilo::lords::cuda_detail {
namespace {

// Tuning overrides for sweeps: HILO_LORDS_WR (warps along rows: 2, 4, 8, 16), HILO_LORDS_SPLIT (slabs, 1..8),
// HILO_LORDS_STAGE (tiles per x * A chunk; ring: slots), HILO_LORDS_WGMMA=0 (mma.sync at every rank);
// HILO_LORDS_VERBOSE=1 prints the chosen geometry. HILO_LORDS_XA_PREPASS=1 converts x * A once per call
// (xa_prepass_kernel) for the mma.sync variants too (the wgmma variants always do). HILO_LORDS_GRID_SUM=1 / 0: split
// k through global memory for every wgmma split / never (GridSum). HILO_LORDS_WG_MT=1 / 2: the wgmma variant with 16 warps of one
// row tile / 8 warps of two at ranks 49-64 (unset: wgmma_row_tiles' rule). HILO_LORDS_WG_NTR=4 / 7: wgmma from that
// many rank n-tiles up, ranks 17-32 / 49-64 (unset: wgmma_rank_product's rule).
struct Overrides {
  bool wgmma = env_flag("HILO_LORDS_WGMMA", true);
  int prepass = std::getenv("HILO_LORDS_XA_PREPASS") ? env_flag("HILO_LORDS_XA_PREPASS", false) : -1;
  int wr = env_override("HILO_LORDS_WR", 2, 16, 0);
  int ks = env_override("HILO_LORDS_SPLIT", 1, kMaxCluster, 0);
  int stage = env_override("HILO_LORDS_STAGE", 1, 1 << 16, 0);
  bool verbose = env_override("HILO_LORDS_VERBOSE", 1, 1, 0) == 1;
  int grid_sum = std::getenv("HILO_LORDS_GRID_SUM") ? env_flag("HILO_LORDS_GRID_SUM", false) : -1;
  int wg_mt = env_override("HILO_LORDS_WG_MT", 1, 2, 0);
  int wg_min_ntr = env_override("HILO_LORDS_WG_NTR", 4, 8, 0);
};
const Overrides& overrides() {
  static const Overrides o;
  return o;
}
std::atomic<int> prepass_forced{-1};  // force_lords_xa_prepass
// force_lords_gemv_geometry: row warps, slabs, x * A chunk tiles / ring slots (0: the rule or HILO_LORDS_*).
std::atomic<int> wr_forced{0}, ks_forced{0}, stage_forced{0};
int forced_or(const std::atomic<int>& forced, int env) {
  const int f = forced.load(std::memory_order_relaxed);
  return f > 0 ? f : env;
}
// A test hook's on / off switch (-1: not forced) over the environment's mode, and its setter.
int switch_mode(const std::atomic<int>& forced, int env) {
  const int f = forced.load(std::memory_order_relaxed);
  return f >= 0 ? f : env;
}
void force_switch(std::atomic<int>& forced, int mode) { forced.store(mode < 0 ? -1 : mode != 0, std::memory_order_relaxed); }
int wr_override() { return forced_or(wr_forced, overrides().wr); }
int ks_override() { return forced_or(ks_forced, overrides().ks); }
int stage_override() { return forced_or(stage_forced, overrides().stage); }
// The wgmma variants always take it (they stage or stream the prepared x * A); the switches choose for mma.sync.
bool use_prepass(bool wgmma) {
  return wgmma || switch_mode(prepass_forced, overrides().prepass) > 0;
}
// Split k through global memory (GridSum, wgmma variants only: their prepass zeroes the counters): 1 for every split
// geometry, 0 never, -1 where the cost model prefers it. force_lords_grid_sum for tests, else HILO_LORDS_GRID_SUM.
std::atomic<int> grid_sum_forced{-1};
int grid_sum_mode() { return switch_mode(grid_sum_forced, overrides().grid_sum); }

// Whether the wgmma variants stream x * A through the ring (lords_gemv_kernel's Ring): 1 always, 0 never, -1 where
// the geometry splits k through global memory (launch_ntr). force_lords_ring for tests, else HILO_LORDS_RING.
std::atomic<int> ring_forced{-1};
int ring_mode() {
  static const int env = env_override("HILO_LORDS_RING", 0, 1, -1);
  return switch_mode(ring_forced, env);
}

// Ring slots (one column tile each) that fit in shared memory beside the rest of geometry geo.
template <int Bits, int NTR>
int ring_slots_that_fit(LordsGeometry geo, int mt) {
  using S = LordsShape<Bits, NTR>;
  geo.ring = true;
  geo.stage_tiles = 1;
  const size_t fixed = smem_layout<Bits, NTR>(geo, mt).total - S::kFragTileBytes - 16;
  return static_cast<int>((kMaxSmemBytes - std::min<size_t>(fixed, kMaxSmemBytes)) / (S::kFragTileBytes + 16));
}

// The geometry for wr row warps and ks slabs, or smem = 0 where it does not fit.
template <int Bits, int NTR, bool Wg, int MT, bool Ring>
LordsGeometry make_geometry(const MmaArgs& g, int wr, int ks) {
  using S = LordsShape<Bits, NTR>;
  LordsGeometry geo;
  geo.wr = wr;
  geo.wc = warps_per_cta(Wg, MT) / wr;
  geo.tiles_per_cta = (g.col_tiles + ks - 1) / ks;
  geo.ks = (g.col_tiles + geo.tiles_per_cta - 1) / geo.tiles_per_cta;
  if constexpr (Ring) {  // a ring of whole column tiles: the slab where it fits, else as many slots as fit
    geo.ring = true;
    geo.stages = 1;
    const int fit = ring_slots_that_fit<Bits, NTR>(geo, MT);
    const int want = stage_override() > 0 ? stage_override() : (geo.tiles_per_cta + geo.wc - 1) / geo.wc * geo.wc;
    geo.stage_tiles = std::min(want, fit) / geo.wc * geo.wc;  // a multiple of the column groups
    if (geo.stage_tiles < std::min(2 * geo.wc, want)) return {};
    geo.smem = smem_layout<Bits, NTR>(geo, MT).total;
    return geo.smem <= kMaxSmemBytes ? geo : LordsGeometry{};
  }
  const int unit = geo.wc * code_depth(NTR, Wg);  // chunks hold whole rounds of the warps' code rings
  const int whole = (geo.tiles_per_cta + unit - 1) / unit * unit;
  geo.stage_tiles = whole;
  geo.stages = 1;
  const size_t fixed = smem_layout<Bits, NTR>(geo, MT).total - size_t{1} * whole * S::kFragTileBytes;
  if (fixed + size_t{1} * whole * S::kFragTileBytes > kMaxSmemBytes || stage_override() > 0) {
    int chunk = stage_override() > 0 ? stage_override()
                                      : static_cast<int>((kMaxSmemBytes - std::min<size_t>(fixed, kMaxSmemBytes)) / 2 /
                                                         S::kFragTileBytes);
    chunk = std::min(stage_override() > 0 ? std::max(unit, chunk / unit * unit) : chunk / unit * unit, whole);
    if (chunk <= 0) return {};
    geo.stage_tiles = chunk;
    geo.stages = (geo.tiles_per_cta + chunk - 1) / chunk;
  }
  geo.smem = smem_layout<Bits, NTR>(geo, MT).total;
  if (geo.smem > kMaxSmemBytes) return {};
  return geo;
}

// Row ranges (grid rows) of a geometry with wr row warps of mt row tiles.
int row_ctas(const MmaArgs& g, int wr, int mt) { return (g.row_tiles + mt * wr - 1) / (mt * wr); }

// The launch of `rows` row ranges of geo's slabs: a cluster of geo.ks CTAs per row range (a plain launch for one
// slab), behind the previous kernel by programmatic dependent launch where `dependent`. `attrs` backs cfg.attrs.
cudaLaunchConfig_t launch_config(const LordsGeometry& geo, int rows, cudaStream_t stream, cudaLaunchAttribute (&attrs)[2],
                                 bool dependent = false) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(geo.ks), static_cast<unsigned>(rows));
  cfg.blockDim = dim3(static_cast<unsigned>(32 * geo.wr * geo.wc));
  cfg.dynamicSmemBytes = geo.smem;
  cfg.stream = stream;
  cfg.attrs = attrs;
  if (geo.ks > 1 && !geo.grid_sum) {
    cudaLaunchAttribute& a = attrs[cfg.numAttrs++];
    a.id = cudaLaunchAttributeClusterDimension;
    a.val.clusterDim.x = static_cast<unsigned>(geo.ks);
    a.val.clusterDim.y = a.val.clusterDim.z = 1;
  }
  if (dependent) add_pdl_attribute(cfg, attrs, true);
  return cfg;
}

// Clusters of ks CTAs of this kernel the GPU runs at once (0 when none fits); for a grid sum, row ranges of ks
// independent CTAs.
template <auto Kernel>
int resident_clusters(const MmaArgs& g, const LordsGeometry& geo) {
  if (geo.ks == 1 || geo.grid_sum) {
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, 32 * geo.wr * geo.wc, geo.smem) != cudaSuccess) {
      (void)cudaGetLastError();
      return g.sm_count;
    }
    return per_sm * g.sm_count / geo.ks;
  }
  cudaLaunchAttribute attrs[2];
  const int n = max_active_clusters<Kernel>(launch_config(geo, 1, nullptr, attrs));
  return n == INT_MAX ? g.sm_count / geo.ks : n;
}

// Chooses the rows per CTA and the column split by a cost model: waves x the bytes one CTA moves (codes from DRAM,
// x * A from L2 at 1.5x the weight of a code byte) plus a fixed set-up cost of 8 KB-equivalents, over slab counts
// whose last slab has at least half the others' column tiles. Both terms come from geometry sweeps on an H100
// (2026-12-06, three formats, four shapes; docs/notes/gpu-lords.md): with x * A at half weight and any slab count the
// model chose 64-256-row CTAs in 6 slabs of 32 column tiles (the last slab 2 tiles wide), 5-11% slower than the
// geometry these terms choose on the mma.sync shapes; the wgmma shapes keep their choice. Cached per layer shape and
// device.
// A grid sum (GridSum) is a candidate only where the same split as a cluster takes more waves (grid_mode -1), at a
// price of 2 KB-equivalents for the round trip of the partial sums; grid_mode 1 takes it for every split, 0 never.
template <int Bits, int NTR, bool Wg, int MT, bool Ring>
LordsGeometry choose_geometry(const MmaArgs& g, int grid_mode) {
  using S = LordsShape<Bits, NTR>;
  constexpr auto kernel = lords_gemv_kernel<Bits, NTR, Wg, false, MT, Ring>;
  // The occupancy queries below answer for the 48 KB default until the limit is raised. launch_ntr's rules ask before
  // any launch: 14336x4096 then found no geometry and went to the cluster GEMV (70 us against 21, H100, 2026-12-07).
  if (allow_smem_once<kernel>(g.device, kMaxSmemBytes) != 0) return {};
  static std::mutex mu;
  static std::map<std::tuple<int, int, int, int, int, int, int, int>, LordsGeometry> chosen;
  const std::lock_guard lock(mu);
  const auto key = std::make_tuple(g.device, g.row_tiles, g.col_tiles, g.rank_pad, grid_mode, wr_override(), ks_override(),
                                   stage_override());
  if (const auto it = chosen.find(key); it != chosen.end()) return it->second;
  LordsGeometry best;
  double best_cost = 0;
  for (int wr : {16, 8, 4, 2}) {
    // A warpgroup (wgmma) must share one column group.
    if ((wr_override() > 0 && wr != wr_override()) || wr > warps_per_cta(Wg, MT) || (Wg && wr % 4 != 0)) continue;
    const int rows = row_ctas(g, wr, MT);
    for (int ks = 1; ks <= std::min(kMaxCluster, g.col_tiles); ++ks) {
      if (ks_override() > 0 && ks != std::min(ks_override(), g.col_tiles)) continue;
      const LordsGeometry geo = make_geometry<Bits, NTR, Wg, MT, Ring>(g, wr, ks);
      if (geo.smem == 0 || (geo.ks != ks && ks_override() == 0)) continue;  // ks slabs collapse to fewer: seen
      const int last_slab = g.col_tiles - (geo.ks - 1) * geo.tiles_per_cta;
      if (ks_override() == 0 && 2 * last_slab < geo.tiles_per_cta) continue;
      const double kb = geo.tiles_per_cta * (1.0 * MT * wr * S::kTileBytes + 1.5 * S::kFragTileBytes) / 1024.0 + 8.0;
      const auto consider = [&](const LordsGeometry& cand, int resident, double cost) {
        if (overrides().verbose)
          std::fprintf(stderr, "  candidate %d rows/CTA x %d slabs%s: %d resident, %d waves, cost %.0f\n", cta_rows(wr, MT),
                       cand.ks, cand.grid_sum ? " (grid sum)" : "", resident, (rows + resident - 1) / resident, cost);
        if (best.smem == 0 || cost < best_cost * 0.999) best = cand, best_cost = cost;
      };
      const int resident = resident_clusters<kernel>(g, geo);
      const int waves = resident > 0 ? (rows + resident - 1) / resident : INT_MAX;
      if (resident > 0 && !(Wg && grid_mode == 1 && geo.ks > 1)) consider(geo, resident, waves * kb);
      if (Wg && grid_mode != 0 && geo.ks > 1) {
        LordsGeometry grid = geo;
        grid.grid_sum = true;
        const int resident_grid = resident_clusters<kernel>(g, grid);
        const int waves_grid = resident_grid > 0 ? (rows + resident_grid - 1) / resident_grid : INT_MAX;
        if (resident_grid > 0 && (grid_mode == 1 || waves_grid < waves)) consider(grid, resident_grid, waves_grid * (kb + 2.0));
      }
    }
  }
  if (overrides().verbose && best.smem != 0)
    std::fprintf(stderr, "lords_gemv%s: rows %d x cols %d tiles, rank_pad %d: %d rows/CTA (%dx%d warps), %d slabs of %d "
                 "tiles%s, chunks of %d (%d), smem %zu B\n", Wg ? " (wgmma)" : "", g.row_tiles, g.col_tiles, g.rank_pad,
                 cta_rows(best.wr, MT), best.wr, best.wc, best.ks, best.tiles_per_cta, best.grid_sum ? " (grid sum)" : "",
                 best.stage_tiles, best.stages, best.smem);
  return chosen[key] = best;
}

// Whether the wgmma variants take their one-column-group build where the geometry has one column group
// (lords_gemv_kernel's Wc1): force_lords_wc1 for tests, else HILO_LORDS_WC1 (default on).
std::atomic<int> wc1_forced{-1};
bool wc1_enabled() {
  static const int env = env_flag("HILO_LORDS_WC1", true);
  return switch_mode(wc1_forced, env) != 0;
}

thread_local LordsGemvLaunch last_launch;  // last_lords_gemv_launch

// The prepass (where it runs) and the GEMV of geometry geo (StreamK: stream_k_geometry's).
template <int Bits, int NTR, bool Wg, int MT, bool Ring, bool Wc1, bool StreamK = false>
int launch_geometry(const MmaArgs& g, const LordsGeometry& geo, cudaStream_t stream) {
  constexpr auto kernel = lords_gemv_kernel<Bits, NTR, Wg, false, MT, Ring, Wc1>;
  if (const int e = allow_smem_once<kernel>(g.device, kMaxSmemBytes); e != 0) return e;
  const bool prepass = use_prepass(Wg);
  // Grid sums: wgmma variants only (StreamK always sums through global memory).
  constexpr auto grid_kernel = lords_gemv_kernel<Bits, NTR, Wg, Wg, MT, Ring, Wc1, StreamK>;
  if (geo.grid_sum)
    if (const int e = allow_smem_once<grid_kernel>(g.device, kMaxSmemBytes); e != 0) return e;
  cudaLaunchAttribute attrs[2];
  MmaArgs args = g;
  args.push_sum = push_sum_enabled();
  const int ranges = row_ctas(g, geo.wr, MT);
  last_launch = LordsGemvLaunch{g.rows, g.cols, StreamK ? geo.ctas : ranges * geo.ks, geo.smem, geo.ks, StreamK};
  if (!prepass) {  // mma.sync converting x * A itself: no scratch (grid sums are wgmma's, which always prepasses)
    cudaLaunchConfig_t cfg = launch_config(geo, ranges, stream, attrs);
    args.early_start = add_pdl_attribute(cfg, attrs);
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args, geo, PreparedXa{}, GridSum{});
    return static_cast<int>(e != cudaSuccess ? e : cudaGetLastError());
  }
  // Stream-ordered scratch, freed behind the GEMV (the pool keeps it for the next call; CUDA graphs capture it as
  // memory nodes): the prepass's x * A (NTR x 256 bytes per run) and slab scales, the grid sum's partial sums and
  // counters.
  const size_t xa_bytes = size_t{1} * g.col_tiles * kSteps * NTR * 256;
  const size_t prepass_bytes = xa_bytes + sizeof(float) * kMaxCluster;  // x * A, then the slab scales
  const int slots = StreamK ? geo.slots : geo.ks;  // partial sums per row range
  const size_t partial_bytes = geo.grid_sum ? sizeof(float) * slots * ranges * cta_rows(geo.wr, MT) : 0;
  const size_t arrival_bytes = geo.grid_sum ? sizeof(int) * ranges : 0;
  char* scratch = nullptr;
  if (const cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&scratch),
                                            prepass_bytes + partial_bytes + arrival_bytes, stream);
      e != cudaSuccess)
    return static_cast<int>(e);
  const GridSum gs = geo.grid_sum ? GridSum{reinterpret_cast<float*>(scratch + prepass_bytes),
                                            reinterpret_cast<int*>(scratch + prepass_bytes + partial_bytes)}
                                  : GridSum{};
  // The prepass also zeroes the grid sum's counters. StreamK runs cross slabs, so its x * A is one slab (one scale).
  const PreparedXa pre{reinterpret_cast<uint2*>(scratch), reinterpret_cast<float*>(scratch + xa_bytes)};
  LordsGeometry slabs = geo;
  if (StreamK) slabs.ks = 1, slabs.tiles_per_cta = g.col_tiles;
  const int chunks = (slabs.tiles_per_cta * kSteps + kPrepassWarps * kPrepassRunsPerWarp - 1) /
                     (kPrepassWarps * kPrepassRunsPerWarp);
  cudaLaunchConfig_t pcfg = {};
  pcfg.gridDim = dim3(static_cast<unsigned>(slabs.ks), static_cast<unsigned>(chunks));
  pcfg.blockDim = dim3(32 * kPrepassWarps);
  pcfg.stream = stream;
  cudaLaunchAttribute pattr[1];
  add_pdl_attribute(pcfg, pattr);
  cudaError_t e = cudaLaunchKernelEx(&pcfg, xa_prepass_kernel<NTR, Wg>, g, slabs, pre, gs.arrivals, ranges);
  if (e == cudaSuccess) e = cudaGetLastError();
  if (e == cudaSuccess) {
    cudaLaunchConfig_t cfg = launch_config(geo, ranges, stream, attrs, true);
    if (StreamK) cfg.gridDim = dim3(static_cast<unsigned>(geo.ctas), 1u);  // (geo.ks is 1: no cluster)
    e = cudaLaunchKernelEx(&cfg, geo.grid_sum ? grid_kernel : kernel, args, geo, pre, gs);
    if (e == cudaSuccess) e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(scratch, stream);
  return static_cast<int>(e != cudaSuccess ? e : f);
}

template <int Bits, int NTR, bool Wg, int MT, bool Ring>
int launch_with(const MmaArgs& g, cudaStream_t stream) {
  // choose_geometry raises this limit for its queries too; raising it here first returns a failure as its CUDA error
  // rather than as "no geometry" (the cluster GEMV). The Wc1 build has the general build's launch bounds and smem.
  if (const int e = allow_smem_once<lords_gemv_kernel<Bits, NTR, Wg, false, MT, Ring>>(g.device, kMaxSmemBytes); e != 0)
    return e;
  const LordsGeometry geo = choose_geometry<Bits, NTR, Wg, MT, Ring>(g, grid_sum_mode());
  if (geo.smem == 0) return -1;
  if constexpr (Wg)
    if (geo.wc == 1 && wc1_enabled()) return launch_geometry<Bits, NTR, Wg, MT, Ring, true>(g, geo, stream);
  return launch_geometry<Bits, NTR, Wg, MT, Ring, false>(g, geo, stream);
}

// Stream-K (lords_gemv_kernel's StreamK): 1 always where a geometry exists, 0 never, -1 where its longest run is at
// most 90% of the tiles per SM of the geometry the cost model chose (launch_ntr). force_lords_stream_k for tests,
// else HILO_LORDS_STREAMK (default 0: slower where measured, H100 2026-12-07, with the crossing inside one loop and no
// CTA barrier there: 23.1 against 21.2 us on 14336x4096 and 25.6 against 21.6 on 4096x14336 (before: 28.8 and 30.4).
// Nsight: its codes still arrive late, and it leaves no idle SM for the next prepass to start early on. The -1 rule
// would take 14336x4096.)
std::atomic<int> stream_k_forced{-1};
int stream_k_mode() {
  static const int env = env_override("HILO_LORDS_STREAMK", -1, 1, 0);
  return switch_mode(stream_k_forced, env);
}

// The stream-K geometry of the wgmma variant with MT row tiles per warp: one column group, one CTA per SM (its shared
// memory allows no second), the layer's units cut into sm_count runs of at most col_tiles (so a run touches two row
// ranges at most); smem = 0 where none fits. The ring holds a whole run where it fits.
template <int Bits, int NTR, int MT>
LordsGeometry stream_k_geometry(const MmaArgs& g) {
  constexpr int warps = warps_per_cta(true, MT);
  const int ranges = row_ctas(g, warps, MT), units = ranges * g.col_tiles;
  const int ctas = std::min(g.sm_count, units / 2);
  if (ctas < 2 || (units + ctas - 1) / ctas > g.col_tiles) return {};
  LordsGeometry geo;
  geo.wr = warps, geo.wc = 1, geo.ks = 1;
  geo.tiles_per_cta = (units + ctas - 1) / ctas;
  geo.grid_sum = geo.ring = true;
  geo.stages = 1;
  geo.ctas = ctas;
  geo.stage_tiles = std::min(stage_override() > 0 ? stage_override() : geo.tiles_per_cta, ring_slots_that_fit<Bits, NTR>(geo, MT));
  if (geo.stage_tiles < 2) return {};
  for (int r = 0; r < ranges; ++r)  // slots: the most runs that touch one row range
    geo.slots = std::max(geo.slots, stream_k_run_of_unit(int64_t{r + 1} * g.col_tiles - 1, ctas, units) -
                                        stream_k_run_of_unit(int64_t{r} * g.col_tiles, ctas, units) + 1);
  geo.smem = smem_layout<Bits, NTR>(geo, MT).total;
  return geo.smem <= kMaxSmemBytes ? geo : LordsGeometry{};
}

// The ring's rule (ring_mode -1): measured on an H100 (2026-12-07, three rounds, NF4 B=64 batch 1, same binary): on
// 4096x14336 (16 row ranges x 8 slabs, grid sum) the ring took 24.6-24.9 us against the chunk buffers' 25.2-25.5; on
// 14336x4096 (56 x 2 slabs over clusters) 23.4-23.6 against 21.8-21.9. So the ring serves the grid-sum geometries.
template <int Bits, int NTR, bool Wg = false, int MT = 2>
int launch_ntr(const MmaArgs& g, cudaStream_t stream) {
  if constexpr (Wg) {
    const int mode = ring_mode();
    const int grid_mode = grid_sum_mode();
    if (const int sk_mode = stream_k_mode(); sk_mode != 0) {
      const LordsGeometry sk = stream_k_geometry<Bits, NTR, MT>(g);
      if (sk.smem != 0) {
        bool take = sk_mode == 1;
        if (!take) {  // against the cost model's geometry: one CTA per SM, so its waves are CTAs over SMs
          const LordsGeometry geo = choose_geometry<Bits, NTR, Wg, MT, false>(g, grid_mode);
          const int64_t ctas = int64_t{geo.ks} * row_ctas(g, geo.wr, MT);
          take = geo.smem == 0 || 10 * sk.tiles_per_cta <= 9 * geo.tiles_per_cta * ((ctas + g.sm_count - 1) / g.sm_count);
        }
        if (take) return launch_geometry<Bits, NTR, true, MT, true, true, true>(g, sk, stream);
      }
    }
    if (mode == 1 || (mode < 0 && choose_geometry<Bits, NTR, Wg, MT, false>(g, grid_mode).grid_sum))
      return launch_with<Bits, NTR, true, MT, true>(g, stream);
  }
  return launch_with<Bits, NTR, Wg, MT, false>(g, stream);
}

// Rank n-tiles read: ceil(rank / 8) rounded up to 2, 4, 7 or 8 (the instantiated widths).
int rank_tiles(int rank) {
  const int n = (rank + 7) / 8;
  return n <= 2 ? 2 : n <= 4 ? 4 : n <= 7 ? 7 : 8;
}

// Whether NTR rank n-tiles (4, 7 or 8) multiply on wgmma: ranks 49-64 always; 17-32 on layers at least twice as
// long (columns) as tall, where mma.sync's clusters cannot split k far enough and the wgmma kernel's grid sum can.
// H100, ninth session (docs/results/lords-cuda.md): NF4 B=128 rank 24 4096x14336 23.1-23.2 -> 21.8 us, 14336x4096
// 19.3 -> 19.8, rank 32 at 4096x4096 10.2 -> 11.6; ranks <= 16 were slower on every shape (1024x4096 rank 12 5.0 ->
// 7.3 us), so they have no wgmma variant. HILO_LORDS_WG_NTR overrides the threshold.
bool wgmma_rank_product(const MmaArgs& g, int ntr) {
  if (overrides().wg_min_ntr > 0) return ntr >= overrides().wg_min_ntr;
  return ntr >= 7 || (ntr == 4 && g.col_tiles * kTileCols >= 2 * g.row_tiles * kTileRows);
}

// Row tiles per warp of the wgmma variant at ranks 49-64: 1 (16 warps) for 4-bit codes, 2 (8 warps) otherwise. H100,
// ninth session, same binary and call: NF4 B=64 14336x4096 24.1-24.3 -> 23.7 us and 4096x14336 26.1-26.2 -> 25.8
// with 1; NF3 B=64 25.0-25.1 against 25.6-25.9 and 26.1-26.2 against 26.3-26.4 with 2; 2-bit not measured (keeps 2,
// the earlier default). HILO_LORDS_WG_MT overrides it.
int wgmma_row_tiles(int bits) { return overrides().wg_mt > 0 ? overrides().wg_mt : bits == 4 ? 1 : 2; }

// The kernel for NTR rank n-tiles (lords_gemv_variant).
template <int Bits, int NTR>
int launch_rank_tiles(const MmaArgs& g, cudaStream_t stream) {
#if defined(HILO_HAVE_SM90A)
  if constexpr (NTR >= 4) {
    const LordsGemvVariant v = lords_gemv_variant(g, sm90a_device(g.device));
    if (v.wgmma) {
      if constexpr (NTR >= 7)
        if (v.row_tiles_per_warp == 2) return launch_ntr<Bits, NTR, true, 2>(g, stream);
      return launch_ntr<Bits, NTR, true, 1>(g, stream);
    }
  }
#endif
  return launch_ntr<Bits, NTR>(g, stream);
}

template <int Bits>
int launch_bits(const MmaArgs& g, cudaStream_t stream) {
  switch (rank_tiles(g.rank)) {
    case 2: return launch_rank_tiles<Bits, 2>(g, stream);
    case 4: return launch_rank_tiles<Bits, 4>(g, stream);
    case 7: return launch_rank_tiles<Bits, 7>(g, stream);
    default: return launch_rank_tiles<Bits, 8>(g, stream);
  }
}

}  // namespace

bool lords_gemv_serves(const MmaArgs& g) {
  static const bool enabled = env_flag("HILO_LORDS_GEMV", true);
  // Ranks up to 64 are padded to 16, 32 or 64, which holds the rank_tiles(rank) groups of 8 the kernel reads.
  return enabled && g.lords && g.batch == 1 && g.rank >= 1 && g.rank <= 64;
}

LordsGemvVariant lords_gemv_variant(const MmaArgs& g, bool sm90a) {
#if !defined(HILO_HAVE_SM90A)
  sm90a = false;  // no wgmma variant was compiled
#endif
  LordsGemvVariant v;
  v.rank_tiles = rank_tiles(g.rank);
  v.wgmma = sm90a && overrides().wgmma && v.rank_tiles >= 4 && wgmma_rank_product(g, v.rank_tiles);
  v.row_tiles_per_warp = !v.wgmma ? 2 : v.rank_tiles >= 7 ? wgmma_row_tiles(g.bits) : 1;
  return v;
}

void force_lords_xa_prepass(int mode) { force_switch(prepass_forced, mode); }
void force_lords_grid_sum(int mode) { force_switch(grid_sum_forced, mode); }
void force_lords_ring(int mode) { force_switch(ring_forced, mode); }
void force_lords_wc1(int mode) { force_switch(wc1_forced, mode); }
void force_lords_stream_k(int mode) { force_switch(stream_k_forced, mode); }
LordsGemvLaunch last_lords_gemv_launch() { return last_launch; }
void force_lords_gemv_geometry(int row_warps, int slabs, int stage_tiles) {
  wr_forced.store(std::max(row_warps, 0), std::memory_order_relaxed);
  ks_forced.store(std::max(slabs, 0), std::memory_order_relaxed);
  stage_forced.store(std::max(stage_tiles, 0), std::memory_order_relaxed);
}

int launch_lords_gemv(const MmaArgs& g, void* stream_ptr) {
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  return with_bits(g.bits, [&](auto bits) { return launch_bits<decltype(bits)::value>(g, stream); });
}

}  // namespace hilo::lords::cuda_detail
