// Block mean pooling of keys (HISA stage 1's representatives), whole-tensor and incremental (paged decode).
#include <cmath>
#include <cstring>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "checks.hpp"
#include "hilo/hisa.hpp"
#include "key_source.hpp"

namespace hilo::hisa {
namespace {

DType pooled_dtype(PooledFormat f) {
  switch (f) {
    case PooledFormat::FP8: return DType::F8_E4M3;
    case PooledFormat::BF16: return DType::BF16;
    default: return DType::F32;
  }
}

// sum[d] += key[d] * scale: the product is rounded to f32, then added (the build never fuses the two).
inline void accumulate(float* sum, const float* key, float scale, int D) {
  for (int d = 0; d < D; ++d) sum[d] += key[d] * scale;
}

// Encodes the mean of `count` summed rows.
float encode_mean(const float* sum, int64_t count, int D, PooledFormat format, void* codes) {
  std::vector<float> mean(D);
  for (int d = 0; d < D; ++d) mean[d] = sum[d] / static_cast<float>(count);
  return encode_pooled_row(mean.data(), D, format, codes);
}

}  // namespace

std::string to_string(PooledFormat f) {
  switch (f) {
    case PooledFormat::FP8: return "fp8";
    case PooledFormat::BF16: return "bf16";
    default: return "f32";
  }
}

PooledFormat parse_pooled_format(const std::string& name) {
  if (name == "fp8") return PooledFormat::FP8;
  if (name == "bf16") return PooledFormat::BF16;
  if (name == "f32") return PooledFormat::F32;
  fail("pooled format '{}' is not one of fp8, bf16, f32", name);
}

float encode_pooled_row(const float* mean, int D, PooledFormat format, void* codes) {
  switch (format) {
    case PooledFormat::F32: std::memcpy(codes, mean, D * sizeof(float)); return 1.0f;
    case PooledFormat::BF16: {
      auto* out = static_cast<uint16_t*>(codes);
      for (int d = 0; d < D; ++d) out[d] = f32_to_bf16(mean[d]);
      return 1.0f;
    }
    default: {
      auto* out = static_cast<uint8_t*>(codes);
      float amax = 0.0f;
      for (int d = 0; d < D; ++d) amax = std::max(amax, std::fabs(mean[d]));
      if (amax == 0.0f) {
        std::memset(out, 0, D);
        return 1.0f;
      }
      const float scale = amax / kE4M3Max;
      for (int d = 0; d < D; ++d) out[d] = f32_to_e4m3(mean[d] / scale);
      return scale;
    }
  }
}

PooledKeys pool_keys(const TensorView& k, const TensorView& k_scale, int block, PooledFormat format) {
  constexpr std::string_view where = "pool_keys";
  HILO_CHECK(block >= 1, "{}: block = {} must be positive", where, block);
  expect_host_contiguous(k, where, "k");
  expect_ndim(k, where, "k", 2);
  expect_dtype(k, where, "k", {DType::F8_E4M3, DType::BF16, DType::F32});
  expect_host_contiguous(k_scale, where, "k_scale");
  expect_dtype(k_scale, where, "k_scale", {DType::F32});
  expect_shape(k_scale, where, "k_scale", {k.size(0)});
  const int64_t N = k.size(0);
  const int D = static_cast<int>(k.size(1));
  const int64_t blocks = (N + block - 1) / block;
  PooledKeys p{Tensor(pooled_dtype(format), {blocks, D}), Tensor(DType::F32, {blocks}), block, format};
  const auto* scales = static_cast<const float*>(k_scale.data());
  const std::size_t row_bytes = D * dtype_size(k.dtype());
  const std::size_t code_bytes = D * dtype_size(pooled_dtype(format));
  auto* codes = static_cast<uint8_t*>(p.codes.view().data());
  float* out_scale = p.scale.ptr<float>();
  parallel_for((blocks + 63) / 64, 0, [&](int64_t chunk) {
    std::vector<float> sum(D), key(D);
    for (int64_t b = chunk * 64; b < std::min(blocks, (chunk + 1) * 64); ++b) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      const int64_t end = std::min<int64_t>(N, (b + 1) * block);
      for (int64_t n = b * block; n < end; ++n) {
        detail::widen_to_f32(static_cast<const uint8_t*>(k.data()) + n * row_bytes, k.dtype(), D, key.data());
        accumulate(sum.data(), key.data(), scales[n], D);
      }
      out_scale[b] = encode_mean(sum.data(), end - b * block, D, format, codes + b * code_bytes);
    }
  });
  return p;
}

PooledKeyCache::PooledKeyCache(int head_dim, int block, PooledFormat format)
    : head_dim_(head_dim), block_(block), format_(format) {
  HILO_CHECK(head_dim >= 1, "PooledKeyCache: head_dim = {} must be positive", head_dim);
  HILO_CHECK(block >= 1, "PooledKeyCache: block = {} must be positive", block);
}

PooledKeyCache::Request& PooledKeyCache::slot(int request) {
  HILO_CHECK(request >= 0, "PooledKeyCache: request = {} must be >= 0", request);
  if (static_cast<std::size_t>(request) >= requests_.size()) requests_.resize(request + 1);
  return requests_[request];
}

void PooledKeyCache::reset(int request) { slot(request) = Request{}; }

int64_t PooledKeyCache::length(int request) const {
  return static_cast<std::size_t>(request) < requests_.size() && request >= 0 ? requests_[request].length : 0;
}

int64_t PooledKeyCache::num_blocks(int request) const { return (length(request) + block_ - 1) / block_; }

TensorView PooledKeyCache::codes(int request) const {
  static const uint8_t kEmpty[8] = {};
  const int64_t nb = num_blocks(request);
  const void* data = nb > 0 ? static_cast<const void*>(requests_[request].codes.data()) : kEmpty;
  return TensorView(data, pooled_dtype(format_), {nb, head_dim_});
}

TensorView PooledKeyCache::scales(int request) const {
  static const float kEmpty[2] = {};
  const int64_t nb = num_blocks(request);
  const void* data = nb > 0 ? static_cast<const void*>(requests_[request].scales.data()) : kEmpty;
  return TensorView(data, DType::F32, {nb});
}

void PooledKeyCache::update(int request, const TensorView& kv_cache, const int32_t* block_table_row,
                            int64_t max_pages, int64_t length) {
  constexpr std::string_view where = "PooledKeyCache::update";
  expect_host_contiguous(kv_cache, where, "kv_cache");
  expect_dtype(kv_cache, where, "kv_cache", {DType::U8});
  expect_ndim(kv_cache, where, "kv_cache", 3);
  HILO_CHECK(kv_cache.size(1) == kPageSize && kv_cache.size(2) == head_dim_ + 4,
             "{}: kv_cache has shape {}, expected [num_pages, {}, {}]", where, shape_string(kv_cache.shape()),
             kPageSize, head_dim_ + 4);
  HILO_CHECK(length >= 0 && length <= max_pages * kPageSize,
             "{}: length = {} is outside [0, {}] (max_pages * 64)", where, length, max_pages * kPageSize);
  for (int64_t p = 0; p < (length + kPageSize - 1) / kPageSize; ++p)
    HILO_CHECK(block_table_row[p] >= 0 && block_table_row[p] < kv_cache.size(0),
               "{}: block table entry {} = {} points outside the cache's {} pages", where, p, block_table_row[p],
               kv_cache.size(0));
  Request& rq = slot(request);
  if (length < rq.length) rq = Request{};
  if (length == rq.length) return;

  const int D = head_dim_;
  const std::size_t code_bytes = D * dtype_size(pooled_dtype(format_));
  const int64_t blocks = (length + block_ - 1) / block_;
  rq.codes.resize(blocks * code_bytes);
  rq.scales.resize(blocks);
  rq.tail_sum.resize(D);
  const detail::PagedKeySource src(static_cast<const uint8_t*>(kv_cache.data()), D, block_table_row, length);
  const float* table = e4m3_table();
  std::vector<float> key(D);
  for (int64_t pos = rq.length; pos < length; ++pos) {
    if (pos % block_ == 0) std::fill(rq.tail_sum.begin(), rq.tail_sum.end(), 0.0f);
    const uint8_t* row = src.row(pos);
    detail::check_cache_row(row, src.scale(pos), D, where, request, pos);
    for (int d = 0; d < D; ++d) key[d] = table[row[d]];
    accumulate(rq.tail_sum.data(), key.data(), src.scale(pos), D);
    // Encode a block when it completes, and the (partial) tail once, at the end of this update.
    if (pos % block_ == block_ - 1 || pos == length - 1) {
      const int64_t b = pos / block_;
      rq.scales[b] = encode_mean(rq.tail_sum.data(), pos % block_ + 1, D, format_, rq.codes.data() + b * code_bytes);
    }
  }
  rq.length = length;
}

}  // namespace hilo::hisa
