#include "checks.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "../core/check.hpp"

namespace hilo::hisa::detail {
namespace {

constexpr auto kFloatInputs = {DType::F8_E4M3, DType::BF16, DType::F32};

std::string index_string(const Shape& shape, int64_t flat) {
  Shape idx(shape.size());
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    idx[i] = shape[i] == 0 ? 0 : flat % shape[i];
    flat = shape[i] == 0 ? 0 : flat / shape[i];
  }
  return shape_string(idx);
}

void check_common_options(const IndexerOptions& opt, std::string_view where) {
  HILO_CHECK(opt.topk >= 1, "{}: topk = {} must be positive", where, opt.topk);
  HILO_CHECK(opt.threads >= 0, "{}: threads = {} must be >= 0 (0 = all)", where, opt.threads);
}

void check_output(const TensorView& t, std::string_view where, std::string_view name, int64_t rows, int topk) {
  expect_dtype(t, where, name, {DType::I32});
  expect_shape(t, where, name, {rows, topk});
}

}  // namespace

int64_t first_nonfinite(const void* data, DType dtype, int64_t n) {
  // Non-finite means an all-ones exponent (fp8 e4m3: the 0x7F / 0xFF NaN codes). Chunks are tested with a
  // branch-free loop the compiler vectorises; only a chunk that holds one is scanned for its index.
  constexpr int64_t kChunk = 4096;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    int64_t any = 0;  // a count, not a bool: the loops then vectorise
    switch (dtype) {
      case DType::F8_E4M3: {
        const auto* p = static_cast<const uint8_t*>(data);
        for (int64_t i = c0; i < c1; ++i) any += (p[i] & 0x7F) == 0x7F;
        break;
      }
      case DType::BF16: {  // memcpy: the data may be unaligned (a page's scales, a mapped file)
        const auto* p = static_cast<const uint8_t*>(data);
        for (int64_t i = c0; i < c1; ++i) {
          uint16_t v;
          std::memcpy(&v, p + 2 * i, 2);
          any += (v & 0x7F80) == 0x7F80;
        }
        break;
      }
      default: {
        const auto* p = static_cast<const uint8_t*>(data);
        for (int64_t i = c0; i < c1; ++i) {
          uint32_t v;
          std::memcpy(&v, p + 4 * i, 4);
          any += (v & 0x7F800000u) == 0x7F800000u;
        }
      }
    }
    if (!any) continue;
    for (int64_t i = c0; i < c1; ++i)
      if (!std::isfinite(load_as_f32(data, dtype, static_cast<std::size_t>(i)))) return i;
  }
  return -1;
}

void check_finite(const TensorView& t, std::string_view where, std::string_view name) {
  const int64_t bad = first_nonfinite(t.data(), t.dtype(), t.numel());
  if (bad >= 0) fail_nonfinite(where, name, t.shape(), bad, load_as_f32(t.data(), t.dtype(), static_cast<std::size_t>(bad)));
}

void fail_range(std::string_view where, int64_t i, int64_t ks, int64_t ke, int64_t N) {
  HILO_CHECK(ks >= 0, "{}: ks[{}] = {} is negative", where, i, ks);
  HILO_CHECK(ks <= ke, "{}: ks[{}] = {} is greater than ke[{}] = {}", where, i, ks, i, ke);
  HILO_CHECK(ke <= N, "{}: ke[{}] = {} is past the {} keys in k", where, i, ke, N);
  fail("{}: ks[{}] = {}, ke[{}] = {} is not a valid range", where, i, ks, i, ke);
}

void fail_nonfinite(std::string_view where, std::string_view name, const Shape& shape, int64_t index, float value) {
  fail("{}: {} holds a non-finite value ({}) at {}", where, name, value, index_string(shape, index));
}

PrefillShape check_prefill_layout(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx,
                                  std::string_view where, DeviceKind device) {
  check_common_options(opt, where);
  struct Named {
    const TensorView& t;
    const char* name;
  };
  for (const Named& n : {Named{in.q, "q"}, Named{in.w, "w"}, Named{in.k, "k"}, Named{in.k_scale, "k_scale"},
                         Named{in.ks, "ks"}, Named{in.ke, "ke"}, Named{idx, "idx"}})
    expect_contiguous_on(n.t, device, where, n.name);
  expect_ndim(in.q, where, "q", 3);
  expect_dtype(in.q, where, "q", kFloatInputs);
  expect_ndim(in.k, where, "k", 2);
  expect_dtype(in.k, where, "k", kFloatInputs);
  PrefillShape s{in.q.size(0), in.q.size(1), in.q.size(2), in.k.size(0)};
  HILO_CHECK(s.H >= 1 && s.D >= 1, "{}: q has shape {}; heads and head dim must be positive", where,
             shape_string(in.q.shape()));
  HILO_CHECK(in.k.size(1) == s.D, "{}: k has shape {} but q's head dim is {}", where, shape_string(in.k.shape()), s.D);
  HILO_CHECK(s.N <= std::numeric_limits<int32_t>::max(), "{}: k has {} rows, more than int32 indices can address",
             where, s.N);
  expect_dtype(in.w, where, "w", {DType::F32});
  expect_shape(in.w, where, "w", {s.S, s.H});
  expect_dtype(in.k_scale, where, "k_scale", {DType::F32});
  expect_shape(in.k_scale, where, "k_scale", {s.N});
  expect_dtype(in.ks, where, "ks", {DType::I32});
  expect_shape(in.ks, where, "ks", {s.S});
  expect_dtype(in.ke, where, "ke", {DType::I32});
  expect_shape(in.ke, where, "ke", {s.S});
  check_output(idx, where, "idx", s.S, opt.topk);
  return s;
}

PrefillShape check_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx,
                           std::string_view where) {
  const PrefillShape s = check_prefill_layout(in, opt, idx, where, DeviceKind::CPU);
  const auto* ks = static_cast<const int32_t*>(in.ks.data());
  const auto* ke = static_cast<const int32_t*>(in.ke.data());
  for (int64_t i = 0; i < s.S; ++i)
    if (ks[i] < 0 || ks[i] > ke[i] || ke[i] > s.N) fail_range(where, i, ks[i], ke[i], s.N);
  if (opt.check_finite) {
    check_finite(in.q, where, "q");
    check_finite(in.w, where, "w");
    check_finite(in.k, where, "k");
    check_finite(in.k_scale, where, "k_scale");
  }
  return s;
}

void check_hisa_options(const HisaOptions& opt, std::string_view where, bool block_only) {
  HILO_CHECK(opt.block >= 1, "{}: block = {} must be positive", where, opt.block);
  HILO_CHECK(opt.blocks_kept >= 2, "{}: blocks_kept = {} must be at least 2 (first and last block are forced)", where,
             opt.blocks_kept);
  const int64_t kept_keys = static_cast<int64_t>(opt.blocks_kept) * opt.block;
  if (block_only)
    HILO_CHECK(kept_keys <= opt.topk, "{}: blocks_kept * block = {} * {} must fit in topk = {}", where,
               opt.blocks_kept, opt.block, opt.topk);
  else
    HILO_CHECK(kept_keys >= opt.topk, "{}: blocks_kept * block = {} * {} is smaller than topk = {}", where,
               opt.blocks_kept, opt.block, opt.topk);
}

void check_cache_row(const uint8_t* codes, float scale, int64_t D, std::string_view where, int64_t r, int64_t pos) {
  int64_t bad = !std::isfinite(scale);
  for (int64_t d = 0; d < D; ++d) bad += (codes[d] & 0x7F) == 0x7F;
  HILO_CHECK(bad == 0, "{}: kv_cache holds a non-finite key or scale at request {}, position {}", where, r, pos);
}

DecodeShape check_decode_layout(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out,
                                std::string_view where, DeviceKind device) {
  check_common_options(opt, where);
  struct Named {
    const TensorView& t;
    const char* name;
  };
  for (const Named& n : {Named{in.q, "q"}, Named{in.w, "w"}, Named{in.kv_cache, "kv_cache"},
                         Named{in.block_table, "block_table"}, Named{in.context_lens, "context_lens"}})
    expect_contiguous_on(n.t, device, where, n.name);
  expect_ndim(in.q, where, "q", 4);
  expect_dtype(in.q, where, "q", kFloatInputs);
  DecodeShape s{};
  s.batch = in.q.size(0);
  s.next_n = in.q.size(1);
  s.H = in.q.size(2);
  s.D = in.q.size(3);
  HILO_CHECK(s.next_n >= 1 && s.H >= 1 && s.D >= 1, "{}: q has shape {}; next_n, heads and head dim must be positive",
             where, shape_string(in.q.shape()));
  expect_dtype(in.w, where, "w", {DType::F32});
  expect_shape(in.w, where, "w", {s.batch * s.next_n, s.H});
  expect_dtype(in.kv_cache, where, "kv_cache", {DType::U8});
  expect_ndim(in.kv_cache, where, "kv_cache", 3);
  HILO_CHECK(in.kv_cache.size(1) == kPageSize && in.kv_cache.size(2) == s.D + 4,
             "{}: kv_cache has shape {}, expected [num_pages, {}, {}] (D fp8 bytes + a 4-byte scale per row)", where,
             shape_string(in.kv_cache.shape()), kPageSize, s.D + 4);
  s.num_pages = in.kv_cache.size(0);
  expect_dtype(in.block_table, where, "block_table", {DType::I32});
  expect_ndim(in.block_table, where, "block_table", 2);
  HILO_CHECK(in.block_table.size(0) == s.batch, "{}: block_table has shape {} but the batch is {}", where,
             shape_string(in.block_table.shape()), s.batch);
  s.max_pages = in.block_table.size(1);
  expect_dtype(in.context_lens, where, "context_lens", {DType::I32});
  s.per_token_lens = in.context_lens.ndim() == 2;
  if (s.per_token_lens)
    expect_shape(in.context_lens, where, "context_lens", {s.batch, s.next_n});
  else
    expect_shape(in.context_lens, where, "context_lens", {s.batch});
  HILO_CHECK(!out.positions.empty() || !out.slots.empty(), "{}: neither positions nor slots is given", where);
  for (const Named& n : {Named{out.positions, "positions"}, Named{out.slots, "slots"}}) {
    if (n.t.empty()) continue;
    expect_contiguous_on(n.t, device, where, n.name);
    check_output(n.t, where, n.name, s.batch * s.next_n, opt.topk);
  }
  return s;
}

DecodeShape check_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out,
                         std::string_view where, bool scan_cache) {
  const DecodeShape s = check_decode_layout(in, opt, out, where, DeviceKind::CPU);

  const auto* lens = static_cast<const int32_t*>(in.context_lens.data());
  const auto* table = static_cast<const int32_t*>(in.block_table.data());
  const int64_t capacity = s.max_pages * kPageSize;
  for (int64_t i = 0; i < in.context_lens.numel(); ++i)
    HILO_CHECK(lens[i] >= 0 && lens[i] <= capacity,
               "{}: context_lens{} = {} is outside [0, {}] (max_pages * 64 of the block table)", where,
               index_string(in.context_lens.shape(), i), lens[i], capacity);
  for (int64_t r = 0; r < s.batch; ++r) {
    const int64_t pages = (decode_request_length(in, s, r) + kPageSize - 1) / kPageSize;
    for (int64_t p = 0; p < pages; ++p) {
      const int32_t page = table[r * s.max_pages + p];
      HILO_CHECK(page >= 0 && page < s.num_pages,
                 "{}: block_table[{}, {}] = {} points outside the cache's {} pages", where, r, p, page, s.num_pages);
    }
  }
  if (opt.check_finite) {
    check_finite(in.q, where, "q");
    check_finite(in.w, where, "w");
  }
  if (opt.check_finite && scan_cache) {
    // Only the visible rows of each request's pages: their fp8 codes (contiguous per page) and scales.
    const auto* cache = static_cast<const uint8_t*>(in.kv_cache.data());
    const int64_t page_bytes = kPageSize * (s.D + 4);
    for (int64_t r = 0; r < s.batch; ++r) {
      const int64_t len = decode_request_length(in, s, r);
      for (int64_t p = 0; p * kPageSize < len; ++p) {
        const int64_t rows = std::min<int64_t>(kPageSize, len - p * kPageSize);
        const uint8_t* page = cache + table[r * s.max_pages + p] * page_bytes;
        int64_t bad = first_nonfinite(page, DType::F8_E4M3, rows * s.D);
        if (bad >= 0) bad /= s.D;
        else if ((bad = first_nonfinite(page + kPageSize * s.D, DType::F32, rows)) < 0)
          continue;
        fail("{}: kv_cache holds a non-finite key or scale at request {}, position {}", where, r,
             p * kPageSize + bad);
      }
    }
  }
  return s;
}

int64_t decode_visible(const DecodeInputs& in, const DecodeShape& s, int64_t r, int64_t j) {
  const auto* lens = static_cast<const int32_t*>(in.context_lens.data());
  if (s.per_token_lens) return lens[r * s.next_n + j];
  return std::max<int64_t>(0, lens[r] - s.next_n + j + 1);
}

int64_t decode_request_length(const DecodeInputs& in, const DecodeShape& s, int64_t r) {
  int64_t len = 0;
  for (int64_t j = 0; j < s.next_n; ++j) len = std::max(len, decode_visible(in, s, r, j));
  return len;
}

}  // namespace hilo::hisa::detail
