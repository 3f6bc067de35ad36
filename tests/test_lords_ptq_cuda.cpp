// The GPU LoRDS refinement (quantize with QuantConfig::device) against the CPU path, and its GEMM against plain
// loops. Fresh seeds; device outputs poisoned before each launch. What must match and how closely:
//  - the scale product S = B A: bit-identical to the CPU's canonical fma chain (no split);
//  - the gradient products (split or not): within the f32 bound K * 2^-24 * sum |p q| of an f64 reference;
//  - the first refinement step (same initial factors, so the same codes and gradient): the error within 1e-12;
//  - after many steps the GPU and CPU trajectories separate by rounding (code flips), so the final error must be
//    within 3% of the CPU's and below the initial one; the stored codes must be nearest codes for the stored scales.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cuda_test_util.hpp"
#include "hilo/error.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_data.hpp"
#include "lords/codes.hpp"
#include "lords/cuda/dense_gemm.hpp"

namespace hilo {
namespace {
using lords::cuda_detail::GemmOperand;
using lords::cuda_detail::GemmShape;
using lords::cuda_detail::Major;

std::vector<float> uniform(int64_t n, std::mt19937_64& gen) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(const std::vector<float>& host) {
    EXPECT_EQ(cudaMalloc(&p, host.size() * 4 + 4), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceFloats() { cudaFree(p); }
};

// Element (i, k) of a host operand stored in `major` order with leading dimension ld.
float at(const std::vector<float>& v, Major major, int64_t ld, int64_t i, int64_t k) {
  return major == Major::K ? v[i * ld + k] : v[k * ld + i];
}

void check_gemm(Major pm, Major qm, GemmShape s, int splits, bool exact, std::mt19937_64& gen) {
  const int64_t ldp = pm == Major::K ? s.k : s.m, ldq = qm == Major::K ? s.k : s.n, ldc = s.n + 3;
  const std::vector<float> p = uniform(s.m * s.k, gen), q = uniform(s.n * s.k, gen);
  const DeviceFloats dp(p), dq(q);
  std::vector<float> c(static_cast<std::size_t>(s.m * ldc));
  DeviceFloats dc(c), ws(std::vector<float>(static_cast<std::size_t>(splits * s.m * s.n)));
  ASSERT_EQ(cudaMemset(dc.p, 0x5A, c.size() * 4), cudaSuccess);  // poison
  ASSERT_EQ(lords::cuda_detail::launch_dense_gemm({dp.p, ldp, pm}, {dq.p, ldq, qm}, s, dc.p, ldc, splits, ws.p, nullptr),
            0);
  ASSERT_EQ(cudaMemcpy(c.data(), dc.p, c.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  int64_t bad = 0;
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      float chain = 0.0f;
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < s.k; ++k) {
        const float a = at(p, pm, ldp, i, k), b = at(q, qm, ldq, j, k);
        chain = std::fma(a, b, chain);
        ref += double(a) * b;
        mag += std::abs(double(a) * b);
      }
      const float got = c[i * ldc + j];
      const bool ok = exact ? got == chain : std::abs(got - ref) <= s.k * std::ldexp(1.0, -24) * mag;
      if (!ok && ++bad <= 3) ADD_FAILURE() << "C[" << i << "][" << j << "] = " << got << ", chain " << chain << ", f64 " << ref;
    }
  EXPECT_EQ(bad, 0) << "m " << s.m << " n " << s.n << " k " << s.k << " splits " << splits;
}

TEST(LordsCudaPtq, DenseGemmMatchesPlainLoops) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(test::fresh_seed());
  // S = B A: the canonical chain exactly (k = rank, not a multiple of the 16-wide chunks).
  check_gemm(Major::K, Major::I, {130, 200, 49}, 1, true, gen);
  check_gemm(Major::K, Major::I, {64, 64, 16}, 1, true, gen);
  // G A^T and B^T G, whole and split over k (uneven last split).
  for (int splits : {1, 3}) {
    check_gemm(Major::K, Major::K, {70, 49, 1000}, splits, false, gen);
    check_gemm(Major::I, Major::I, {49, 130, 700}, splits, false, gen);
  }
}

std::vector<float> synthetic(int64_t rows, int64_t cols, uint64_t seed) {
  lords::WeightSynthConfig c;
  c.rows = rows, c.cols = cols, c.seed = seed;
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  lords::synthetic_weight(c, w.data());
  return w;
}

// Every stored code is a nearest code of W / S for the stored factors (S in f64: 1e-5 slack for its rounding).
void expect_nearest_codes(const std::vector<float>& w, const lords::QuantizedLinear& q) {
  int64_t bad = 0;
  std::vector<uint8_t> codes(static_cast<std::size_t>(q.cols));
  for (int64_t i = 0; i < q.rows; ++i) {
    lords::detail::unpack_row(q.qweight.data() + i * q.row_bytes(), q.cols, q.codebook.bits, codes.data());
    for (int64_t c = 0; c < q.cols; ++c) {
      const int code = codes[c];
      double s = 0;
      for (int k = 0; k < q.rank; ++k) s += double(bf16_to_f32(q.b[i * q.rank + k])) * bf16_to_f32(q.a[k * q.cols + c]);
      if (s == 0) continue;
      const double x = w[i * q.cols + c] / s;
      double best = INFINITY;
      for (float v : q.codebook.values) best = std::min(best, std::abs(x - v));
      if (std::abs(x - q.codebook.values[code]) > best + 1e-5 && ++bad <= 3)
        ADD_FAILURE() << "code of [" << i << ", " << c << "] is " << code << " for x = " << x;
    }
  }
  EXPECT_EQ(bad, 0);
}

struct PtqCase {
  int64_t rows, cols;
  int bits, block, rank;
  bool weighted;
};

void check_against_cpu(const PtqCase& pc, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << pc.rows << "x" << pc.cols << " bits " << pc.bits << " rank " << pc.rank
                                  << (pc.weighted ? " weighted" : ""));
  const std::vector<float> w = synthetic(pc.rows, pc.cols, seed);
  const TensorView wv(const_cast<float*>(w.data()), DType::F32, {pc.rows, pc.cols});
  lords::QuantConfig cfg;
  cfg.bits = pc.bits, cfg.block = pc.block, cfg.rank = pc.rank, cfg.steps = 40, cfg.seed = seed;
  if (pc.weighted) {
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<float> d(0.1f, 3.0f);
    for (int64_t c = 0; c < pc.cols; ++c) cfg.act_sq.push_back(d(gen));
  }
  lords::QuantReport cpu_report, gpu_report, again_report;
  const lords::QuantizedLinear cpu = lords::quantize(wv, cfg, &cpu_report);
  cfg.device = 0;
  const lords::QuantizedLinear gpu = lords::quantize(wv, cfg, &gpu_report);
  const lords::QuantizedLinear again = lords::quantize(wv, cfg, &again_report);
  ASSERT_EQ(gpu_report.trace.size(), cpu_report.trace.size());
  EXPECT_NEAR(gpu_report.trace[0], cpu_report.trace[0], 1e-12 * cpu_report.trace[0]);
  EXPECT_NEAR(gpu_report.trace[1], cpu_report.trace[1], 1e-3 * cpu_report.trace[1]);
  EXPECT_LE(std::abs(gpu_report.rel_error - cpu_report.rel_error), 0.03 * cpu_report.rel_error)
      << "gpu " << gpu_report.rel_error << " cpu " << cpu_report.rel_error;
  EXPECT_LT(gpu_report.trace.back(), gpu_report.trace.front());
  EXPECT_EQ(gpu.rank, cpu.rank);
  EXPECT_EQ(gpu.qweight.size(), cpu.qweight.size());
  EXPECT_EQ(gpu.b.size(), cpu.b.size());
  EXPECT_EQ(gpu.a.size(), cpu.a.size());
  expect_nearest_codes(w, gpu);
  // Deterministic: the same call gives the same bits.
  EXPECT_EQ(again.qweight, gpu.qweight);
  EXPECT_EQ(again.b, gpu.b);
  EXPECT_EQ(again.a, gpu.a);
  EXPECT_EQ(again_report.trace, gpu_report.trace);
}

TEST(LordsCudaPtq, RefinementFollowsTheCpu) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = test::fresh_seed();
  check_against_cpu({256, 512, 4, 64, 0, false}, seed);
  check_against_cpu({200, 320, 3, 64, 70, true}, seed + 1);  // rows off the tiles, rank above one 64-wide tile
  check_against_cpu({96, 1024, 2, 128, 0, false}, seed + 2);
}

TEST(LordsCudaPtq, RefusesWhatItCannotRun) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 gen(1);
  const Tensor w = test::random_tensor(DType::F32, {64, 128}, gen);
  lords::QuantConfig cfg;
  cfg.device = 0;
  cfg.optimizer = lords::Optimizer::ALS;
  EXPECT_THROW(
      try { lords::quantize(w, cfg); } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("als runs on the CPU only"), std::string::npos) << e.what();
        throw;
      },
      Error);
}

}  // namespace
}  // namespace hilo
