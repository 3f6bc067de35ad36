// quantize(): block-wise absmax and LoRDS (SVD initialisation from the block scales, then refinement), and the
// exact dequantisation both share. What is stored (bf16 scales or factors, packed codes) is what the error is
// measured on: codes are always reassigned against the stored, bf16-rounded scales.
#include <Eigen/SVD>
#include <chrono>
#include <cmath>
#include <random>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "hilo/cuda.hpp"
#include "kernels.hpp"
#include "matrix.hpp"
#include "refine_cuda.hpp"

namespace hilo::lords {
namespace {
using namespace detail;

void check_config(const QuantConfig& cfg, int64_t rows, int64_t cols) {
  HILO_CHECK(cfg.bits >= 2 && cfg.bits <= 4, "quantize: bits = {} is not one of 2, 3, 4", cfg.bits);
  HILO_CHECK(cfg.block >= 32 && cfg.block <= 256 && cfg.block % 32 == 0,
             "quantize: block = {} must be one of 32, 64, ..., 256 (a multiple of 32)", cfg.block);
  HILO_CHECK(cols % cfg.block == 0,
             "quantize: block = {} does not divide the input dimension {} (hilo refuses rather than pads)", cfg.block,
             cols);
  HILO_CHECK(cfg.rank >= 0, "quantize: rank = {} must be >= 0 (0: parity with the block size)", cfg.rank);
  HILO_CHECK(cfg.rank <= std::min(rows, cols), "quantize: rank = {} exceeds min(rows, cols) = {}", cfg.rank,
             std::min(rows, cols));
  HILO_CHECK(cfg.steps >= -1, "quantize: steps = {} must be >= 0 (or -1 for the optimizer's default)", cfg.steps);
  HILO_CHECK(std::isfinite(cfg.learning_rate) && cfg.learning_rate > 0, "quantize: learning_rate = {} must be > 0",
             cfg.learning_rate);
  check_device(cfg);
  if (!cfg.act_sq.empty()) {
    HILO_CHECK(static_cast<int64_t>(cfg.act_sq.size()) == cols,
               "quantize: act_sq has {} entries, the input dimension is {}", cfg.act_sq.size(), cols);
    for (std::size_t c = 0; c < cfg.act_sq.size(); ++c)
      HILO_CHECK(std::isfinite(cfg.act_sq[c]) && cfg.act_sq[c] >= 0,
                 "quantize: act_sq[{}] = {} must be finite and >= 0", c, cfg.act_sq[c]);
  }
}

// Per-block absmax [rows, cols / block], f32.
Mat block_absmax(const Mat& W, int block, int threads) {
  const int64_t nb = W.cols() / block;
  Mat s(W.rows(), nb);
  parallel_for(W.rows(), threads, [&](int64_t i) {
    for (int64_t j = 0; j < nb; ++j) s(i, j) = W.row(i).segment(j * block, block).cwiseAbs().maxCoeff();
  });
  return s;
}

std::vector<uint16_t> to_bf16(const Mat& m) {
  std::vector<uint16_t> out(static_cast<std::size_t>(m.size()));
  for (int64_t i = 0; i < m.size(); ++i) out[i] = f32_to_bf16(m.data()[i]);
  return out;
}

Mat from_bf16(const std::vector<uint16_t>& v, int64_t rows, int64_t cols) {
  Mat m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = bf16_to_f32(v[i]);
  return m;
}

void pack_codes(const std::vector<uint8_t>& codes, QuantizedLinear& q, int threads) {
  q.qweight.assign(static_cast<std::size_t>(q.rows * q.row_bytes()), 0);
  parallel_for(q.rows, threads, [&](int64_t i) {
    pack_row(codes.data() + i * q.cols, q.cols, q.codebook.bits, q.qweight.data() + i * q.row_bytes());
  });
}

void quantize_blockwise(const Mat& W, const QuantConfig& cfg, int threads, QuantizedLinear& q) {
  Mat s = block_absmax(W, cfg.block, threads);
  round_to_bf16(s);  // the stored scale; a rounded-down scale only saturates codes at +-1
  q.scales = to_bf16(s);
  const CodeAssigner assign(q.codebook);
  std::vector<uint8_t> codes(static_cast<std::size_t>(W.size()));
  parallel_for(W.rows(), threads, [&](int64_t i) {
    for (int64_t j = 0; j < s.cols(); ++j)
      assign.assign_scaled(W.data() + i * W.cols() + j * cfg.block, s(i, j), cfg.block,
                           codes.data() + i * W.cols() + j * cfg.block);
  });
  pack_codes(codes, q, threads);
}

// Rank-r factors of the expanded block scales. With E [nb, cols] the 0/1 block-membership matrix, E Eᵀ = block·I,
// so expand(Sb) = (√block·Sb)(E/√block) and the SVD of the small [rows, nb] matrix √block·Sb gives the SVD of the
// full one. Components beyond rank(Sb) (a rank override above nb, or zero singular values) start as small seeded
// random vectors so that the refinement can use them.
Factors svd_init(const Mat& W, const QuantConfig& cfg, int rank, int threads) {
  const Mat sb = block_absmax(W, cfg.block, threads);
  const int64_t rows = W.rows(), cols = W.cols();
  const float root_block = std::sqrt(static_cast<float>(cfg.block));
  Eigen::MatrixXf scaled = sb * root_block;
  Eigen::BDCSVD<Eigen::MatrixXf> svd(scaled, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec& sigma = svd.singularValues();
  Factors f{Mat::Zero(rows, rank), Mat::Zero(rank, cols)};
  std::mt19937_64 rng(cfg.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float tiny = sigma.size() ? sigma[0] * 1e-6f : 0.0f;
  const float small = sigma.size() ? 1e-3f * std::sqrt(sigma[0]) / std::sqrt(static_cast<float>(rows)) : 1e-3f;
  for (int k = 0; k < rank; ++k) {
    if (k < sigma.size() && sigma[k] > tiny) {
      const float root = std::sqrt(sigma[k]);
      f.B.col(k) = svd.matrixU().col(k) * root;
      for (int64_t c = 0; c < cols; ++c) f.A(k, c) = root * svd.matrixV()(c / cfg.block, k) / root_block;
    } else {
      for (int64_t i = 0; i < rows; ++i) f.B(i, k) = small * normal(rng);
      for (int64_t c = 0; c < cols; ++c) f.A(k, c) = small * normal(rng);
    }
  }
  return f;
}

// Fills q; returns the relative error of what was stored (computed from the final S and codes, which is exactly
// what dequantize() rebuilds) when `report` is given.
void quantize_lords(const Mat& W, const QuantConfig& cfg, int threads, QuantizedLinear& q, QuantReport* report) {
  Factors f = svd_init(W, cfg, q.rank, threads);
  Vec h = cfg.act_sq.empty() ? Vec() : Eigen::Map<const Vec>(cfg.act_sq.data(), W.cols());
  QuantReport local;
  QuantReport* rep = report ? report : &local;
  const int steps = cfg.steps >= 0 ? cfg.steps : (cfg.optimizer == Optimizer::ALS ? 20 : 500);
  if (cfg.device >= 0)
    refine_adam_on_device(W, h, q.codebook, f, steps, cfg.learning_rate, cfg.device, rep, cfg.on_step);
  else if (cfg.optimizer == Optimizer::ALS)
    refine_als(W, h, q.codebook, f, steps, threads, rep, cfg.on_step);
  else
    refine_adam(W, h, q.codebook, f, steps, cfg.learning_rate, threads, rep, cfg.on_step);
  rep->steps = steps;
  round_to_bf16(f.B);
  round_to_bf16(f.A);
  q.b = to_bf16(f.B);
  q.a = to_bf16(f.A);
  // Codes for the stored factors, with the same scale kernel dequantize() uses: S is reproduced exactly.
  const Mat S = scale_matrix(f.B, f.A, threads);
  std::vector<uint8_t> codes;
  assign_codes(W, S, CodeAssigner(q.codebook), codes, threads);
  pack_codes(codes, q, threads);
  if (report)
    report->rel_error = relative_frobenius_rows(W, threads, [&](int64_t i, float* row) {
      for (int64_t c = 0; c < W.cols(); ++c) row[c] = q.codebook.values[codes[i * W.cols() + c]] * S(i, c);
    });
}

}  // namespace

namespace detail {
void check_device(const QuantConfig& cfg) {
  HILO_CHECK(cfg.device >= -1, "quantize: device = {} must be -1 (the CPU) or a CUDA device index", cfg.device);
  if (cfg.device < 0) return;
  const int devices = cuda::device_count();
  HILO_CHECK(cfg.device < devices, "quantize: device = {} does not exist ({} CUDA devices; built with CUDA: {})",
             cfg.device, devices, cuda::built_with_cuda() ? "yes" : "no");
  HILO_CHECK(cfg.method == Method::Blockwise || cfg.optimizer == Optimizer::Adam,
             "quantize: optimizer = als runs on the CPU only; use adam with a CUDA device");
}
}  // namespace detail

int parity_rank(int64_t rows, int64_t cols, int block) {
  HILO_CHECK(rows > 0 && cols > 0 && block > 0, "parity_rank: rows = {}, cols = {}, block = {} must be positive", rows,
             cols, block);
  const int64_t r = rows * cols / (static_cast<int64_t>(block) * (rows + cols));
  return static_cast<int>(std::max<int64_t>(1, r));
}

double QuantizedLinear::bits_per_weight() const {
  const double stored_bits = 8.0 * static_cast<double>(qweight.size()) +
                             16.0 * static_cast<double>(scales.size() + b.size() + a.size());
  return stored_bits / static_cast<double>(rows * cols);
}

namespace detail {
QuantizedLinear quantize_impl(const TensorView& w, const QuantConfig& cfg, QuantReport* report) {
  const auto start = std::chrono::steady_clock::now();
  const Mat W = to_matrix(w, "quantize");
  check_config(cfg, W.rows(), W.cols());
  const int threads = resolve_threads(cfg.threads);
  Eigen::setNbThreads(1);  // parallelism is hilo's own (fixed blocks): Eigen's blocking would follow its threads
  QuantizedLinear q;
  q.method = cfg.method;
  q.codebook = make_codebook(cfg.codebook, cfg.bits);
  q.block = cfg.block;
  q.rows = W.rows();
  q.cols = W.cols();
  if (cfg.method == Method::Blockwise) {
    quantize_blockwise(W, cfg, threads, q);
  } else {
    q.rank = cfg.rank > 0 ? cfg.rank : parity_rank(q.rows, q.cols, cfg.block);
    quantize_lords(W, cfg, threads, q, report);
  }
  if (report) {
    if (cfg.method == Method::Lords && !report->trace.empty()) report->init_rel_error = report->trace.front();
    if (cfg.method == Method::Blockwise)
      report->rel_error =
          relative_frobenius_rows(W, threads, [&](int64_t i, float* row) { dequantize_blockwise_row(q, i, row); });
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return q;
}
}  // namespace detail

namespace detail {
void dequantize_blockwise_row(const QuantizedLinear& q, int64_t i, float* out) {
  std::vector<uint8_t> codes(static_cast<std::size_t>(q.cols));
  unpack_row(q.qweight.data() + i * q.row_bytes(), q.cols, q.codebook.bits, codes.data());
  const int64_t nb = q.cols / q.block;
  for (int64_t c = 0; c < q.cols; ++c) out[c] = q.codebook.values[codes[c]] * bf16_to_f32(q.scales[i * nb + c / q.block]);
}

void dequantize_impl(const QuantizedLinear& q, float* out, int threads) {
  threads = resolve_threads(threads);
  if (q.method == Method::Blockwise) {
    parallel_for(q.rows, threads, [&](int64_t i) { dequantize_blockwise_row(q, i, out + i * q.cols); });
    return;
  }
  const Mat B = from_bf16(q.b, q.rows, q.rank), A = from_bf16(q.a, q.rank, q.cols);
  const Mat S = scale_matrix(B, A, threads);  // the canonical S (same kernel and order as quantize and matmul)
  parallel_for(q.rows, threads, [&](int64_t i) {
    std::vector<uint8_t> codes(static_cast<std::size_t>(q.cols));
    unpack_row(q.qweight.data() + i * q.row_bytes(), q.cols, q.codebook.bits, codes.data());
    for (int64_t c = 0; c < q.cols; ++c) out[i * q.cols + c] = q.codebook.values[codes[c]] * S(i, c);
  });
}
double relative_error_impl(const TensorView& w, const QuantizedLinear& q) {
  const Mat W = to_matrix(w, "relative_error");
  HILO_CHECK(W.rows() == q.rows && W.cols() == q.cols, "relative_error: w is [{}, {}], the quantized layer [{}, {}]",
             W.rows(), W.cols(), q.rows, q.cols);
  Mat d(q.rows, q.cols);
  dequantize_impl(q, d.data(), 0);
  return relative_frobenius(W, d);
}
}  // namespace detail

Method parse_method(std::string_view name) {
  if (name == "lords") return Method::Lords;
  if (name == "blockwise") return Method::Blockwise;
  fail("method '{}' is not one of lords, blockwise", name);
}

Optimizer parse_optimizer(std::string_view name) {
  if (name == "als") return Optimizer::ALS;
  if (name == "adam") return Optimizer::Adam;
  fail("optimizer '{}' is not one of als, adam", name);
}

std::string to_string(Method m) { return m == Method::Lords ? "lords" : "blockwise"; }
std::string to_string(Optimizer o) { return o == Optimizer::ALS ? "als" : "adam"; }

}  // namespace hilo::lords
