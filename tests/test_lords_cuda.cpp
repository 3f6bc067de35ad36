// The LoRDS / block-wise CUDA matmul against the CPU oracle (dequantise, f64 dot products) on fresh random layers:
// every bit width and codebook, both methods, shapes that are not multiples of the 16 x 128 tiles, slabs split
// across clusters, ranks of every padded width, batches on both sides of the GEMV/GEMM switch (and GEMM batches
// across two activation tiles), activations far from 1, outputs poisoned first. Tolerances: y is rounded to bf16
// (2^-8 relative) after an f32 accumulation in another order, plus
//  - GEMV tensor-core paths (block-wise, LoRDS rank <= 128, small batches; the row-owning GEMV or the cluster GEMV):
//    fp16 codebook values and fp16 x * A (2^-11 relative each), so 2^-10 of sum_c |q_ic x_c| sum_k |B_ik A_kc| (for
//    block-wise, sum |w x|);
//  - GEMM path (larger batches): bf16 codebook values (2^-9), W = value * scale rounded to bf16 (2^-9), so 2^-8 of
//    that sum; LoRDS rounds S = B A (f32 accumulation) to bf16 before the product (2^-9 more): 3 x 2^-9;
//  - CUDA-core path (LoRDS rank > 128): 1e-5 of sum |w x|.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "../bench/lords_layers.hpp"
#include "cuda_test_util.hpp"
#include "hilo/error.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"
#include "lords/cuda/lords_gemv.hpp"
#include "lords/cuda/mma_gemm.hpp"
#include "lords/cuda/split_workspace.hpp"
#include "lords/cuda/wgmma_cluster_gemm.hpp"
#include "lords/cuda/wgmma_gemm.hpp"
#include "lords/cuda/wgmma_scale_gemm.hpp"
#include "lords/gpu_layout.hpp"

namespace hilo {
namespace {
using test::DeviceTensor;
using lords::CodebookKind;
using lords::Method;

struct Case {
  lords::Method method;
  lords::CodebookKind codebook;
  int bits, block;
  int64_t rows, cols;
  int rank = 0;         // LoRDS: 0 = parity rank
  float x_scale = 1;    // activations ~ N(0, x_scale)
  std::vector<int64_t> batches = {1, 3, 8, 11, 24, 40, 130};
};

lords::QuantizedLinear quantize_case(const Case& c, std::mt19937_64& gen) {
  const Tensor w = test::random_tensor(DType::F32, {c.rows, c.cols}, gen, 0.05f);
  lords::QuantConfig cfg;
  cfg.method = c.method;
  cfg.codebook = c.codebook;
  cfg.bits = c.bits;
  cfg.block = c.block;
  cfg.rank = c.rank;
  cfg.steps = 5;
  return lords::quantize(w, cfg);
}

// A layer's CPU oracle and the tolerance scale of each output: |W| as the tensor-core path sees it, |q| sum_k |B_ik
// A_kc| (LoRDS) or |w| (block-wise).
class Oracle {
 public:
  explicit Oracle(const lords::QuantizedLinear& q) : q_(q), wmag_(static_cast<std::size_t>(q.rows * q.cols)) {
    std::vector<float> wq(wmag_.size());
    lords::dequantize(q, wq.data());
    for (int64_t i = 0; i < q.rows; ++i)
      for (int64_t k = 0; k < q.cols; ++k) {
        double m = std::abs(double(wq[i * q.cols + k]));
        if (q.method == lords::Method::Lords && tensor_cores()) {
          double s_ik = 0, sba = 0;
          for (int r = 0; r < q.rank; ++r) {
            const double ba = double(bf16_to_f32(q.b[i * q.rank + r])) * bf16_to_f32(q.a[r * q.cols + k]);
            s_ik += ba;
            sba += std::abs(ba);
          }
          m = s_ik != 0 ? m / std::abs(s_ik) * sba : sba;  // |q| sum_k |B A| (|q| <= 1 where S = 0)
        }
        wmag_[static_cast<std::size_t>(i * q.cols + k)] = m;
      }
  }
  bool tensor_cores() const { return q_.method == lords::Method::Blockwise || q_.rank <= 128; }
  // Whether the library serves this batch with the GEMM (its own rule).
  bool gemm(int64_t batch) const {
    lords::cuda_detail::MmaArgs path;
    path.batch = batch, path.lords = q_.method == lords::Method::Lords;
    path.rank = q_.rank, path.rank_pad = lords::gpu_layout::padded_rank(q_.rank);
    return tensor_cores() && lords::cuda_detail::use_mma_gemm(path);
  }
  // y (bf16 [batch, rows], from the GPU) against the oracle applied to x (bf16 [batch, cols]).
  void expect_matches(const Tensor& x, const Tensor& y, const std::string& label) const {
    const int64_t batch = x.shape()[0], rows = q_.rows, cols = q_.cols;
    const bool lords = q_.method == lords::Method::Lords;
    const double rel = gemm(batch)        ? (lords ? 3 : 2) * std::ldexp(1.0, -9)
                       : tensor_cores() ? std::ldexp(1.0, -10)
                                        : 1e-5;
    std::vector<float> xf(static_cast<std::size_t>(batch * cols)), ref(static_cast<std::size_t>(batch * rows));
    convert(x.view().data(), DType::BF16, xf.data(), DType::F32, xf.size());
    lords::reference::matmul(q_, xf.data(), batch, ref.data());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        double mag = 0;
        for (int64_t k = 0; k < cols; ++k) mag += wmag_[i * cols + k] * std::abs(double(xf[b * cols + k]));
        const double got = bf16_to_f32(y.ptr<uint16_t>()[b * rows + i]), want = ref[b * rows + i];
        ASSERT_NEAR(got, want, std::ldexp(std::abs(want), -8) + rel * mag + 1e-30)
            << label << lords::to_string(q_.method) << " " << q_.codebook.name() << " B" << q_.block << " rank "
            << q_.rank << " [" << rows << ", " << cols << "] batch " << batch << (gemm(batch) ? " (gemm)" : "")
            << " row " << b << " out " << i;
      }
  }

 private:
  const lords::QuantizedLinear& q_;
  std::vector<double> wmag_;
};

// dev applied to dx (batch rows) on the GPU into a poisoned output of `rows` features, copied back to the host.
Tensor gpu_matmul(const lords::cuda::DeviceLinear& dev, const DeviceTensor& dx, int64_t batch, int64_t rows) {
  const DeviceTensor dy(DType::BF16, {batch, rows});  // poisoned
  lords::cuda::matmul(dev, dx, dy);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return dy.to_host();
}

// Two bf16 outputs of one shape hold the same bits; the first element that differs is named after `label`.
void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& label) {
  ASSERT_EQ(a.shape(), b.shape()) << label;
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.ptr<uint16_t>()[i], b.ptr<uint16_t>()[i]) << label << " element " << i;
}

void check_case(const Case& c, std::mt19937_64& gen) {
  const lords::QuantizedLinear q = quantize_case(c, gen);
  const lords::cuda::DeviceLinear dev(q);
  const Oracle oracle(q);
  for (int64_t batch : c.batches) {
    const Tensor x = test::random_tensor(DType::BF16, {batch, c.cols}, gen, c.x_scale);
    oracle.expect_matches(x, gpu_matmul(dev, DeviceTensor(x), batch, c.rows), "x ~ " + std::to_string(c.x_scale) + ": ");
  }
}

TEST(LordsCuda, MatmulMatchesTheCpuOracle) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  for (auto method : {lords::Method::Blockwise, lords::Method::Lords})
    for (auto cb : {lords::CodebookKind::NF, lords::CodebookKind::INT})
      for (int bits : {2, 3, 4}) {
        check_case({method, cb, bits, 32, 37, 96}, gen);
        check_case({method, cb, bits, 64, 300, 512}, gen);
        check_case({method, cb, bits, 128, 129, 1280}, gen);  // 10 column tiles split over a cluster
      }
}

TEST(LordsCuda, EveryRankWidthAndActivationRange) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  // Padded to 16, 32, 64, 64, 128, 128; the GEMMs' scale products take 2, 3, 7, 8, 16, 16 groups of 8 ranks (odd
  // counts end in a k = 8 mma); 129: the CUDA-core kernel.
  for (int rank : {16, 17, 40, 64, 100, 128, 129})
    check_case({Method::Lords, CodebookKind::NF, 4, 64, 150, 640, rank}, gen);
  for (float x_scale : {3e4f, 1e-20f})  // the fp16 operands are scaled by powers of two
    for (auto method : {Method::Blockwise, Method::Lords})
      check_case({method, CodebookKind::NF, 4, 64, 64, 384, 0, x_scale}, gen);
  check_case({Method::Blockwise, CodebookKind::INT, 3, 96, 40, 2016}, gen);  // blocks straddle tiles and slabs
  check_case({Method::Blockwise, CodebookKind::NF, 2, 256, 2100, 512}, gen);  // many row CTAs
  // One row CTA over 32 column tiles: the small-batch GEMM splits k 16 ways, past a cluster (a partial buffer), and
  // HILO_GEMM_SPLIT runs may force any count.
  for (auto method : {Method::Blockwise, Method::Lords})
    check_case({method, CodebookKind::NF, 4, 64, 64, 4096, 0, 1.0f, {11, 24}}, gen);
}

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

// Whether the current device runs the wgmma GEMMs (an sm_90a build on a 9.x device).
bool wgmma_here() {
  int device = 0;
  return cudaGetDevice(&device) == cudaSuccess && lords::cuda_detail::sm90a_device(device);
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

// Runs `steps` (layer, batch) on one stream with no synchronisation, each step reading the last step's output where
// its shape fits (else fresh activations), and checks every step against the oracle; then, for each layer, a call
// of the next layer that overwrites the input of the call before it (its rows must be this layer's columns).
void expect_back_to_back_calls_correct(const std::vector<Case>& cases,
                                       const std::vector<std::pair<int, int64_t>>& steps) {
  std::mt19937_64 gen(test::fresh_seed());
  std::vector<lords::QuantizedLinear> layers;
  for (const Case& c : cases) layers.push_back(quantize_case(c, gen));
  std::vector<lords::cuda::DeviceLinear> dev;
  std::vector<Oracle> oracles;
  for (const auto& q : layers) dev.emplace_back(q), oracles.emplace_back(q);
  const auto rows_of = [&](int layer) { return cases[static_cast<std::size_t>(layer)].rows; };
  const auto cols_of = [&](int layer) { return cases[static_cast<std::size_t>(layer)].cols; };
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  std::deque<DeviceTensor> v;  // activations; step k reads v[in[k]] and writes v[in[k] + 1]
  std::vector<std::size_t> in;
  for (const auto& [layer, batch] : steps) {
    const bool fits = !v.empty() && v.back().view().size(0) == batch && v.back().view().size(1) == cols_of(layer);
    if (!fits) v.emplace_back(test::random_tensor(DType::BF16, {batch, cols_of(layer)}, gen, 1.0f));
    in.push_back(v.size() - 1);
    v.emplace_back(DType::BF16, Shape{batch, rows_of(layer)});  // poisoned
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the uploads and poison fills ran on the default stream
  for (std::size_t k = 0; k < steps.size(); ++k)
    lords::cuda::matmul(dev[static_cast<std::size_t>(steps[k].first)], v[in[k]], v[in[k] + 1], stream);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  for (std::size_t k = 0; k < steps.size(); ++k)
    oracles[static_cast<std::size_t>(steps[k].first)].expect_matches(v[in[k]].to_host(), v[in[k] + 1].to_host(),
                                                                     "step " + std::to_string(k) + ": ");
  // Write after read: the second call overwrites the x of the first, which must have read it first.
  for (std::size_t layer = 0; layer < dev.size(); ++layer) {
    const std::size_t next = (layer + 1) % dev.size();
    const int64_t batch = steps.back().second;
    ASSERT_EQ(rows_of(static_cast<int>(next)), cols_of(static_cast<int>(layer)));
    const Tensor xh = test::random_tensor(DType::BF16, {batch, cols_of(static_cast<int>(layer))}, gen, 1.0f);
    DeviceTensor x(xh), y(DType::BF16, {batch, rows_of(static_cast<int>(layer))});
    DeviceTensor other(test::random_tensor(DType::BF16, {batch, cols_of(static_cast<int>(next))}, gen, 1.0f));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    lords::cuda::matmul(dev[layer], x, y, stream);
    lords::cuda::matmul(dev[next], other, x, stream);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    oracles[layer].expect_matches(xh, y.to_host(), "write after read: ");
  }
  cudaStreamDestroy(stream);
}

// The batch-1 GEMVs start early by programmatic dependent launch (HILO_PDL) and must still read x only after the
// previous kernel wrote it, and write y only after the previous kernel read it: row GEMV, LoRDS GEMV on mma.sync,
// LoRDS GEMV with the prepass and wgmma, a GEMM in between (layers 0, 1, 2, 3, 0, 2, 1, 3 at batch 1, layer 1 at
// batch 16 on fresh activations).
TEST(LordsCuda, BackToBackCallsSeeEachOthersOutputs) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 768;
  expect_back_to_back_calls_correct(
      {Case{Method::Blockwise, CodebookKind::NF, 4, 64, n, n}, Case{Method::Lords, CodebookKind::NF, 4, 64, n, n, 32},
       Case{Method::Lords, CodebookKind::NF, 4, 64, n, n, 49}, Case{Method::Lords, CodebookKind::INT, 3, 64, n, n, 12}},
      {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {1, 16}, {0, 1}, {2, 1}, {1, 1}, {3, 1}});
}

// The same for the GEMMs, which start early too: GEMM after GEMM, a layer of 256 columns (one split: the next call's
// kernel follows it directly) and one of 768 (split k: added in the kernel through the stream's workspace, or with
// it off a partial buffer and a second kernel between), at 16, 40 and 200 activation rows (the scale-on-wgmma GEMM)
// and 300 (the wgmma GEMM); at 16 rows also block-wise and LoRDS at padded rank 16 on a 768x768 layer (the mma.sync
// GEMM, 3 splits), between the others. (The layers form a ring, rows of the next = columns of this one, for the
// write-after-read calls.)
TEST(LordsCuda, BackToBackGemmCallsSeeEachOthersOutputs) {
  SKIP_WITHOUT_GPU();
  struct RestoreWorkspace {
    ~RestoreWorkspace() { lords::cuda_detail::force_split_workspace(-1); }
  } restore;
  const std::vector<Case> layers{Case{Method::Lords, CodebookKind::NF, 4, 64, 768, 256, 32},
                                 Case{Method::Lords, CodebookKind::NF, 4, 64, 256, 768, 49},
                                 Case{Method::Blockwise, CodebookKind::NF, 4, 64, 768, 768},
                                 Case{Method::Lords, CodebookKind::INT, 3, 64, 768, 768, 12}};
  for (int workspace : {1, 0}) {
    lords::cuda_detail::force_split_workspace(workspace);
    for (int64_t batch : {16, 40, 200, 300})
      expect_back_to_back_calls_correct(layers, {{0, batch}, {1, batch}, {2, batch}, {0, batch}, {3, batch},
                                                 {3, batch}, {2, batch}, {1, batch}, {1, batch}});
  }
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

// Non-finite activations give non-finite outputs in their own batch rows only (docs/lords.md section 8), on the row
// GEMV (one slab, and slabs over a cluster) and on the GEMMs (batch 12 on mma.sync, 40 on wgmma where the device runs
// it): the Inf/NaN take the row GEMV's rescaled path.
TEST(LordsCuda, NonFiniteActivationsStayInTheirRows) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  lords::QuantConfig cfg;
  cfg.method = lords::Method::Blockwise;
  for (int64_t rows : {2048, 48})  // 48 rows: 2 row CTAs, columns split over a cluster
    for (int64_t batch : {3, 12, 40}) {
      const lords::QuantizedLinear q = lords::quantize(test::random_tensor(DType::F32, {rows, 512}, gen, 0.05f), cfg);
      const lords::cuda::DeviceLinear dev(q);
      Tensor x = test::random_tensor(DType::BF16, {batch, 512}, gen);
      x.ptr<uint16_t>()[1 * 512 + 5] = f32_to_bf16(INFINITY);
      x.ptr<uint16_t>()[2 * 512 + 300] = f32_to_bf16(NAN);
      const DeviceTensor dx(x);
      const DeviceTensor dy(DType::BF16, {batch, rows});  // poisoned
      lords::cuda::matmul(dev, dx, dy);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const Tensor y = dy.to_host();
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < rows; ++i)
          ASSERT_EQ(std::isfinite(bf16_to_f32(y.ptr<uint16_t>()[b * rows + i])), b != 1 && b != 2)
              << "rows " << rows << " batch " << batch << " row " << b << " out " << i;
    }
  // LoRDS at one row (its own GEMV): one Inf or NaN activation makes every output non-finite.
  cfg.method = lords::Method::Lords;
  cfg.steps = 2;
  const lords::QuantizedLinear q = lords::quantize(test::random_tensor(DType::F32, {700, 1024}, gen, 0.05f), cfg);
  const lords::cuda::DeviceLinear dev(q);
  for (float bad : {INFINITY, NAN}) {
    Tensor x = test::random_tensor(DType::BF16, {1, 1024}, gen);
    x.ptr<uint16_t>()[77] = f32_to_bf16(bad);
    const DeviceTensor dx(x);
    const DeviceTensor dy(DType::BF16, {1, 700});  // poisoned
    lords::cuda::matmul(dev, dx, dy);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const Tensor y = dy.to_host();
    for (int64_t i = 0; i < 700; ++i) ASSERT_FALSE(std::isfinite(bf16_to_f32(y.ptr<uint16_t>()[i]))) << bad << " out " << i;
  }
}

TEST(LordsCuda, BadArgumentsAreNamed) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(1);
  lords::QuantConfig cfg;
  cfg.method = lords::Method::Blockwise;
  const lords::QuantizedLinear q = lords::quantize(test::random_tensor(DType::F32, {16, 64}, gen), cfg);
  const lords::cuda::DeviceLinear dev(q);
  const DeviceTensor x(DType::BF16, {2, 64}), y(DType::BF16, {2, 16}), wrong(DType::F32, {2, 64}),
      short_y(DType::BF16, {2, 15});
  auto expect = [&](const TensorView& xv, const TensorView& yv, const char* needle) {
    try {
      lords::cuda::matmul(dev, xv, yv);
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect(wrong, y, "x has dtype F32");
  expect(x, short_y, "y");
  const Tensor host = test::random_tensor(DType::BF16, {2, 64}, gen);
  expect(host, y, "x is on cpu");
  // The GEMMs read x with 16-byte copies (the wgmma GEMM through a TMA tensor map, which needs it): views 8 bytes
  // into an allocation are refused by name.
  const DeviceTensor room(DType::BF16, {3, 64});
  unsigned char* off = static_cast<unsigned char*>(room.view().data()) + 8;
  const TensorView x_off(off, DType::BF16, {2, 64}, {}, Device{DeviceKind::CUDA, 0});
  const TensorView y_off(off, DType::BF16, {2, 16}, {}, Device{DeviceKind::CUDA, 0});
  expect(x_off, y, "x must be 16-byte aligned");
  expect(x, y_off, "y must be 16-byte aligned");
  lords::cuda::matmul(dev, x, y);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Malformed or oversized layers are refused by name before anything touches the device (runs without a GPU too).
TEST(LordsCuda, MalformedAndOversizedLayersAreRefused) {
  std::mt19937_64 gen(test::fresh_seed());
  lords::QuantConfig cfg;
  cfg.method = lords::Method::Blockwise;
  const lords::QuantizedLinear good = lords::quantize(test::random_tensor(DType::F32, {16, 64}, gen), cfg);
  auto expect = [](const lords::QuantizedLinear& q, const char* needle) {
    try {
      const lords::cuda::DeviceLinear dev(q);
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  lords::QuantizedLinear q = good;
  q.scales.pop_back();
  expect(q, "scales hold 15 values, expected 16");
  q = good;
  q.qweight.resize(10);
  expect(q, "qweight holds 10 bytes");
  q = good;  // 2^25 columns: past the kernels' 32-bit column indices
  q.rows = 1;
  q.cols = int64_t{1} << 25;
  q.qweight.assign(static_cast<std::size_t>(q.row_bytes()), 0);
  q.scales.assign(static_cast<std::size_t>(q.cols / q.block), 0);
  expect(q, "is too large");
}

}  // namespace
}  // namespace hilo
