// Causal multi-head attention with grouped key/value heads over one sequence, f32, as transformers' eager
// attention computes it: softmax(q.k^T * head_dim^-1/2, causal mask) . v, per head.
#pragma once

#include <cstdint>
#include <vector>

namespace hilo::llama::detail {

// q [n, heads * head_dim], k and v [n, kv_heads * head_dim], out [n, heads * head_dim]. Head h reads key/value
// head h / (heads / kv_heads).
void causal_attention(const float* q, const float* k, const float* v, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, float* out, int threads);

// cos and sin of the rotary angles for positions 0..n-1: [n, head_dim / 2] each (computed once per forward pass,
// shared by q and k of every layer).
struct RopeTable {
  std::vector<float> cos, sin;
};
RopeTable rope_table(int64_t n, int64_t head_dim, const float* inv_freq);

// Rotary embedding in place (rotate-half layout), x [n, heads * head_dim], positions 0..n-1.
void apply_rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const RopeTable& table);

}  // namespace hilo::llama::detail
