// Attention on the dense tiled matmul (lords::matmul_f32): per head and block of 128 queries, S = Q.K^T over the
// keys the block can see, a masked softmax, then O = P.V. Each (head, block) item owns its outputs, so results do
// not depend on the thread count.
#include "attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/parallel.hpp"
#include "hilo/lords.hpp"

namespace hilo::llama::detail {
namespace {
constexpr int64_t kQueryBlock = 128;
int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
}  // namespace

RopeTable rope_table(int64_t n, int64_t head_dim, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  RopeTable t;
  t.cos.resize(static_cast<std::size_t>(n * half));
  t.sin.resize(t.cos.size());
  for (int64_t p = 0; p < n; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];  // f32 product, as transformers forms it
      t.cos[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      t.sin[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  return t;
}

void apply_rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const RopeTable& table) {
  const int64_t half = head_dim / 2;
  for (int64_t p = 0; p < n; ++p) {
    const float* cos_t = table.cos.data() + p * half;
    const float* sin_t = table.sin.data() + p * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (p * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos_t[i] - b * sin_t[i];
        v[i + half] = b * cos_t[i] + a * sin_t[i];
      }
    }
  }
}

void causal_attention(const float* q, const float* k, const float* v, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, float* out, int threads) {
  // The matmul's inner dimension must be a multiple of 32: queries and keys are zero-padded to dp (dot products
  // unchanged), the sequence to np (keys past n are never visible).
  const int64_t dp = round_up(head_dim, 32), np = round_up(n, 32), group = heads / kv_heads;
  std::vector<float> qh(static_cast<std::size_t>(heads * n * dp), 0.0f);     // [head, n, dp]
  std::vector<float> kh(static_cast<std::size_t>(kv_heads * np * dp), 0.0f);  // [kv head, np, dp]
  std::vector<float> vt(static_cast<std::size_t>(kv_heads * head_dim * np), 0.0f);  // [kv head, head_dim, np]
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h)
      std::copy_n(q + (t * heads + h) * head_dim, head_dim, qh.data() + (h * n + t) * dp);
    for (int64_t g = 0; g < kv_heads; ++g) {
      std::copy_n(k + (t * kv_heads + g) * head_dim, head_dim, kh.data() + (g * np + t) * dp);
      for (int64_t d = 0; d < head_dim; ++d) vt[(g * head_dim + d) * np + t] = v[(t * kv_heads + g) * head_dim + d];
    }
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  parallel_for(heads * blocks, threads, [&](int64_t item) {
    const int64_t h = item / blocks, i0 = (item % blocks) * kQueryBlock, bq = std::min(kQueryBlock, n - i0);
    const int64_t g = h / group, keys = round_up(i0 + bq, 32);  // the keys this block of queries can see
    std::vector<float> s(static_cast<std::size_t>(bq * keys)), o(static_cast<std::size_t>(bq * head_dim));
    lords::matmul_f32(kh.data() + g * np * dp, keys, dp, dp, qh.data() + (h * n + i0) * dp, bq, s.data(), 1);
    for (int64_t r = 0; r < bq; ++r) {
      float* row = s.data() + r * keys;
      const int64_t visible = i0 + r + 1;
      float mx = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, row[j] *= scale);
      float sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) sum += (row[j] = std::exp(row[j] - mx));
      for (int64_t j = 0; j < visible; ++j) row[j] /= sum;
      std::fill(row + visible, row + keys, 0.0f);
    }
    lords::matmul_f32(vt.data() + g * head_dim * np, head_dim, keys, np, s.data(), bq, o.data(), 1);
    for (int64_t r = 0; r < bq; ++r) std::copy_n(o.data() + r * head_dim, head_dim, out + ((i0 + r) * heads + h) * head_dim);
  });
}

}  // namespace hilo::llama::detail
