#include "key_source.hpp"

#include <cstring>
#include <vector>

#include "checks.hpp"
#include "hilo/hisa.hpp"
#include "score_kernel.hpp"

namespace hilo::hisa::detail {
void widen_to_f32(const void* src, DType dtype, int64_t count, float* dst) {
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, count * sizeof(float)); break;
    case DType::BF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < count; ++i) {  // memcpy: the rows may be unaligned
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        const uint32_t u = static_cast<uint32_t>(b) << 16;
        std::memcpy(dst + i, &u, 4);
      }
      break;
    }
    default: {
      const float* table = e4m3_table();
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < count; ++i) dst[i] = table[p[i]];
    }
  }
}

DenseKeySource::DenseKeySource(const void* keys, DType dtype, int64_t n, int dim, const float* scales)
    : keys_(static_cast<const uint8_t*>(keys)), dtype_(dtype), n_(n), dim_(dim), scales_(scales) {}

void DenseKeySource::pack(int64_t first_group, int groups, float* panel, float* scales) const {
  const PackGroupFn pack_group = pack_kernel();
  const std::size_t row_bytes = static_cast<std::size_t>(dim_) * dtype_size(dtype_);
  const void* rows[kGroup];
  for (int g = 0; g < groups; ++g) {
    for (int lane = 0; lane < kGroup; ++lane) {
      const int64_t n = (first_group + g) * kGroup + lane;
      rows[lane] = n < n_ ? keys_ + n * row_bytes : nullptr;
      scales[g * kGroup + lane] = n >= n_ ? 0.0f : scales_ ? scales_[n] : 1.0f;
    }
    pack_group(rows, static_cast<int>(dtype_), dim_, panel + static_cast<long>(g) * dim_ * kGroup);
  }
}

PagedKeySource::PagedKeySource(const uint8_t* cache, int dim, const int32_t* table_row, int64_t length)
    : cache_(cache), dim_(dim), table_(table_row), length_(length) {}

const uint8_t* PagedKeySource::row(int64_t pos) const {
  const std::size_t page_bytes = static_cast<std::size_t>(kPageSize) * (dim_ + 4);
  return cache_ + table_[pos / kPageSize] * page_bytes + (pos % kPageSize) * dim_;
}

float PagedKeySource::scale(int64_t pos) const {
  const std::size_t page_bytes = static_cast<std::size_t>(kPageSize) * (dim_ + 4);
  float s;
  std::memcpy(&s, cache_ + table_[pos / kPageSize] * page_bytes + kPageSize * dim_ + (pos % kPageSize) * 4, 4);
  return s;
}

void PagedKeySource::check_on_read(std::string_view where, int64_t request) {
  check_ = true;
  where_ = where;
  request_ = request;
}

void PagedKeySource::pack(int64_t first_group, int groups, float* panel, float* scales) const {
  const PackGroupFn pack_group = pack_kernel();
  const void* rows[kGroup];
  for (int g = 0; g < groups; ++g) {
    for (int lane = 0; lane < kGroup; ++lane) {
      const int64_t n = (first_group + g) * kGroup + lane;
      rows[lane] = n < length_ ? row(n) : nullptr;
      scales[g * kGroup + lane] = n < length_ ? scale(n) : 0.0f;
    }
    float* out = panel + static_cast<long>(g) * dim_ * kGroup;
    pack_group(rows, static_cast<int>(DType::F8_E4M3), dim_, out);
    const bool suspect = check_ && (first_nonfinite(out, DType::F32, static_cast<int64_t>(dim_) * kGroup) >= 0 ||
                                    first_nonfinite(scales + g * kGroup, DType::F32, kGroup) >= 0);
    if (suspect) {  // find the row and report it
      for (int lane = 0; lane < kGroup; ++lane)
        if (rows[lane]) check_cache_row(static_cast<const uint8_t*>(rows[lane]), scales[g * kGroup + lane], dim_,
                                        where_, request_, (first_group + g) * kGroup + lane);
    }
  }
}

}  // namespace hilo::hisa::detail
