// The LoRDS / block-wise CUDA matmul against the CPU oracle (lords_cuda_test_util.hpp) (dequantise, f64 dot products) on fresh random layers:
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
// This file: every path through the public call, back-to-back calls, non-finite activations and bad input; the
// batch GEMMs' own tests are in test_lords_cuda_gemm.cpp, the GEMVs' in test_lords_cuda_gemv.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "cuda_test_util.hpp"
#include "hilo/error.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_cuda.hpp"
#include "lords/cuda/split_workspace.hpp"
#include "lords_cuda_test_util.hpp"

namespace hilo::lords_test {  // (the shared helpers: lords_cuda_test_util.hpp)
namespace {
using lords::CodebookKind;
using lords::Method;
using test::DeviceTensor;

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
}  // namespace hilo::lords_test
