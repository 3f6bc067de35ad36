// LoRDS refinement with the codes fixed between scale updates:
//   ALS:  B row by row, then A column by column, each an exact (ridge-stabilised) least-squares solve;
//   Adam: the paper's gradient step on ||(W - Q . BA) diag(h)^1/2||^2.
// Every step reassigns the codes for the current scales first; the best factors seen are kept.
#include <Eigen/Cholesky>
#include <chrono>
#include <cmath>

#include "../core/parallel.hpp"
#include "matrix.hpp"
#include "refine_cuda.hpp"

namespace hilo::lords::detail {
namespace {

struct Step {
  Mat S;
  std::vector<uint8_t> codes;
  double rel = 0;
};

// Scales, codes and the weighted relative error of the current factors.
Step evaluate(const Mat& W, const Vec& h, const Codebook& cb, const CodeAssigner& assign, const Factors& f,
              int threads) {
  Step s;
  s.S = scale_matrix(f.B, f.A, threads);
  assign_codes(W, s.S, assign, s.codes, threads);
  s.rel = error_sums(W, s.S, s.codes, cb, h, threads).relative();
  return s;
}

Mat decoded(const std::vector<uint8_t>& codes, const Codebook& cb, int64_t rows, int64_t cols) {
  Mat v(rows, cols);
  for (int64_t i = 0; i < v.size(); ++i) v.data()[i] = cb.values[codes[i]];
  return v;
}

// Adam's step size for one factor: lr relative to the factor's initial RMS.
float adam_step_size(const Mat& m, float lr) {
  return lr * static_cast<float>(std::sqrt(m.squaredNorm() / std::max<double>(1, m.size())));
}

// Solves (G + ridge) x = rhs for a symmetric positive semi-definite G.
Vec solve_spd(Eigen::MatrixXf& G, const Vec& rhs) {
  const float ridge = 1e-6f * G.trace() / static_cast<float>(G.rows()) + 1e-30f;
  G.diagonal().array() += ridge;
  return G.ldlt().solve(rhs);
}

}  // namespace

void refine_als(const Mat& W, const Vec& h, const Codebook& cb, Factors& f, int steps, int threads,
                QuantReport* report, const std::function<void(double)>& on_step) {
  const CodeAssigner assign(cb);
  const int64_t rows = W.rows(), cols = W.cols();
  const int r = static_cast<int>(f.B.cols());
  Vec sqrt_h = h.size() ? Vec(h.array().sqrt()) : Vec::Ones(cols);
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> Wc = W;  // columns contiguous
  Factors best = f;
  double best_rel = INFINITY;
  for (int step = 0; step <= steps; ++step) {
    const Step s = evaluate(W, h, cb, assign, f, threads);
    if (report) report->trace.push_back(s.rel);
    if (s.rel < best_rel) best_rel = s.rel, best = f;
    if (step == steps) break;
    if (on_step) on_step(static_cast<double>(step) / steps);
    const Mat V = decoded(s.codes, cb, rows, cols);
    // B: row i minimises || (W_i - B_i (A . V_i)) sqrt(h) ||.
    parallel_for(rows, threads, [&](int64_t i) {
      const Eigen::RowVectorXf weights = (V.row(i).array() * sqrt_h.transpose().array()).matrix();
      const Mat M = f.A.array().rowwise() * weights.array();  // [r, cols]
      Eigen::MatrixXf G = M * M.transpose();
      const Vec rhs = M * (W.row(i).array() * sqrt_h.transpose().array()).matrix().transpose();
      f.B.row(i) = solve_spd(G, rhs).transpose();
    });
    // A: column c minimises || W_c - (B . V_c) A_c || (a per-column weight h_c does not change the solution).
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> Vc = V;
    Mat A_new(r, cols);
    parallel_for(cols, threads, [&](int64_t c) {
      const Eigen::MatrixXf N = f.B.array().colwise() * Vc.col(c).array();  // [rows, r]
      Eigen::MatrixXf G = N.transpose() * N;
      const Vec rhs = N.transpose() * Wc.col(c);
      A_new.col(c) = solve_spd(G, rhs);
    });
    f.A = A_new;
  }
  f = best;
}

void refine_adam(const Mat& W, const Vec& h, const Codebook& cb, Factors& f, int steps, float lr, int threads,
                 QuantReport* report, const std::function<void(double)>& on_step) {
  const CodeAssigner assign(cb);
  const int64_t rows = W.rows(), cols = W.cols();
  const float lr_b = adam_step_size(f.B, lr), lr_a = adam_step_size(f.A, lr);
  constexpr float beta1 = 0.9f, beta2 = 0.999f;
  Mat mB = Mat::Zero(f.B.rows(), f.B.cols()), vB = mB, mA = Mat::Zero(f.A.rows(), f.A.cols()), vA = mA;
  const Vec hw = h.size() ? h : Vec::Ones(cols);
  double ref = 0;  // sum h W^2, f64 in a fixed order
  for (int64_t i = 0; i < rows; ++i) ref += (W.row(i).array().square() * hw.transpose().array()).cast<double>().sum();
  Factors best = f;
  double best_rel = INFINITY;
  Mat G(rows, cols);
  std::vector<uint8_t> codes(static_cast<std::size_t>(cols) * rows);
  std::vector<double> row_err(rows);
  for (int step = 0; step <= steps; ++step) {
    // One pass per row: codes for the current S, the weighted error, and dL/dS = -2 h (W - V.S) . V.
    const Mat S = scale_matrix(f.B, f.A, threads);
    parallel_for(rows, threads, [&](int64_t i) {
      uint8_t* ci = codes.data() + i * cols;
      assign.assign_ratio(W.data() + i * cols, S.data() + i * cols, cols, ci);
      double e2 = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const float v = cb.values[ci[c]];
        const float e = W(i, c) - v * S(i, c);
        e2 += static_cast<double>(hw[c]) * e * e;
        G(i, c) = -2.0f * e * v * hw[c];
      }
      row_err[i] = e2;
    });
    double err = 0;
    for (double e : row_err) err += e;
    const double rel = ref > 0 ? std::sqrt(err / ref) : 0.0;
    if (report) report->trace.push_back(rel);
    if (rel < best_rel) best_rel = rel, best = f;
    if (step == steps) break;
    if (on_step) on_step(static_cast<double>(step) / steps);
    const Mat gB = times_transpose(G, f.A, threads);
    const Mat gA = transpose_times(f.B, G, threads);
    const float t = static_cast<float>(step + 1);
    const float c1 = 1.0f - std::pow(beta1, t), c2 = 1.0f - std::pow(beta2, t);
    auto update = [&](Mat& p, Mat& m, Mat& v, const Mat& g, float step_size) {
      m = beta1 * m + (1 - beta1) * g;
      v = beta2 * v + (1 - beta2) * g.cwiseProduct(g);
      const float floor = 1e-8f * std::sqrt(v.maxCoeff() / c2) + 1e-30f;  // eps relative to the gradient scale
      p.array() -= step_size * (m.array() / c1) / ((v.array() / c2).sqrt() + floor);
    };
    update(f.B, mB, vB, gB, lr_b);
    update(f.A, mA, vA, gA, lr_a);
  }
  f = best;
}

void refine_adam_on_device(const Mat& W, const Vec& h, const Codebook& cb, Factors& f, int steps, float lr, int device,
                           QuantReport* report, const std::function<void(double)>& on_step) {
  AdamProblem p;
  p.w = W.data();
  p.rows = W.rows(), p.cols = W.cols();
  p.h = h.size() ? h.data() : nullptr;
  p.codebook = &cb;
  p.b = f.B.data(), p.a = f.A.data();
  p.rank = static_cast<int>(f.B.cols());
  p.steps = steps;
  p.lr_b = adam_step_size(f.B, lr), p.lr_a = adam_step_size(f.A, lr);
  p.device = device;
  refine_adam_cuda(p, report, on_step);
}

}  // namespace hilo::lords::detail
