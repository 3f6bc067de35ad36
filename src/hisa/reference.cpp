// The plain oracle: score every visible (query, key) pair with the exact arithmetic of hisa.hpp, sort, keep topk.
// Slow and simple on purpose; every fast path is tested against it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "checks.hpp"
#include "hilo/hisa.hpp"

namespace hilo::hisa::reference {
namespace {

struct Candidate {
  float score;
  int64_t pos;
};

// Orders by score desc (through the total order that puts NaN last), then position asc.
bool better(const Candidate& a, const Candidate& b) {
  auto key = [](float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0u;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  };
  const uint32_t ka = key(a.score), kb = key(b.score);
  return ka != kb ? ka > kb : a.pos < b.pos;
}

// The k best candidates; NaN scores (only with check_finite off) are never selected.
std::vector<int64_t> top_positions(std::vector<Candidate> c, int64_t k) {
  std::erase_if(c, [](const Candidate& x) { return std::isnan(x.score); });
  std::sort(c.begin(), c.end(), better);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < std::min<int64_t>(k, c.size()); ++i) out.push_back(c[i].pos);
  return out;
}

std::vector<float> widen(const TensorView& t) {
  std::vector<float> out(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = load_as_f32(t.data(), t.dtype(), i);
  return out;
}

void write_row(const std::vector<int64_t>& positions, int64_t base, int topk, int32_t* dst) {
  for (int i = 0; i < topk; ++i)
    dst[i] = i < static_cast<int>(positions.size()) ? static_cast<int32_t>(positions[i] - base) : -1;
}

// Dense keys of one problem (prefill: all of K; decode: one request), widened to f32.
struct Keys {
  std::vector<float> k, scale;  // [N][D], [N]
  int64_t n = 0;
  int D = 0;
};

struct Pooled {
  std::vector<float> k, scale;  // decoded pooled rows [NB][D] and their scales
};

Pooled pool(const Keys& keys, int block, PooledFormat format) {
  const int D = keys.D;
  const int64_t nb = (keys.n + block - 1) / block;
  Pooled p{std::vector<float>(nb * D), std::vector<float>(nb)};
  std::vector<float> sum(D), mean(D);
  std::vector<uint8_t> codes(D * 4);
  for (int64_t b = 0; b < nb; ++b) {
    std::fill(sum.begin(), sum.end(), 0.0f);
    const int64_t end = std::min(keys.n, (b + 1) * block);
    for (int64_t n = b * block; n < end; ++n)
      for (int d = 0; d < D; ++d) sum[d] += keys.k[n * D + d] * keys.scale[n];
    for (int d = 0; d < D; ++d) mean[d] = sum[d] / static_cast<float>(end - b * block);
    p.scale[b] = encode_pooled_row(mean.data(), D, format, codes.data());
    const DType t = format == PooledFormat::FP8 ? DType::F8_E4M3 : format == PooledFormat::BF16 ? DType::BF16
                                                                                                  : DType::F32;
    for (int d = 0; d < D; ++d) p.k[b * D + d] = load_as_f32(codes.data(), t, d);
  }
  return p;
}

std::vector<int64_t> flat_row(const float* q, const float* w, int H, const Keys& keys, int64_t ks, int64_t ke,
                              int topk) {
  std::vector<Candidate> c;
  for (int64_t n = ks; n < ke; ++n) c.push_back({score(q, w, H, keys.D, &keys.k[n * keys.D], keys.scale[n]), n});
  return top_positions(std::move(c), topk);
}

std::vector<int64_t> hisa_row(const float* q, const float* w, int H, const Keys& keys, const Pooled& pooled,
                              int64_t ks, int64_t ke, const HisaOptions& opt) {
  if (ks >= ke) return {};
  const int64_t B = opt.block, first = ks / B, last = (ke + B - 1) / B - 1;
  std::vector<int64_t> blocks;
  if (last - first + 1 <= opt.blocks_kept || ke - ks <= opt.topk) {
    for (int64_t b = first; b <= last; ++b) blocks.push_back(b);
  } else {
    std::vector<Candidate> j;
    for (int64_t b = first + 1; b < last; ++b)
      j.push_back({score(q, w, H, keys.D, &pooled.k[b * keys.D], pooled.scale[b]), b});
    blocks = top_positions(std::move(j), opt.blocks_kept - 2);
    blocks.push_back(first);
    blocks.push_back(last);
  }
  std::sort(blocks.begin(), blocks.end());
  std::vector<Candidate> c;
  for (int64_t b : blocks)
    for (int64_t n = std::max(b * B, ks); n < std::min((b + 1) * B, ke); ++n)
      c.push_back({score(q, w, H, keys.D, &keys.k[n * keys.D], keys.scale[n]), n});
  return top_positions(std::move(c), opt.topk);
}

Keys dense_keys(const PrefillInputs& in) {
  Keys k{widen(in.k), widen(in.k_scale), in.k.size(0), static_cast<int>(in.k.size(1))};
  return k;
}

Keys request_keys(const DecodeInputs& in, const detail::DecodeShape& s, int64_t r) {
  Keys k;
  k.D = static_cast<int>(s.D);
  k.n = detail::decode_request_length(in, s, r);
  const auto* cache = static_cast<const uint8_t*>(in.kv_cache.data());
  const auto* table = static_cast<const int32_t*>(in.block_table.data()) + r * s.max_pages;
  const int64_t page_bytes = kPageSize * (s.D + 4);
  for (int64_t pos = 0; pos < k.n; ++pos) {
    const uint8_t* page = cache + table[pos / kPageSize] * page_bytes;
    for (int64_t d = 0; d < s.D; ++d) k.k.push_back(e4m3_to_f32(page[(pos % kPageSize) * s.D + d]));
    float scale;
    std::memcpy(&scale, page + kPageSize * s.D + (pos % kPageSize) * 4, 4);
    k.scale.push_back(scale);
  }
  return k;
}

// Runs row_fn(q, w, H, keys, ks, ke) for every query row of a prefill call and writes its positions.
template <typename RowFn>
void prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx, std::string_view where,
             RowFn row_fn) {
  const detail::PrefillShape s = detail::check_prefill(in, opt, idx, where);
  const Keys keys = dense_keys(in);
  const std::vector<float> q = widen(in.q);
  const auto* w = static_cast<const float*>(in.w.data());
  const auto* ks = static_cast<const int32_t*>(in.ks.data());
  const auto* ke = static_cast<const int32_t*>(in.ke.data());
  const int H = static_cast<int>(s.H);
  for (int64_t i = 0; i < s.S; ++i)
    write_row(row_fn(&q[i * H * s.D], w + i * H, H, keys, ks[i], ke[i]), ks[i], opt.topk,
              static_cast<int32_t*>(idx.data()) + i * opt.topk);
}

template <typename RowFn>
void decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out, std::string_view where,
            RowFn row_fn) {
  const detail::DecodeShape s = detail::check_decode(in, opt, out, where, /*scan_cache=*/true);
  const std::vector<float> q = widen(in.q);
  const auto* w = static_cast<const float*>(in.w.data());
  const auto* table = static_cast<const int32_t*>(in.block_table.data());
  const int H = static_cast<int>(s.H);
  for (int64_t r = 0; r < s.batch; ++r) {
    const Keys keys = request_keys(in, s, r);
    for (int64_t j = 0; j < s.next_n; ++j) {
      const int64_t row = r * s.next_n + j;
      const std::vector<int64_t> pos = row_fn(&q[row * H * s.D], w + row * H, H, keys, detail::decode_visible(in, s, r, j));
      if (!out.positions.empty()) write_row(pos, 0, opt.topk, static_cast<int32_t*>(out.positions.data()) + row * opt.topk);
      if (!out.slots.empty()) {
        std::vector<int64_t> slots;
        for (int64_t p : pos) slots.push_back(table[r * s.max_pages + p / kPageSize] * int64_t{kPageSize} + p % kPageSize);
        write_row(slots, 0, opt.topk, static_cast<int32_t*>(out.slots.data()) + row * opt.topk);
      }
    }
  }
}

}  // namespace

float score(const float* q, const float* w, int H, int D, const float* key, float key_scale) {
  float total = 0.0f;
  for (int h = 0; h < H; ++h) {
    float dot = 0.0f;
    for (int d = 0; d < D; ++d) dot = std::fma(q[h * D + d], key[d], dot);
    const float logit = dot * key_scale;
    total = std::fma(w[h], logit > 0.0f ? logit : 0.0f, total);
  }
  return total;
}

void flat_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx) {
  prefill(in, opt, idx, "flat_prefill", [&](const float* q, const float* w, int H, const Keys& keys, int64_t ks,
                                            int64_t ke) { return flat_row(q, w, H, keys, ks, ke, opt.topk); });
}

void hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx) {
  detail::check_hisa_options(opt, "hisa_prefill");
  std::optional<Pooled> pooled;  // built once, after the shared checks passed
  prefill(in, opt, idx, "hisa_prefill", [&](const float* q, const float* w, int H, const Keys& keys, int64_t ks,
                                            int64_t ke) {
    if (!pooled) pooled = pool(keys, opt.block, opt.pooled);
    return hisa_row(q, w, H, keys, *pooled, ks, ke, opt);
  });
}

void flat_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out) {
  decode(in, opt, out, "flat_decode", [&](const float* q, const float* w, int H, const Keys& keys, int64_t visible) {
    return flat_row(q, w, H, keys, 0, visible, opt.topk);
  });
}

void hisa_decode(const DecodeInputs& in, const HisaOptions& opt, const DecodeOutputs& out) {
  detail::check_hisa_options(opt, "hisa_decode");
  decode(in, opt, out, "hisa_decode", [&](const float* q, const float* w, int H, const Keys& keys, int64_t visible) {
    return hisa_row(q, w, H, keys, pool(keys, opt.block, opt.pooled), 0, visible, opt);
  });
}

}  // namespace hilo::hisa::reference
