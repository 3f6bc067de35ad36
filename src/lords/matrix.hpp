// Dense f32 matrices of the quantisers (Eigen, row-major) and the pieces LoRDS' stages share.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <vector>

#include "codes.hpp"
#include "hilo/lords.hpp"

namespace hilo::lords::detail {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;

// W as f32 (F32, BF16 or F16 input), refusing NaN/Inf.
Mat to_matrix(const TensorView& w, const char* where);

// S = B A with the canonical fma order of kernels.hpp (rows in parallel).
Mat scale_matrix(const Mat& B, const Mat& A, int threads);

// Codes of W / S, element-wise, rows in parallel.
void assign_codes(const Mat& W, const Mat& S, const CodeAssigner& assign, std::vector<uint8_t>& codes, int threads);

// sum_ij h_j (W_ij - value[Q_ij] S_ij)^2 and sum_ij h_j W_ij^2 (h empty: all ones), in f64.
struct ErrorSums {
  double err = 0, ref = 0;
  double relative() const { return ref > 0 ? std::sqrt(err / ref) : 0.0; }
};
ErrorSums error_sums(const Mat& W, const Mat& S, const std::vector<uint8_t>& codes, const Codebook& cb, const Vec& h,
                     int threads);

// ||W - D||_F / ||W||_F accumulated in f64 (0 for W = 0): per-row sums, rows in parallel (all cores), added in row
// order (deterministic for any thread count).
double relative_frobenius(const Mat& W, const Mat& D);
// The same with row i of D written by row(i, out) (cols floats) instead of stored.
double relative_frobenius_rows(const Mat& W, int threads, const std::function<void(int64_t, float*)>& row);

// G Aᵀ and Bᵀ G, split into fixed blocks computed in parallel by single-threaded Eigen: the blocking (and so the
// rounding) never depends on the thread count.
Mat times_transpose(const Mat& G, const Mat& A, int threads);
Mat transpose_times(const Mat& B, const Mat& G, int threads);

// Rounds every entry to bf16 (and back to f32): what the factors and scales are stored as.
void round_to_bf16(Mat& m);

// The body of lords::dequantize (quantize.cpp).
void dequantize_impl(const QuantizedLinear& q, float* out, int threads);  // threads: 0 = all cores
// Row i of a block-wise layer, dequantised.
void dequantize_blockwise_row(const QuantizedLinear& q, int64_t i, float* out);

struct Factors {
  Mat B, A;  // [rows, r], [r, cols]
};

// Refinement (refine.cpp). Both return the best factors seen (by the weighted error) and fill report->trace.
void refine_als(const Mat& W, const Vec& h, const Codebook& cb, Factors& f, int steps, int threads,
                QuantReport* report, const std::function<void(double)>& on_step);
void refine_adam(const Mat& W, const Vec& h, const Codebook& cb, Factors& f, int steps, float lr, int threads,
                 QuantReport* report, const std::function<void(double)>& on_step);
// refine_adam with its loop on a CUDA device (refine_cuda.hpp); throws in builds without CUDA.
void refine_adam_on_device(const Mat& W, const Vec& h, const Codebook& cb, Factors& f, int steps, float lr, int device,
                           QuantReport* report, const std::function<void(double)>& on_step);

}  // namespace hilo::lords::detail
