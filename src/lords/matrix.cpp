#include "matrix.hpp"

#include <algorithm>
#include <cmath>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "kernels.hpp"

namespace hilo::lords::detail {

Mat to_matrix(const TensorView& w, const char* where) {
  expect_host_contiguous(w, where, "w");
  expect_ndim(w, where, "w", 2);
  expect_dtype(w, where, "w", {DType::F32, DType::BF16, DType::F16});
  Mat m(w.size(0), w.size(1));
  convert(w.data(), w.dtype(), m.data(), DType::F32, static_cast<std::size_t>(w.numel()));
  for (int64_t i = 0; i < m.size(); ++i)
    HILO_CHECK(std::isfinite(m.data()[i]), "{}: w holds a non-finite value ({}) at [{}, {}]", where, m.data()[i],
               i / m.cols(), i % m.cols());
  return m;
}

Mat scale_matrix(const Mat& B, const Mat& A, int threads) {
  Mat S(B.rows(), A.cols());
  const ScaleRowFn row = kernels().scale_row;
  const int rank = static_cast<int>(B.cols());
  const int64_t cols = A.cols();
  std::vector<float> panels(static_cast<std::size_t>(A.size()));
  pack_panels(A.data(), rank, cols, panels.data());
  const ScaleRows4Fn rows4 = kernels().scale_rows4;
  parallel_for((B.rows() + 3) / 4, threads, [&](int64_t t) {
    const int64_t i0 = 4 * t, nr = std::min<int64_t>(4, B.rows() - i0);
    for (int64_t c0 = 0; c0 < cols; c0 += kScaleChunk) {
      const int64_t n = std::min(kScaleChunk, cols - c0);
      const float* panel = panel_at(panels.data(), rank, c0);
      if (nr == 4)
        rows4(B.data() + i0 * rank, rank, panel, rank, n, n, S.data() + i0 * cols + c0, cols);
      else
        for (int64_t i = i0; i < i0 + nr; ++i) row(B.data() + i * rank, panel, rank, n, n, S.data() + i * cols + c0);
    }
  });
  return S;
}

void assign_codes(const Mat& W, const Mat& S, const CodeAssigner& assign, std::vector<uint8_t>& codes, int threads) {
  codes.resize(static_cast<std::size_t>(W.size()));
  parallel_for(W.rows(), threads, [&](int64_t i) {
    assign.assign_ratio(W.data() + i * W.cols(), S.data() + i * S.cols(), W.cols(), codes.data() + i * W.cols());
  });
}

ErrorSums error_sums(const Mat& W, const Mat& S, const std::vector<uint8_t>& codes, const Codebook& cb, const Vec& h,
                     int threads) {
  std::vector<double> err(W.rows()), ref(W.rows());
  parallel_for(W.rows(), threads, [&](int64_t i) {
    double e = 0, r = 0;
    for (int64_t c = 0; c < W.cols(); ++c) {
      const double hw = h.size() ? h[c] : 1.0;
      const double w = W(i, c), d = w - static_cast<double>(cb.values[codes[i * W.cols() + c]]) * S(i, c);
      e += hw * d * d;
      r += hw * w * w;
    }
    err[i] = e, ref[i] = r;
  });
  ErrorSums s;
  for (int64_t i = 0; i < W.rows(); ++i) s.err += err[i], s.ref += ref[i];  // fixed order: deterministic
  return s;
}

Mat times_transpose(const Mat& G, const Mat& A, int threads) {
  constexpr int64_t kRows = 64;
  Mat out(G.rows(), A.rows());
  parallel_for((G.rows() + kRows - 1) / kRows, threads, [&](int64_t t) {
    const int64_t r0 = t * kRows, n = std::min(kRows, G.rows() - r0);
    out.middleRows(r0, n).noalias() = G.middleRows(r0, n) * A.transpose();
  });
  return out;
}

Mat transpose_times(const Mat& B, const Mat& G, int threads) {
  constexpr int64_t kCols = 256;
  Mat out(B.cols(), G.cols());
  parallel_for((G.cols() + kCols - 1) / kCols, threads, [&](int64_t t) {
    const int64_t c0 = t * kCols, n = std::min(kCols, G.cols() - c0);
    out.middleCols(c0, n).noalias() = B.transpose() * G.middleCols(c0, n);
  });
  return out;
}

double relative_frobenius(const Mat& W, const Mat& D) {
  return relative_frobenius_rows(W, 0, [&](int64_t i, float* row) {
    std::copy_n(D.data() + i * D.cols(), D.cols(), row);
  });
}

double relative_frobenius_rows(const Mat& W, int threads, const std::function<void(int64_t, float*)>& row) {
  std::vector<double> err(W.rows()), ref(W.rows());
  parallel_for(W.rows(), threads, [&](int64_t i) {
    std::vector<float> d(static_cast<std::size_t>(W.cols()));
    row(i, d.data());
    double e = 0, r = 0;
    for (int64_t c = 0; c < W.cols(); ++c) {
      const double w = W(i, c), diff = w - d[c];
      e += diff * diff, r += w * w;
    }
    err[i] = e, ref[i] = r;
  });
  double e = 0, r = 0;
  for (int64_t i = 0; i < W.rows(); ++i) e += err[i], r += ref[i];
  return r > 0 ? std::sqrt(e / r) : 0.0;
}

void round_to_bf16(Mat& m) {
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = bf16_to_f32(f32_to_bf16(m.data()[i]));
}

}  // namespace hilo::lords::detail
