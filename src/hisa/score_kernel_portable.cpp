// Portable scoring kernel: the same loop structure as the SIMD kernels in plain C++ (std::fma keeps one
// rounding per step, so the results equal the reference on any machine).
#include <cmath>
#include <cstring>

#include "hilo/dtype.hpp"

#include "score_kernel.hpp"

namespace hilo::hisa::detail {

void score_groups_portable(const float* q, const float* w, int H, int D, const float* panel, const float* scales,
                           int groups, float* out) {
  for (int g = 0; g < groups; ++g) {
    const float* keys = panel + static_cast<long>(g) * D * kGroup;
    float score[kGroup] = {};
    for (int h = 0; h < H; ++h) {
      float dot[kGroup] = {};
      const float* qh = q + static_cast<long>(h) * D;
      for (int d = 0; d < D; ++d)
        for (int l = 0; l < kGroup; ++l) dot[l] = std::fma(qh[d], keys[d * kGroup + l], dot[l]);
      for (int l = 0; l < kGroup; ++l) {
        const float logit = dot[l] * scales[g * kGroup + l];
        score[l] = std::fma(w[h], logit > 0.0f ? logit : 0.0f, score[l]);
      }
    }
    for (int l = 0; l < kGroup; ++l) out[g * kGroup + l] = score[l];
  }
}

void pack_group_portable(const void* const rows[kGroup], int dtype, int D, float* out) {
  const DType t = static_cast<DType>(dtype);
  const float* e4m3 = e4m3_table();
  for (int lane = 0; lane < kGroup; ++lane) {
    const void* row = rows[lane];
    for (int d = 0; d < D; ++d) {
      float v = 0.0f;
      if (row == nullptr) {
      } else if (t == DType::F8_E4M3) {
        v = e4m3[static_cast<const uint8_t*>(row)[d]];
      } else if (t == DType::BF16) {
        uint16_t b;
        std::memcpy(&b, static_cast<const uint8_t*>(row) + 2 * d, 2);
        v = bf16_to_f32(b);
      } else {
        std::memcpy(&v, static_cast<const uint8_t*>(row) + 4 * d, 4);
      }
      out[d * kGroup + lane] = v;
    }
  }
}

}  // namespace hilo::hisa::detail
