#include "kernels.hpp"

#include "../core/check.hpp"
#include "hilo/lords.hpp"

namespace hilo::lords::detail {

const Kernels& kernels() {
#if defined(__x86_64__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512) return avx512_kernels();
#endif
  return portable_kernels();
}

}  // namespace hilo::lords::detail


namespace hilo::lords::detail {

void require_quantizer_isa() {
#if defined(HILO_EIGEN_AVX2) && defined(__x86_64__)
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  HILO_CHECK(ok, "quantize: this build of hilo needs AVX2 and FMA for quantisation (rebuild with -DHILO_EIGEN_AVX2=OFF)");
#endif
}

}  // namespace hilo::lords::detail

namespace hilo::lords {
namespace detail {
QuantizedLinear quantize_impl(const TensorView& w, const QuantConfig& cfg, QuantReport* report);
double relative_error_impl(const TensorView& w, const QuantizedLinear& q);
void dequantize_impl(const QuantizedLinear& q, float* out, int threads);  // threads: 0 = all cores
}  // namespace detail

// Entry points compiled for the baseline ISA: they check the CPU before calling into the AVX2-built quantiser.
QuantizedLinear quantize(const TensorView& w, const QuantConfig& cfg, QuantReport* report) {
  detail::require_quantizer_isa();
  return detail::quantize_impl(w, cfg, report);
}

void dequantize(const QuantizedLinear& q, float* out) {
  detail::require_quantizer_isa();
  detail::dequantize_impl(q, out, 0);
}

double relative_error(const TensorView& w, const QuantizedLinear& q) {
  detail::require_quantizer_isa();
  return detail::relative_error_impl(w, q);
}

}  // namespace hilo::lords
