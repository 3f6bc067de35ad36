// The GEMVs of the LoRDS / block-wise CUDA matmul (the row-owning GEMV, the LoRDS GEMV for one activation row and
// its x * A prepass) against the CPU oracle (lords_cuda_test_util.hpp), their geometries, builds and rules.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../bench/lords_layers.hpp"
#include "cuda_test_util.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"
#include "lords/cuda/lords_gemv.hpp"
#include "lords/cuda/mma_gemm.hpp"
#include "lords/gpu_layout.hpp"
#include "lords_cuda_test_util.hpp"

namespace hilo::lords_test {  // (the shared helpers: lords_cuda_test_util.hpp)
namespace {
using lords::CodebookKind;
using lords::Method;
using test::DeviceTensor;

// The row-owning GEMV (block-wise, power-of-two blocks, batch <= 8): every block size it serves, many CTAs (several
// waves), few row tiles (column slabs over a cluster of 8), an odd number of row tiles, rows and columns that are not
// multiples of the tiles, 3-bit tiles, x far from 1 (the rescaled path); batches above 8 in check_case run the GEMM.
TEST(LordsCuda, RowGemvServesBlockwiseSmallBatches) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  for (int block : {32, 128, 256})
    for (int bits : {2, 3, 4}) check_case({Method::Blockwise, CodebookKind::NF, bits, block, 77, 1280}, gen);
  check_case({Method::Blockwise, CodebookKind::NF, 4, 64, 8500, 256}, gen);    // several waves of CTAs
  check_case({Method::Blockwise, CodebookKind::INT, 3, 64, 40, 4032}, gen);    // 3 row tiles: 8 column slabs
  check_case({Method::Blockwise, CodebookKind::NF, 4, 64, 33, 192, 0, 3e4f}, gen);  // x far from 1
}

// The LoRDS GEMV for one activation row (lords_gemv.cu): every rank width it reads (2, 4, 7, 8 n-tiles of 8 ranks,
// ranks not multiples of 8), every bit width and both codebooks, rows and columns that are not multiples of the
// tiles, many row CTAs, one column tile, x * A staged in several chunks (14336 columns at rank 64), x far from 1
// either way; batch 2 (the GEMM) alongside.
TEST(LordsCuda, LordsGemvServesBatchOne) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> one{1, 2};
  for (int rank : {5, 12, 24, 32, 40, 49, 64})
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 300, 1280, rank, 1, one}, gen);
  for (int bits : {2, 3})
    for (auto cb : {CodebookKind::NF, CodebookKind::INT})
      for (int rank : {12, 49}) check_case({Method::Lords, cb, bits, 64, 77, 1024, rank, 1, one}, gen);
  check_case({Method::Lords, CodebookKind::INT, 4, 32, 37, 96, 32, 1, one}, gen);        // one partial tile
  check_case({Method::Lords, CodebookKind::NF, 4, 64, 4500, 512, 32, 1, one}, gen);      // many row CTAs
  check_case({Method::Lords, CodebookKind::NF, 4, 64, 150, 14336, 64, 1, one}, gen);     // chunked x * A
  check_case({Method::Lords, CodebookKind::NF, 3, 128, 260, 4096, 49, 1, one}, gen);
  for (float x_scale : {3e4f, 1e-20f}) check_case({Method::Lords, CodebookKind::NF, 4, 64, 64, 384, 0, x_scale, one}, gen);
}

// Resets every LoRDS GEMV test hook (force_lords_*) when a test ends.
struct RestoreLordsGemvRules {
  ~RestoreLordsGemvRules() {
    lords::cuda_detail::force_lords_grid_sum(-1);
    lords::cuda_detail::force_lords_xa_prepass(-1);
    lords::cuda_detail::force_lords_gemv_geometry(0, 0, 0);
    lords::cuda_detail::force_lords_ring(-1);
    lords::cuda_detail::force_lords_wc1(-1);
    lords::cuda_detail::force_lords_stream_k(-1);
  }
};

// The LoRDS GEMV's split-k sums through global memory (force_lords_grid_sum: partial sums and a per-row-range
// counter; the last CTA adds the slabs in order; wgmma ranks only, the others keep their clusters) against the
// oracle (the prepass zeroes the counters; forcing it off changes only the mma.sync shapes, which keep clusters), and
// the cluster sums (0).
TEST(LordsCuda, LordsGemvGridSumMatchesTheOracle) {
  SKIP_WITHOUT_GPU();
  const RestoreLordsGemvRules restore;
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> one{1};
  for (int grid : {1, 0}) {
    lords::cuda_detail::force_lords_grid_sum(grid);
    for (int prepass : {-1, 0}) {
      lords::cuda_detail::force_lords_xa_prepass(prepass);
      check_case({Method::Lords, CodebookKind::NF, 4, 64, 300, 4096, 12, 1, one}, gen);
      check_case({Method::Lords, CodebookKind::NF, 4, 64, 512, 14336, 49, 1, one}, gen);
      check_case({Method::Lords, CodebookKind::INT, 3, 128, 260, 4096, 64, 1, one}, gen);
      check_case({Method::Lords, CodebookKind::NF, 2, 64, 77, 2048, 32, 1, one}, gen);
    }
  }
}

// The wgmma GEMV's x * A ring and its chunk buffers (lords_gemv.cu; force_lords_ring 1 / 0): 1, 2 and 4 column groups
// of warps (16, 8 and 4 row warps; the 3-bit variant's 8 warps: 1 and 2), one slab and several, the rule's slots or
// chunks and the fewest (ring: two slots per column group, a refill after every tile), against the oracle.
TEST(LordsCuda, LordsGemvRingMatchesTheOracle) {
  SKIP_WITHOUT_GPU();
  const RestoreLordsGemvRules restore;
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> one{1};
  for (int ring : {1, 0}) {
    lords::cuda_detail::force_lords_ring(ring);
    for (int wr : {16, 8, 4})
      for (int slabs : {1, 3})
        for (bool fewest : {false, true}) {
          lords::cuda_detail::force_lords_gemv_geometry(wr, slabs, fewest ? 2 * (16 / wr) : 0);
          check_case({Method::Lords, CodebookKind::NF, 4, 64, 200, 4096, 49, 1, one}, gen);
        }
    for (int wr : {8, 4}) {
      lords::cuda_detail::force_lords_gemv_geometry(wr, 2, 2 * (8 / wr));
      check_case({Method::Lords, CodebookKind::INT, 3, 64, 130, 2048, 64, 1, one}, gen);
    }
  }
}

// The wgmma GEMV's build for one column group of warps (force_lords_wc1 1; the tile indices and descriptors known
// warp-uniform at compile time) against the general build (0) on the same geometry: the same arithmetic in the same
// order, so the same bits. 4-bit codes (16 warps of one row tile) and 3-bit (8 warps of two), ranks 49 and 24 (a layer
// four times as wide as tall), the ring and the chunk buffers, clusters and the grid sum; the oracle checks the first.
TEST(LordsCuda, LordsGemvOneColumnGroupBuildIsBitwiseTheGeneralOne) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreLordsGemvRules restore;
  std::mt19937_64 gen(test::fresh_seed());
  struct Layer {
    CodebookKind codebook;
    int bits;
    int64_t rows, cols;
    int rank, row_warps, slabs;
  };
  for (const Layer& c : {Layer{CodebookKind::NF, 4, 300, 4096, 49, 16, 2}, Layer{CodebookKind::INT, 3, 200, 2048, 64, 8, 3},
                         Layer{CodebookKind::NF, 4, 256, 1024 + 64, 24, 16, 3}}) {
    const Case shape{Method::Lords, c.codebook, c.bits, 64, c.rows, c.cols, c.rank};
    const lords::QuantizedLinear q = quantize_case(shape, gen);
    const lords::cuda::DeviceLinear dev(q);
    const Tensor x = test::random_tensor(DType::BF16, {1, c.cols}, gen, 1.0f);
    const DeviceTensor dx(x);
    lords::cuda_detail::force_lords_gemv_geometry(c.row_warps, c.slabs, 0);
    for (int ring : {1, 0})
      for (int grid : {1, 0}) {
        lords::cuda_detail::force_lords_ring(ring);
        lords::cuda_detail::force_lords_grid_sum(grid);
        lords::cuda_detail::force_lords_wc1(1);
        const Tensor one_group = gpu_matmul(dev, dx, 1, c.rows);
        lords::cuda_detail::force_lords_wc1(0);
        expect_same_bits(one_group, gpu_matmul(dev, dx, 1, c.rows),
                         std::to_string(c.bits) + "-bit rank " + std::to_string(c.rank) + " [" + std::to_string(c.rows) +
                             ", " + std::to_string(c.cols) + "] ring " + std::to_string(ring) + " grid sum " +
                             std::to_string(grid));
      }
    lords::cuda_detail::force_lords_wc1(1);
    check_case({Method::Lords, c.codebook, c.bits, 64, c.rows, c.cols, c.rank, 1, {1}}, gen);
  }
}

// The wgmma GEMV's stream-K geometry (force_lords_stream_k 1: the layer's (row range, column tile) units cut into one
// run per SM, a run crossing into the next row range at most, each range's runs added in order through global memory)
// against the oracle: runs inside one range and runs that cross (9 column tiles, 3 row ranges, 13 runs), many runs
// per range, the ring refilled after every 2 tiles, 4-bit codes (16 warps), 3-bit (8 warps of two row tiles), rank 24;
// then the same bits on a second call (the sums' order does not depend on which run finishes first).
TEST(LordsCuda, LordsGemvStreamKMatchesTheOracle) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreLordsGemvRules restore;
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> one{1};
  lords::cuda_detail::force_lords_stream_k(1);
  for (int slots : {0, 2}) {
    lords::cuda_detail::force_lords_gemv_geometry(0, 0, slots);
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 700, 1024 + 64, 49, 1, one}, gen);
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 3000, 4096, 49, 1, one}, gen);
    check_case({Method::Lords, CodebookKind::INT, 3, 64, 600, 2048, 64, 1, one}, gen);
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 500, 4096 + 64, 24, 1, one}, gen);
  }
  lords::cuda_detail::force_lords_gemv_geometry(0, 0, 0);
  const Case shape{Method::Lords, CodebookKind::NF, 4, 64, 2100, 4096, 49};
  const lords::QuantizedLinear q = quantize_case(shape, gen);
  const lords::cuda::DeviceLinear dev(q);
  const DeviceTensor dx(test::random_tensor(DType::BF16, {1, shape.cols}, gen, 1.0f));
  const Tensor first = gpu_matmul(dev, dx, 1, shape.rows);
  expect_same_bits(first, gpu_matmul(dev, dx, 1, shape.rows), "second call");
}

// The wgmma GEMV's geometry under its default rules on the Llama-3-8B layers of rank 49 (NF4 B=64 parity): it runs
// (no fallback to the cluster GEMV), on at least 80% of the SMs, with more than the 48 KB of shared memory a kernel
// gets without asking. Until 2026-12-07 the rules queried occupancy before raising the kernel's shared-memory limit;
// the first call of 14336x4096 found no geometry, cached that, and went to the cluster GEMV (H100: 70 us against
// 21). The first call of a shape in this process is the one that shows it; run alone (--gtest_filter) it is also
// the first call of each kernel.
TEST(LordsCuda, LordsGemvGeometryFillsTheGpuOnTheFirstCall) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreLordsGemvRules restore;
  int device = 0, sms = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), cudaSuccess);
  std::mt19937_64 gen(test::fresh_seed());
  const std::pair<int64_t, int64_t> layers[] = {{14336, 4096}, {4096, 14336}};
  for (const auto& [rows, cols] : layers) {
    const lords::QuantizedLinear q = bench::random_layer(Method::Lords, 4, 64, rows, cols, gen);
    ASSERT_EQ(q.rank, 49);
    const lords::cuda::DeviceLinear dev(q);
    const DeviceTensor dx(test::random_tensor(DType::BF16, {1, cols}, gen, 1.0f));
    gpu_matmul(dev, dx, 1, rows);
    const auto launch = lords::cuda_detail::last_lords_gemv_launch();
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    ASSERT_TRUE(launch.rows == rows && launch.cols == cols) << shape << ": the LoRDS GEMV did not take the call";
    EXPECT_GE(10 * launch.ctas, 8 * sms) << shape << ": " << launch.ctas << " CTAs on " << sms << " SMs";
    EXPECT_GT(launch.smem, size_t{48} * 1024) << shape;
  }
}

// Which kernel the LoRDS GEMV takes (host code, no GPU needed; HILO_LORDS_WG* unset): mma.sync with two row tiles
// per warp without sm_90a and at ranks <= 16; wgmma at ranks 49-64, with one row tile per warp for 4-bit codes and
// two for 3- and 2-bit codes; at ranks 17-32 only on layers at least twice as wide as tall, one row tile per warp.
TEST(LordsCuda, LordsGemvPicksItsKernelByRankShapeAndBits) {
  lords::cuda_detail::MmaArgs g;
  g.lords = true;
  g.batch = 1;
  const auto pick = [&](int64_t rows, int64_t cols, int rank, int bits, bool sm90a) {
    g.rows = rows;
    g.cols = cols;
    g.row_tiles = static_cast<int>((rows + 15) / 16);
    g.col_tiles = static_cast<int>((cols + 127) / 128);
    g.rank = rank;
    g.bits = bits;
    return lords::cuda_detail::lords_gemv_variant(g, sm90a);
  };
  for (int rank : {5, 12, 32, 49, 64}) {
    const auto v = pick(4096, 14336, rank, 4, false);
    EXPECT_FALSE(v.wgmma) << rank;
    EXPECT_EQ(v.row_tiles_per_warp, 2) << rank;
  }
  EXPECT_EQ(pick(4096, 4096, 12, 4, false).rank_tiles, 2);
  EXPECT_EQ(pick(4096, 4096, 24, 4, false).rank_tiles, 4);
  EXPECT_EQ(pick(4096, 4096, 49, 4, false).rank_tiles, 7);
  EXPECT_EQ(pick(4096, 4096, 64, 4, false).rank_tiles, 8);
  if (!pick(4096, 4096, 49, 4, true).wgmma) GTEST_SKIP() << "built without sm_90a: no wgmma variant";
  for (int bits : {2, 3, 4}) {
    const auto wide = pick(14336, 4096, 49, bits, true);
    EXPECT_TRUE(wide.wgmma) << bits;
    EXPECT_EQ(wide.row_tiles_per_warp, bits == 4 ? 1 : 2) << bits;
  }
  EXPECT_FALSE(pick(1024, 4096, 12, 4, true).wgmma);       // ranks <= 16: mma.sync on any shape
  EXPECT_FALSE(pick(1024, 40960, 16, 4, true).wgmma);
  EXPECT_FALSE(pick(4096, 4096, 32, 4, true).wgmma);       // ranks 17-32: square
  EXPECT_FALSE(pick(14336, 4096, 24, 4, true).wgmma);      // ... tall
  const auto long_layer = pick(4096, 14336, 24, 3, true);  // ... twice as wide as tall
  EXPECT_TRUE(long_layer.wgmma);
  EXPECT_EQ(long_layer.row_tiles_per_warp, 1);
  EXPECT_TRUE(pick(4096, 8192, 32, 4, true).wgmma);
}

// The x * A prepass (HILO_LORDS_XA_PREPASS) uses the GEMV's own scale and rounding: the same bits as the in-kernel
// conversion, for every rank width, bit width, one and several slabs, chunked x * A, many row CTAs, x far from 1, and
// Inf/NaN activations.
TEST(LordsCuda, XaPrepassGivesTheSameBits) {
  SKIP_WITHOUT_GPU();
  const RestoreLordsGemvRules restore;
  std::mt19937_64 gen(test::fresh_seed());
  struct Shape {
    int bits;
    int64_t rows, cols;
    int rank;
    float x_scale = 1, bad = 0;  // bad != 0: x[0, 77] = bad
  };
  for (const Shape& s : std::vector<Shape>{{4, 300, 1280, 12},   {4, 300, 1280, 24},     {4, 130, 1280, 49},
                                           {3, 77, 1024, 40},    {2, 77, 1024, 64},      {4, 150, 14336, 64},
                                           {2, 4500, 512, 32},   {4, 37, 192, 5},        {4, 64, 384, 32, 3e4f},
                                           {4, 64, 384, 49, 1e-20f}, {4, 700, 1024, 49, 1, INFINITY},
                                           {4, 700, 1024, 12, 1, NAN}}) {
    lords::QuantConfig cfg;
    cfg.bits = s.bits;
    cfg.rank = s.rank;
    cfg.steps = 2;
    const lords::QuantizedLinear q = lords::quantize(test::random_tensor(DType::F32, {s.rows, s.cols}, gen, 0.05f), cfg);
    const lords::cuda::DeviceLinear dev(q);
    Tensor x = test::random_tensor(DType::BF16, {1, s.cols}, gen, s.x_scale);
    if (s.bad != 0) x.ptr<uint16_t>()[77] = f32_to_bf16(s.bad);
    const DeviceTensor dx(x);
    lords::cuda_detail::force_lords_xa_prepass(0);
    const Tensor in_kernel = gpu_matmul(dev, dx, 1, s.rows);
    lords::cuda_detail::force_lords_xa_prepass(1);
    expect_same_bits(in_kernel, gpu_matmul(dev, dx, 1, s.rows),
                     "NF" + std::to_string(s.bits) + " [" + std::to_string(s.rows) + ", " + std::to_string(s.cols) +
                         "] rank " + std::to_string(s.rank) + " x ~ " + std::to_string(s.x_scale));
  }
}

}  // namespace
}  // namespace hilo::lords_test
