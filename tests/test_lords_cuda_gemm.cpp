// The batch GEMMs of the LoRDS / block-wise CUDA matmul (mma.sync, wgmma, scale-on-wgmma, cluster-decoded) against
// the CPU oracle (lords_cuda_test_util.hpp) and against each other, split k in all its forms, and their rules.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "cuda_test_util.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"
#include "lords/cuda/mma_gemm.hpp"
#include "lords/cuda/split_workspace.hpp"
#include "lords/cuda/wgmma_cluster_gemm.hpp"
#include "lords/cuda/wgmma_gemm.hpp"
#include "lords/cuda/wgmma_scale_gemm.hpp"
#include "lords/gpu_layout.hpp"
#include "lords_cuda_test_util.hpp"

namespace hilo::lords_test {  // (the shared helpers: lords_cuda_test_util.hpp)
namespace {
using lords::CodebookKind;
using lords::Method;
using test::DeviceTensor;

// Batches of 33 and more run the wgmma GEMM on Hopper (64, 128 or 256 activation rows per CTA) and the mma.sync GEMM
// elsewhere: both against the oracle, each forced (force_wgmma_gemm; the wgmma one only where the device runs it), over
// activation tiles that are full, partial and several, rows that are not a multiple of 8 (the epilogue's element
// path), split k (few row CTAs), every bit width and rank 128, and a last chunk that is half past the columns (the
// wgmma GEMM's TMA box reads zeros there, and the block-wise scales of the missing blocks are zero).
TEST(LordsCuda, BothBatchGemmsMatchTheOracle) {
  SKIP_WITHOUT_GPU();
  struct Restore {
    ~Restore() { lords::cuda_detail::force_wgmma_gemm(-1); }
  } restore;
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> batches = {33, 64, 65, 200};
  for (int mode : {0, 1}) {
    lords::cuda_detail::force_wgmma_gemm(mode);
    check_case({Method::Blockwise, CodebookKind::NF, 4, 64, 300, 1280, 0, 1.0f, batches}, gen);
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 300, 1280, 0, 1.0f, batches}, gen);
    check_case({Method::Lords, CodebookKind::INT, 3, 64, 136, 640, 128, 1.0f, batches}, gen);
    check_case({Method::Blockwise, CodebookKind::INT, 2, 32, 1040, 384, 0, 1.0f, batches}, gen);
    for (auto method : {Method::Blockwise, Method::Lords})  // 1216 columns: 9.5 chunks of 128
      check_case({method, CodebookKind::NF, 4, 64, 200, 1216, 0, 1.0f, {40, 300}}, gen);
    // LoRDS at rank 49 (padded to 64; 7 groups of 8 ranks) and 20 (padded to 32; 3 groups) from 128 and 256
    // activation rows per CTA, over 12.5 row tiles (a CTA's last tiles past the rows).
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 200, 1216, 49, 1.0f, {130, 300}}, gen);
    check_case({Method::Lords, CodebookKind::INT, 3, 64, 200, 640, 20, 1.0f, {100, 257}}, gen);
  }
}

// Puts the wgmma GEMMs' test hooks (cluster kernel, tail split) back to their rules at the end of a test.
struct RestoreWgmmaRules {
  ~RestoreWgmmaRules() {
    lords::cuda_detail::force_wgmma_cluster_gemm(-1);
    lords::cuda_detail::force_wgmma_tail(0, 0);
  }
};

// Puts the scale-on-wgmma GEMM's test hooks (the kernel, its 256-row tiles) back to their rules at the end of a test.
struct RestoreScaleGemmRules {
  ~RestoreScaleGemmRules() {
    lords::cuda_detail::force_wgmma_scale_gemm(-1);
    lords::cuda_detail::force_wgmma_scale_gemm_wide(-1);
  }
};

// The LoRDS GEMM with the scale tile on wgmma (2-256 activation rows: CTAs of 16, 32, 64 and 128, two tiles of 128
// past 128; padded rank <= 64), forced on: against the oracle with the GEMM's tolerance, every bit width and
// codebook, ranks taking 1, 2, 3 and 4 k-steps of 16 (12, 20, 40, 49, 64), rows that end inside a CTA (12.5 row
// tiles), an odd count of chunks with a half last chunk (1216 columns: the body of one chunk), split k (one row CTA
// over 32 chunks, forced counts too).
TEST(LordsCuda, ScaleOnWgmmaGemmMatchesTheOracle) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreScaleGemmRules restore;
  lords::cuda_detail::force_wgmma_scale_gemm(1);
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> batches = {2, 5, 16, 17, 32, 33, 64, 65, 128, 200};
  for (auto cb : {CodebookKind::NF, CodebookKind::INT})
    for (int bits : {2, 3, 4}) check_case({Method::Lords, cb, bits, 64, 200, 1216, 49, 1.0f, batches}, gen);
  for (int rank : {12, 20, 40, 64})
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 136, 640, rank, 1.0f, batches}, gen);
  // One row CTA over 32 chunks: 16 splits of 2 chunks, at every CTA size and two tiles of 128.
  check_case({Method::Lords, CodebookKind::NF, 4, 64, 64, 4096, 49, 1.0f, {3, 16, 30, 50, 100, 256}}, gen);
  for (float x_scale : {3e4f, 1e-20f})
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 128, 384, 0, x_scale, {7, 40, 129}}, gen);
}

// The same kernel in tiles of 256 activation rows (force_wgmma_scale_gemm_wide: every batch past 128, past 256 too;
// B's rows in shared memory as the scale tile's A operand): every bit width and codebook, ranks of 1-4 k-steps, a
// last tile of few rows (257, 300), split k over one row CTA, rows that end inside a CTA, extreme activations.
TEST(LordsCuda, ScaleOnWgmmaGemmWideTilesMatchTheOracle) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreScaleGemmRules restore;
  lords::cuda_detail::force_wgmma_scale_gemm(1);
  lords::cuda_detail::force_wgmma_scale_gemm_wide(1);
  std::mt19937_64 gen(test::fresh_seed());
  const std::vector<int64_t> batches = {129, 256, 257, 600};
  for (auto cb : {CodebookKind::NF, CodebookKind::INT})
    for (int bits : {2, 3, 4}) check_case({Method::Lords, cb, bits, 64, 200, 1216, 49, 1.0f, batches}, gen);
  for (int rank : {12, 20, 40, 64})
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 136, 640, rank, 1.0f, {300, 1024}}, gen);
  check_case({Method::Lords, CodebookKind::NF, 4, 64, 64, 4096, 49, 1.0f, {200, 1000}}, gen);
  for (float x_scale : {3e4f, 1e-20f})
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 128, 384, 0, x_scale, {300}}, gen);
}

// The cluster-decoded wgmma GEMM (2 or 4 activation tiles of 256 rows per cluster, each CTA decoding a part of every
// chunk for all): against the oracle with it on and off, over 2 tiles (C = 2, the second partial), 4 (C = 4, the
// last partial) and 8 (two clusters on the same rows), every bit width, block-wise and LoRDS at 3, 4 and 7 groups of
// 8 ranks, split k (few row CTAs), an odd count of chunks and a half last chunk; then bitwise against the one-CTA
// kernel where both take one split (grids of more than a wave): same weights, same rounding, same wgmma order.
TEST(LordsCuda, ClusterDecodedGemmMatchesTheOneCtaGemm) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreWgmmaRules restore;
  lords::cuda_detail::force_wgmma_tail(-1, 0);  // the one-CTA kernel's whole tiles (the cluster kernel has no tail)
  std::mt19937_64 gen(test::fresh_seed());
  for (int mode : {1, 0}) {
    lords::cuda_detail::force_wgmma_cluster_gemm(mode);
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 200, 1216, 49, 1.0f, {300, 1000}}, gen);
    check_case({Method::Blockwise, CodebookKind::NF, 4, 64, 130, 1216, 0, 1.0f, {1024}}, gen);
    check_case({Method::Blockwise, CodebookKind::INT, 3, 96, 136, 672, 0, 1.0f, {512, 2048}}, gen);
    check_case({Method::Lords, CodebookKind::INT, 2, 32, 72, 384, 20, 1.0f, {1024}}, gen);
    check_case({Method::Lords, CodebookKind::NF, 3, 64, 150, 896, 32, 1.0f, {2000}}, gen);
  }
  struct Big {
    Method method;
    int bits;
    int64_t rows, batch;
    int rank;
  };
  for (const Big& c : {Big{Method::Lords, 4, 8448, 1024, 49}, Big{Method::Blockwise, 4, 8448, 1024, 0},
                       Big{Method::Lords, 3, 8448 * 2, 512, 64}, Big{Method::Blockwise, 2, 8448 * 2, 512, 0}}) {
    const Case shape{c.method, CodebookKind::NF, c.bits, 64, c.rows, 1216, c.rank};
    const lords::QuantizedLinear q = quantize_case(shape, gen);
    const lords::cuda::DeviceLinear dev(q);
    const Tensor x = test::random_tensor(DType::BF16, {c.batch, shape.cols}, gen, 1.0f);
    const DeviceTensor dx(x);
    std::vector<Tensor> ys;
    for (int mode : {1, 0}) {
      lords::cuda_detail::force_wgmma_cluster_gemm(mode);
      ys.push_back(gpu_matmul(dev, dx, c.batch, c.rows));
    }
    expect_same_bits(ys[0], ys[1], lords::to_string(c.method) + " NF" + std::to_string(c.bits) + " rank " +
                                       std::to_string(c.rank) + " [" + std::to_string(c.rows) + ", 1216] batch " +
                                       std::to_string(c.batch));
  }
}

// The wgmma GEMM's split of the last wave (WgTail): with 4 slots forced, grids of 5 row CTAs (the last past the rows)
// by 1-3 activation tiles take 1-3 whole waves and split their last 1-3 tiles 2, 3 or 4 ways (1216 columns: 10
// chunks, so parts of 5, 4 / 4 / 2 and 3 / 3 / 3 / 1), at 64, 128 and 256 activation rows per CTA, block-wise and
// LoRDS, every bit width; against the oracle, and the same bits on a second run (the parts are added in a fixed
// order, whichever finishes last).
TEST(LordsCuda, TailSplitGemmMatchesTheOracle) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreWgmmaRules restore;
  lords::cuda_detail::force_wgmma_cluster_gemm(0);  // the cluster kernel has no tail split
  std::mt19937_64 gen(test::fresh_seed());
  for (int splits : {2, 3, 4}) {
    lords::cuda_detail::force_wgmma_tail(4, splits);
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 520, 1216, 49, 1.0f, {300, 100}}, gen);
    check_case({Method::Blockwise, CodebookKind::NF, 4, 64, 520, 1216, 0, 1.0f, {300, 40}}, gen);
    check_case({Method::Lords, CodebookKind::INT, 3, 64, 520, 1216, 20, 1.0f, {600}}, gen);
    check_case({Method::Blockwise, CodebookKind::INT, 2, 32, 520, 1216, 0, 1.0f, {600}}, gen);
  }
  lords::cuda_detail::force_wgmma_tail(4, 3);
  const Case shape{Method::Lords, CodebookKind::NF, 4, 64, 520, 1216, 49};
  const lords::QuantizedLinear q = quantize_case(shape, gen);
  const lords::cuda::DeviceLinear dev(q);
  const Tensor x = test::random_tensor(DType::BF16, {600, shape.cols}, gen, 1.0f);
  const DeviceTensor dx(x);
  const Tensor first = gpu_matmul(dev, dx, 600, shape.rows);
  expect_same_bits(first, gpu_matmul(dev, dx, 600, shape.rows), "second run");
}

// Where y of one layer and batch comes out, for the workspace test below: on `stream`, directly or as a CUDA graph
// captured there (replayed `replays` times, the output poisoned before each).
Tensor matmul_on(const lords::cuda::DeviceLinear& dev, const DeviceTensor& dx, DeviceTensor& dy, cudaStream_t stream,
                 int replays) {
  if (replays == 0) {
    dy.poison();
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    lords::cuda::matmul(dev, dx, dy, stream);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    return dy.to_host();
  }
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  lords::cuda::matmul(dev, dx, dy, stream);
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  Tensor y;
  for (int r = 0; r < replays; ++r) {
    dy.poison();
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    Tensor got = dy.to_host();
    if (r > 0) expect_same_bits(y, got, "graph replay " + std::to_string(r));
    y = std::move(got);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return y;
}

// Split k added in the kernel through the stream's workspace (split_workspace.hpp) gives the bits of per-call
// buffers and the sum kernel (both add the parts in part order): the scale-on-wgmma GEMM (one row CTA over 32 chunks,
// 16 splits; 5 row CTAs over 10 chunks), the one-CTA wgmma GEMM's split k (300 rows) and its last wave's split, the
// mma.sync GEMM (block-wise at 20 rows, LoRDS at padded rank 16 at 5 and 16 rows: 5 splits, a part row tile); each
// call twice on one stream (the tile counters must be back at zero), as a graph captured on a fresh stream (its
// workspace made during the capture) and replayed three times, and on two streams at once (one workspace each).
TEST(LordsCuda, SplitKThroughTheWorkspaceGivesTheSameBits) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_here()) GTEST_SKIP() << "needs sm_90a (wgmma)";
  const RestoreWgmmaRules restore;
  struct RestoreWorkspace {
    ~RestoreWorkspace() { lords::cuda_detail::force_split_workspace(-1); }
  } restore_workspace;
  std::mt19937_64 gen(test::fresh_seed());
  struct Split {
    Case shape;
    int64_t batch;
    bool tail;  // the one-CTA GEMM's last-wave split, forced (4 slots, 3 parts)
  };
  for (const Split& c : {Split{{Method::Lords, CodebookKind::NF, 4, 64, 64, 4096, 49}, 16, false},
                         Split{{Method::Lords, CodebookKind::INT, 3, 64, 520, 1216, 20}, 100, false},
                         Split{{Method::Lords, CodebookKind::NF, 4, 64, 200, 1216, 49}, 300, false},
                         Split{{Method::Blockwise, CodebookKind::NF, 4, 64, 136, 1216, 0}, 40, false},
                         Split{{Method::Lords, CodebookKind::NF, 4, 64, 520, 1216, 49}, 600, true},
                         Split{{Method::Blockwise, CodebookKind::NF, 3, 64, 264, 1216, 0}, 20, false},
                         Split{{Method::Lords, CodebookKind::NF, 4, 64, 200, 1216, 12}, 16, false},
                         Split{{Method::Lords, CodebookKind::INT, 2, 64, 136, 1216, 16}, 5, false}}) {
    lords::cuda_detail::force_wgmma_tail(c.tail ? 4 : 0, c.tail ? 3 : 0);
    const lords::QuantizedLinear q = quantize_case(c.shape, gen);
    const lords::cuda::DeviceLinear dev(q);
    const Tensor x = test::random_tensor(DType::BF16, {c.batch, c.shape.cols}, gen, 1.0f);
    const DeviceTensor dx(x);
    DeviceTensor dy(DType::BF16, {c.batch, c.shape.rows}), dy2(DType::BF16, {c.batch, c.shape.rows});
    const std::string label = lords::to_string(q.method) + " [" + std::to_string(q.rows) + ", " +
                              std::to_string(q.cols) + "] batch " + std::to_string(c.batch) + ": ";
    cudaStream_t streams[3];
    for (auto& s : streams) ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    lords::cuda_detail::force_split_workspace(0);
    const Tensor want = matmul_on(dev, dx, dy, streams[0], 0);
    Oracle(q).expect_matches(x, want, label + "per-call buffers: ");
    lords::cuda_detail::force_split_workspace(1);
    for (int call = 0; call < 2; ++call)
      expect_same_bits(want, matmul_on(dev, dx, dy, streams[0], 0), label + "workspace, call " + std::to_string(call));
    expect_same_bits(want, matmul_on(dev, dx, dy, streams[1], 3), label + "graph");
    dy.poison(), dy2.poison();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (int call = 0; call < 4; ++call) {
      lords::cuda::matmul(dev, dx, dy, streams[1]);
      lords::cuda::matmul(dev, dx, dy2, streams[2]);
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_same_bits(want, dy.to_host(), label + "two streams, first");
    expect_same_bits(want, dy2.to_host(), label + "two streams, second");
    for (auto& s : streams) cudaStreamDestroy(s);
  }
}

// The scale-on-wgmma GEMM's rule without a device: by default LoRDS at padded rank 32 and 64 with every bit width,
// and at padded rank 16 from 17 rows; never past 256 rows, padded rank 64 or for block-wise.
TEST(LordsCuda, ScaleOnWgmmaGemmRule) {
  using lords::cuda_detail::wgmma_scale_gemm_by_default, lords::cuda_detail::wgmma_scale_gemm_can_run;
  lords::cuda_detail::MmaArgs g;
  g.lords = true, g.bits = 4, g.rank_pad = 64, g.batch = 16;
  EXPECT_TRUE(wgmma_scale_gemm_by_default(g));
  g.rank_pad = 32, g.batch = 2;
  EXPECT_TRUE(wgmma_scale_gemm_by_default(g));
  for (int bits : {2, 3}) {
    g.bits = bits, g.batch = 64;
    EXPECT_TRUE(wgmma_scale_gemm_by_default(g));
  }
  g.bits = 4, g.rank_pad = 16, g.batch = 16;
  EXPECT_TRUE(wgmma_scale_gemm_can_run(g));
  EXPECT_FALSE(wgmma_scale_gemm_by_default(g));
  g.batch = 17;
  EXPECT_TRUE(wgmma_scale_gemm_by_default(g));
  g.rank_pad = 64, g.batch = 256;
  EXPECT_TRUE(wgmma_scale_gemm_by_default(g));
  g.batch = 257;
  EXPECT_FALSE(wgmma_scale_gemm_can_run(g));
  g.batch = 8, g.rank_pad = 128;
  EXPECT_FALSE(wgmma_scale_gemm_can_run(g));
  g.rank_pad = 64, g.lords = false;
  EXPECT_FALSE(wgmma_scale_gemm_can_run(g));
  // Tiles of 256 rows, where turned on: every batch past 128 (not yet by default).
  const RestoreScaleGemmRules restore;
  g.lords = true, g.batch = 1024;
  lords::cuda_detail::force_wgmma_scale_gemm_wide(1);
  EXPECT_TRUE(wgmma_scale_gemm_by_default(g));
  g.rank_pad = 128;
  EXPECT_FALSE(wgmma_scale_gemm_can_run(g));
  lords::cuda_detail::force_wgmma_scale_gemm_wide(0);
  g.rank_pad = 64;
  EXPECT_FALSE(wgmma_scale_gemm_can_run(g));
}

// The workspace's default rule (no GPU needed): the H100's measured cases (twenty-sixth session). 4 splits of 8
// accumulators per thread (4096x4096 and 4096x14336 at batches 2-16) take it; 4 of 32 (batch 64), 16 of 8 (1024x4096
// at batches 4-16 on mma.sync) and 4 of 64 (batch 1024) do not.
TEST(LordsCuda, SplitWorkspaceRule) {
  using lords::cuda_detail::split_workspace_by_default;
  EXPECT_TRUE(split_workspace_by_default(4, 8));
  EXPECT_TRUE(split_workspace_by_default(2, 16));
  EXPECT_FALSE(split_workspace_by_default(4, 32));
  EXPECT_FALSE(split_workspace_by_default(16, 8));
  EXPECT_FALSE(split_workspace_by_default(4, 64));
}

// The tail split's rule (no GPU needed): 14336x4096 at batch 1024 on 132 SMs (448 tiles of 128 KB partial sums, 32
// chunks) splits its last 52 tiles two ways; one wave or less, a last wave nearly full (224 tiles: 92 left) and
// one chunk do not split; the test hook's forced slots and splits, and its off switch.
TEST(LordsCuda, TailSplitRule) {
  using lords::cuda_detail::choose_tail_split;
  const RestoreWgmmaRules restore;
  constexpr int64_t kTile = 128 << 10;
  const auto big = choose_tail_split(448, 132, 32, kTile);
  EXPECT_EQ(big.splits, 2);
  EXPECT_EQ(big.dp_ctas, 396);
  EXPECT_EQ(big.tiles_per_split, 16);
  EXPECT_EQ(choose_tail_split(128, 132, 32, kTile).splits, 0);
  EXPECT_EQ(choose_tail_split(132, 132, 32, kTile).splits, 0);
  EXPECT_EQ(choose_tail_split(224, 132, 32, kTile).splits, 0);
  EXPECT_EQ(choose_tail_split(448, 132, 1, kTile).splits, 0);  // one chunk: nothing to split
  lords::cuda_detail::force_wgmma_tail(6, 4);
  const auto forced = choose_tail_split(16, 132, 10, kTile);
  EXPECT_EQ(forced.splits, 4);
  EXPECT_EQ(forced.dp_ctas, 12);
  EXPECT_EQ(forced.tiles_per_split, 3);
  lords::cuda_detail::force_wgmma_tail(-1, 0);
  EXPECT_EQ(choose_tail_split(448, 132, 32, kTile).splits, 0);
}

}  // namespace
}  // namespace hilo::lords_test
