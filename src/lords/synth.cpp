// Synthetic weights: W[i, c] = std * row_scale[i] * col_scale[c] * t[i, c] / sd(t), t ~ Student-t(dof).
#include <cmath>
#include <vector>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "hilo/lords_data.hpp"

namespace hilo::lords {
namespace {

enum Purpose : uint64_t { kRows = 101, kCols, kEntries };

double lognormal(Stream& s, double sigma) { return std::exp(sigma * s.normal() - 0.5 * sigma * sigma); }

// Student-t by its definition: normal / sqrt(chi2(dof) / dof), with chi2 from dof normals (dof an integer here).
double student_t(Stream& s, int dof) {
  double chi2 = 0;
  for (int k = 0; k < dof; ++k) {
    const double z = s.normal();
    chi2 += z * z;
  }
  return s.normal() / std::sqrt(chi2 / dof);
}

double column_scale(const WeightSynthConfig& cfg, int64_t c) {
  Stream s(cfg.seed, kCols, static_cast<uint64_t>(c));
  double scale = lognormal(s, cfg.col_sigma);
  if (s.uniform() < cfg.outlier_fraction) scale *= cfg.outlier_scale;
  return scale;
}

}  // namespace

void synthetic_weight_rows(const WeightSynthConfig& cfg, int64_t row0, int64_t n, float* out) {
  HILO_CHECK(cfg.rows > 0 && cfg.cols > 0, "synthetic_weight: shape [{}, {}] must be positive", cfg.rows, cfg.cols);
  HILO_CHECK(row0 >= 0 && n >= 0 && row0 + n <= cfg.rows, "synthetic_weight: rows [{}, {}) outside [0, {})", row0,
             row0 + n, cfg.rows);
  const int dof = static_cast<int>(cfg.tail_dof);
  HILO_CHECK(dof >= 3 && dof == cfg.tail_dof, "synthetic_weight: tail_dof = {} must be an integer >= 3", cfg.tail_dof);
  const double t_sd = std::sqrt(dof / (dof - 2.0));
  std::vector<double> col(static_cast<std::size_t>(cfg.cols));
  for (int64_t c = 0; c < cfg.cols; ++c) col[c] = column_scale(cfg, c);
  parallel_for(n, 0, [&](int64_t r) {  // rows are independent streams: the same values for any thread count
    const int64_t i = row0 + r;
    Stream rs(cfg.seed, kRows, static_cast<uint64_t>(i));
    const double row_scale = cfg.std * lognormal(rs, cfg.row_sigma) / t_sd;
    Stream es(cfg.seed, kEntries, static_cast<uint64_t>(i));
    for (int64_t c = 0; c < cfg.cols; ++c)
      out[r * cfg.cols + c] = static_cast<float>(row_scale * col[c] * student_t(es, dof));
  });
}

void synthetic_weight(const WeightSynthConfig& cfg, float* out) { synthetic_weight_rows(cfg, 0, cfg.rows, out); }

}  // namespace hilo::lords
