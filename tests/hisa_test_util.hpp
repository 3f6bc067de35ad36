// Random indexer problems for the HISA tests: ragged prefill batches and paged decode batches.
#pragma once

#include <algorithm>
#include <set>

#include "hilo/hisa.hpp"
#include "hisa/score_kernel.hpp"
#include "test_util.hpp"

namespace hilo::test {

struct Prefill {
  Tensor q, w, k, k_scale, ks, ke;
  hisa::PrefillInputs inputs() const { return {q, w, k, k_scale, ks, ke}; }
};

// `sequences` causal sequences of random lengths in [min_len, max_len], packed in one K; `queries_per_seq` query
// rows per sequence at random positions (ks = sequence start, ke = position + 1).
inline Prefill random_prefill(std::mt19937_64& gen, DType dtype, int H, int D, int sequences, int min_len, int max_len,
                              int queries_per_seq) {
  std::vector<int32_t> ks, ke;
  int64_t N = 0;
  for (int s = 0; s < sequences; ++s) {
    const int len = min_len + static_cast<int>(gen() % (max_len - min_len + 1));
    for (int i = 0; i < queries_per_seq; ++i) {
      ks.push_back(static_cast<int32_t>(N));
      ke.push_back(static_cast<int32_t>(N + 1 + gen() % len));
    }
    N += len;
  }
  const int64_t S = static_cast<int64_t>(ks.size());
  Prefill p{random_tensor(dtype, {S, H, D}, gen), random_tensor(DType::F32, {S, H}, gen, 0.5f),
            random_tensor(dtype, {N, D}, gen), Tensor(DType::F32, {N}), Tensor(DType::I32, {S}), Tensor(DType::I32, {S})};
  std::uniform_real_distribution<float> scale(0.25f, 2.0f);
  for (int64_t n = 0; n < N; ++n) p.k_scale.ptr<float>()[n] = dtype == DType::F8_E4M3 ? scale(gen) : 1.0f;
  std::copy(ks.begin(), ks.end(), p.ks.ptr<int32_t>());
  std::copy(ke.begin(), ke.end(), p.ke.ptr<int32_t>());
  return p;
}

struct Decode {
  Tensor q, w, kv_cache, block_table, context_lens;
  hisa::DecodeInputs inputs() const { return {q, w, kv_cache, block_table, context_lens}; }
};

// Requests of random lengths in [min_len, max_len] over shuffled pages (plus spare pages nobody uses).
inline Decode random_decode(std::mt19937_64& gen, DType q_dtype, int H, int D, int batch, int next_n, int min_len,
                            int max_len, bool per_token_lens) {
  std::vector<int32_t> lens(batch);
  for (auto& l : lens) l = min_len + static_cast<int>(gen() % (max_len - min_len + 1));
  const int max_pages = (max_len + hisa::kPageSize - 1) / hisa::kPageSize;
  const int num_pages = batch * max_pages + 3;
  Decode d{random_tensor(q_dtype, {batch, next_n, H, D}, gen), random_tensor(DType::F32, {int64_t{batch} * next_n, H}, gen, 0.5f),
           Tensor(DType::U8, {num_pages, hisa::kPageSize, D + 4}), filled_i32({batch, max_pages}, -7),
           Tensor(DType::I32, per_token_lens ? Shape{batch, next_n} : Shape{batch})};
  // Random fp8 keys and scales in every page.
  Tensor keys = random_tensor(DType::F8_E4M3, {num_pages, hisa::kPageSize * D}, gen);
  std::uniform_real_distribution<float> scale(0.25f, 2.0f);
  auto* cache = static_cast<uint8_t*>(d.kv_cache.view().data());
  for (int p = 0; p < num_pages; ++p) {
    uint8_t* page = cache + static_cast<int64_t>(p) * hisa::kPageSize * (D + 4);
    std::memcpy(page, static_cast<uint8_t*>(keys.view().data()) + static_cast<int64_t>(p) * hisa::kPageSize * D,
                hisa::kPageSize * D);
    for (int r = 0; r < hisa::kPageSize; ++r) {
      const float s = scale(gen);
      std::memcpy(page + hisa::kPageSize * D + r * 4, &s, 4);
    }
  }
  std::vector<int32_t> pages(num_pages);
  for (int i = 0; i < num_pages; ++i) pages[i] = i;
  std::shuffle(pages.begin(), pages.end(), gen);
  int next = 0;
  for (int r = 0; r < batch; ++r) {
    for (int p = 0; p < (lens[r] + hisa::kPageSize - 1) / hisa::kPageSize; ++p)
      d.block_table.ptr<int32_t>()[r * max_pages + p] = pages[next++];
    for (int j = 0; j < next_n; ++j) {
      if (per_token_lens)
        d.context_lens.ptr<int32_t>()[r * next_n + j] = std::max(0, lens[r] - next_n + j + 1 - static_cast<int>(gen() % 3));
    }
    if (!per_token_lens) d.context_lens.ptr<int32_t>()[r] = lens[r];
  }
  return d;
}

// Row r of an index tensor as a set (ignoring -1).
inline std::set<int32_t> row_set(const Tensor& idx, int64_t r) {
  const int64_t k = idx.shape()[1];
  std::set<int32_t> s;
  for (int64_t i = 0; i < k; ++i)
    if (idx.ptr<int32_t>()[r * k + i] >= 0) s.insert(idx.ptr<int32_t>()[r * k + i]);
  return s;
}

inline bool same_rows(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.view().data(), b.view().data(), a.nbytes()) == 0;
}

// Runs a test body once per CPU kernel this machine has.
template <typename Body>
void for_each_kernel(Body body) {
  using hisa::detail::KernelChoice;
  std::vector<KernelChoice> kernels = {KernelChoice::Portable};
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    kernels.push_back(KernelChoice::Avx512);
#endif
  for (KernelChoice k : kernels) {
    hisa::detail::set_kernel_override(k);
    SCOPED_TRACE(hisa::detail::score_kernel_name(k));
    body();
  }
  hisa::detail::set_kernel_override(KernelChoice::Auto);
}

}  // namespace hilo::test
