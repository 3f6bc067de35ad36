// CUDA prefill launchers: flat indexer, HISA, standalone top-k and pooling (arguments already checked).
#include <cuda_runtime.h>

#include "flat_runner.cuh"
#include "hisa_runner.cuh"
#include "validate.hpp"

namespace hilo::hisa::cuda_detail {

Violations flat_prefill(const PrefillArgs& a, int topk, bool sorted, bool check, int32_t* idx, void* stream_ptr) {
  const cudaStream_t stream = as_stream(stream_ptr);
  if (check) {
    const Violations v = check_prefill_values(a, stream);
    if (v.any()) return v;
  }
  if (a.S > 0) {
    Scratch scratch(stream);
    const FlatJob job{a.q, a.w, a.ks, a.ke, static_cast<int>(a.S), kMaxGroupRows, false, a.N, false, topk, sorted,
                      stream};
    const DenseKeys keys{a.k, a.k_scale, a.N};
    with_heads(a.H, [&](auto h) {
      run_flat<decltype(h)::value>(job, keys, scratch,
                                   [&](int rb) { return IndexOut{idx + static_cast<int64_t>(rb) * topk, a.ks + rb, topk}; });
    });
  }
  return kNoViolations;
}

Violations hisa_prefill(const PrefillArgs& a, const HisaArgs& h, bool check, int32_t* idx, void* stream_ptr,
                        HisaStats* stats) {
  const cudaStream_t stream = as_stream(stream_ptr);
  if (check) {
    const Violations v = check_prefill_values(a, stream);
    if (v.any()) return v;
  }
  Scratch scratch(stream);
  StageClock clock(stats != nullptr, stream);
  clock.mark();
  const int64_t NB = (a.N + h.block - 1) / h.block;
  uint8_t* codes = scratch.alloc<uint8_t>(NB * kDim);
  float* scales = scratch.alloc<float>(NB);
  if (NB > 0) {
    pool_dense_kernel<<<static_cast<unsigned>(NB), kDim, 0, stream>>>(DenseKeys{a.k, a.k_scale, a.N}, h.block, codes,
                                                                       scales);
    HILO_CUDA_LAUNCHED("pool_dense_kernel");
  }
  clock.mark();
  const DenseKeys pooled{codes, scales, NB};
  const DenseKeys keys{a.k, a.k_scale, a.N};
  const int cap = std::max(h.blocks_kept, (h.topk + h.block - 1) / h.block + 1);
  const int tile_rows = std::min(kTileRows, kUnionSort / cap);
  // Rows in blocks, so the token candidates stay within ~64 MiB.
  const int block_rows =
      std::max(tile_rows, static_cast<int>((64ll << 20) / (int64_t{cap} * h.block * 4)) / tile_rows * tile_rows);
  const HisaBuffers buf(static_cast<int>(std::min<int64_t>(block_rows, a.S)), tile_rows, NB, h, scratch);
  for (int64_t rb = 0; rb < a.S; rb += block_rows) {
    const int rows = static_cast<int>(std::min<int64_t>(block_rows, a.S - rb));
    const IndexOut sink{idx + rb * h.topk, a.ks + rb, h.topk};
    with_heads(a.H, [&](auto hh) {
      run_hisa<decltype(hh)::value>(a.q + rb * a.H * kDim, a.w + rb * a.H, a.ks + rb, a.ke + rb, rows, tile_rows, false,
                                    pooled, NB, keys, h, stream, buf, sink, clock);
    });
  }
  if (stats) clock.fill(*stats);
  return kNoViolations;
}

void topk_rows(const float* scores, int64_t rows, int64_t len, int k, bool sorted, int32_t* out, void* stream) {
  Scratch scratch(as_stream(stream));
  launch_topk(RowScores{scores, len}, IndexOut{out, nullptr, k}, static_cast<int>(rows), len, k, sorted,
              as_stream(stream), scratch);
}

void pool_keys(const uint8_t* k, const float* k_scale, int64_t N, int block, uint8_t* codes, float* scale,
               void* stream) {
  const int64_t NB = (N + block - 1) / block;
  if (NB == 0) return;
  pool_dense_kernel<<<static_cast<unsigned>(NB), kDim, 0, as_stream(stream)>>>(DenseKeys{k, k_scale, N}, block, codes,
                                                                               scale);
  HILO_CUDA_LAUNCHED("pool_dense_kernel");
}

}  // namespace hilo::hisa::cuda_detail
