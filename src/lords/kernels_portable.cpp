#include <algorithm>
#include <cmath>

#include "codes.hpp"
#include "hilo/dtype.hpp"
#include "kernels.hpp"

namespace hilo::lords::detail {
namespace {

void scale_row(const float* b, const float* a, int rank, int64_t lda, int64_t n, float* out) {
  for (int64_t c = 0; c < n; ++c) out[c] = 0.0f;
  for (int k = 0; k < rank; ++k) {
    const float bk = b[k];
    const float* ak = a + static_cast<int64_t>(k) * lda;
    for (int64_t c = 0; c < n; ++c) out[c] = std::fma(bk, ak[c], out[c]);
  }
}

void scale_rows4(const float* b, int64_t ldb, const float* a, int rank, int64_t lda, int64_t n, float* out,
                 int64_t ldo) {
  for (int r = 0; r < 4; ++r) scale_row(b + r * ldb, a, rank, lda, n, out + r * ldo);
}

void decode(const uint8_t* row, int64_t c0, int64_t n, int bits, bool lane_order, const float* lut16,
            const float* scale16, float* out) {
  uint8_t codes[64];
  const int64_t unit = lane_order ? lane_group(bits) : 32;  // whole groups: lane order stays inside a unit
  for (int64_t p0 = 0; p0 < n; p0 += unit) {
    unpack_row(row + (c0 + p0) * bits / 8, unit, bits, codes);
    for (int64_t p = 0; p < unit; ++p) {
      const int64_t c = lane_column(p, bits, lane_order);  // column within this unit
      const float v = lut16[codes[c]];
      out[p0 + p] = scale16 ? v * scale16[(p0 + p) / 16] : v;
    }
  }
}

void dot_tile(const float* tile, int rows, int64_t n, const float* x, int64_t ldx, int batch, float* acc) {
  for (int b = 0; b < batch; ++b)
    for (int r = 0; r < rows; ++r) {
      float s = 0.0f;
      for (int64_t c = 0; c < n; ++c) s += tile[r * n + c] * x[b * ldx + c];
      acc[b * rows + r] += s;
    }
}

void bf16_row(const uint16_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
}

}  // namespace

const Kernels& portable_kernels() {
  static const Kernels k{&scale_row, &scale_rows4, nullptr, false, &decode, &dot_tile, &bf16_row, "portable"};
  return k;
}

int lane_group(int bits) { return bits == 4 ? 32 : bits == 2 ? 64 : 0; }

bool uses_lane_order(int bits, int64_t cols, int block) {
  const int g = lane_group(bits);
  return g > 0 && cols % 64 == 0 && block % g == 0;
}

void fill_lut16(const std::vector<float>& values, float* lut16) {
  for (int i = 0; i < 16; ++i) lut16[i] = values[i % values.size()];
}

void pack_panels(const float* a, int rank, int64_t cols, float* out) {
  for (int64_t c0 = 0; c0 < cols; c0 += kScaleChunk) {
    const int64_t n = std::min(kScaleChunk, cols - c0);
    float* panel = out + rank * c0;
    for (int k = 0; k < rank; ++k)
      for (int64_t c = 0; c < n; ++c) panel[k * n + c] = a[k * cols + c0 + c];
  }
}

}  // namespace hilo::lords::detail
