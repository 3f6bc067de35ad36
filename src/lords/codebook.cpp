// Codebooks: NF (QLoRA's normal-float map) and symmetric INT.
#include <algorithm>
#include <cmath>

#include "../core/check.hpp"
#include "codes.hpp"
#include "hilo/lords.hpp"

namespace hilo::lords {
namespace {

// bitsandbytes' NF4 table, exactly.
constexpr float kNF4[16] = {-1.0f,
                            -0.6961928009986877f,
                            -0.5250730514526367f,
                            -0.39491748809814453f,
                            -0.28444138169288635f,
                            -0.18477343022823334f,
                            -0.09105003625154495f,
                            0.0f,
                            0.07958029955625534f,
                            0.16093020141124725f,
                            0.24611230731010437f,
                            0.33791524171829224f,
                            0.44070982933044434f,
                            0.5626170039176941f,
                            0.7229568362236023f,
                            1.0f};

// Inverse of the standard normal CDF: Acklam's rational approximation refined by one Halley step (~1e-15).
double normal_ppf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;  // Halley refinement
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

}  // namespace

namespace detail {
// QLoRA/LoftQ normal map: 2^(k-1) positive levels, 2^(k-1) - 1 negative ones and 0, scaled to [-1, 1].
std::vector<float> normal_float_map(int bits) {
  constexpr double offset = 0.9677083;
  const int pos = 1 << (bits - 1), neg = pos - 1;
  std::vector<double> v;
  auto linspace = [&](int n, int i) { return n == 1 ? offset : offset + (0.5 - offset) * i / (n - 1); };
  for (int i = 0; i < pos; ++i) v.push_back(normal_ppf(linspace(pos + 1, i)));
  for (int i = 0; i < neg; ++i) v.push_back(-normal_ppf(linspace(neg + 1, i)));
  v.push_back(0.0);
  std::sort(v.begin(), v.end());
  const double m = std::max(std::fabs(v.front()), std::fabs(v.back()));
  std::vector<float> out;
  for (double x : v) out.push_back(static_cast<float>(x / m));
  return out;
}
}  // namespace detail

Codebook make_codebook(CodebookKind kind, int bits) {
  HILO_CHECK(bits >= 2 && bits <= 4, "codebook: bits = {} is not one of 2, 3, 4", bits);
  Codebook cb{kind, bits, {}};
  if (kind == CodebookKind::NF) {
    cb.values = bits == 4 ? std::vector<float>(kNF4, kNF4 + 16) : detail::normal_float_map(bits);
  } else {
    const int half = 1 << (bits - 1);
    for (int i = -half; i < half; ++i)
      cb.values.push_back(std::max(-1.0f, static_cast<float>(i) / static_cast<float>(half - 1)));
  }
  return cb;
}

std::string Codebook::name() const { return (kind == CodebookKind::NF ? "nf" : "int") + std::to_string(bits); }

int Codebook::zero_code() const {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i] == 0.0f) return static_cast<int>(i);
  return 0;
}

CodebookKind parse_codebook(std::string_view name) {
  if (name == "nf") return CodebookKind::NF;
  if (name == "int") return CodebookKind::INT;
  fail("codebook '{}' is not one of nf, int", name);
}

uint8_t nearest_code(const Codebook& cb, float x) {
  if (std::isnan(x)) return static_cast<uint8_t>(cb.zero_code());
  int code = 0;
  for (std::size_t i = 0; i + 1 < cb.values.size(); ++i) code += x > 0.5f * (cb.values[i] + cb.values[i + 1]);
  return static_cast<uint8_t>(code);
}

}  // namespace hilo::lords
