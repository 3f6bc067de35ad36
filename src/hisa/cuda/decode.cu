// CUDA decode launchers over DeepGEMM's paged cache: flat indexer, HISA with a device pooled-key cache.
#include <cuda_runtime.h>

#include "flat_runner.cuh"
#include "hisa_runner.cuh"
#include "validate.hpp"

namespace hilo::hisa::cuda_detail {
namespace {

struct RowPlan {
  int32_t *lo, *hi, *req_len, *req_blocks;
};

// isolate: a request with a bad length or page index sees no keys (the unchecked path; the checked one reports it).
// HISA also has the launch write its block plan and, unchecked, the pooled cache's new lengths (decode_rows_kernel).
RowPlan plan_rows(const DecodeArgs& a, int block, bool isolate, Scratch& scratch, cudaStream_t stream,
                  BlockPlan blocks = {}, PooledLengths pooled = {}) {
  const int64_t rows = a.batch * a.next_n;
  RowPlan p{scratch.alloc<int32_t>(rows), scratch.alloc<int32_t>(rows), scratch.alloc<int32_t>(a.batch),
            scratch.alloc<int32_t>(a.batch)};
  if (a.batch > 0) {
    launch_early(decode_rows_kernel, ceil_div(a.batch, kDecodeRowsWarps), 32 * kDecodeRowsWarps, 0, stream, a.lens,
                 a.per_token_lens, static_cast<int>(a.batch), static_cast<int>(a.next_n), block, a.table,
                 static_cast<int>(a.max_pages), a.num_pages, isolate, p.hi, p.lo, p.req_len, p.req_blocks, blocks,
                 pooled);
  }
  return p;
}

DecodeOut decode_sink(const DecodeArgs& a, int topk, int first_row) {
  const int64_t at = static_cast<int64_t>(first_row) * topk;
  return DecodeOut{a.positions ? a.positions + at : nullptr, a.slots ? a.slots + at : nullptr,
                   a.table + (first_row / a.next_n) * a.max_pages, static_cast<int>(a.max_pages),
                   static_cast<int>(a.next_n), topk};
}

}  // namespace

Violations flat_decode(const DecodeArgs& a, int topk, bool sorted, bool check, void* stream_ptr) {
  const cudaStream_t stream = as_stream(stream_ptr);
  Scratch scratch(stream);
  const RowPlan plan = plan_rows(a, 1, !check, scratch, stream);
  const PagedKeys keys{a.cache, a.table, plan.req_len, static_cast<int>(a.max_pages), a.num_pages};
  if (check) {
    const Violations v = check_decode_values(a, keys, nullptr, stream);
    if (v.any()) return v;
  }
  const int rows = static_cast<int>(a.batch * a.next_n);
  if (rows == 0) return kNoViolations;
  const FlatJob job{a.q,  a.w,  plan.lo, plan.hi, rows, static_cast<int>(a.next_n), true, a.max_pages * 64,
                    true, topk, sorted, stream};
  with_heads(a.H, [&](auto h) {
    run_flat<decltype(h)::value>(job, keys, scratch, [&](int rb) { return decode_sink(a, topk, rb); });
  });
  return kNoViolations;
}

Violations hisa_decode(const DecodeArgs& a, const HisaArgs& h, const PooledCacheArgs& cache, bool check,
                       void* stream_ptr, HisaStats* stats) {
  const cudaStream_t stream = as_stream(stream_ptr);
  Scratch scratch(stream);
  StageClock clock(stats != nullptr, stream);
  clock.mark();
  const int rows = static_cast<int>(a.batch * a.next_n);
  HisaBuffers buf(rows, static_cast<int>(a.next_n), cache.max_blocks, h, scratch);
  buf.block_plan_ready = true;
  // Unchecked, the row plan also moves the pooled lengths forward (the old ones to `previous`); checked, they move
  // only after validation passed and the pooling ran (store_lengths_kernel), so a rejected call leaves the cache as
  // it was.
  int32_t* previous = check ? cache.lengths : scratch.alloc<int32_t>(a.batch);
  const BlockPlan blocks{buf.block_lo, buf.block_hi, h.block, h.blocks_kept, h.topk};
  const RowPlan plan = plan_rows(a, h.block, !check, scratch, stream, blocks,
                                 check ? PooledLengths{} : PooledLengths{cache.lengths, previous});
  const PagedKeys keys{a.cache, a.table, plan.req_len, static_cast<int>(a.max_pages), a.num_pages};
  if (check) {  // only the rows the pooled cache has not seen yet: they are read once, here and when pooled
    const Violations v = check_decode_values(a, keys, cache.lengths, stream);
    if (v.any()) return v;
  }
  if (rows == 0) return kNoViolations;
  launch_early(pool_cache_kernel, dim3(static_cast<unsigned>(a.batch), 8), kDim, 0, stream, keys, plan.req_len, previous,
               h.block, cache.max_blocks, cache.codes, cache.scales);
  if (check) {
    store_lengths_kernel<<<ceil_div(a.batch, 128), 128, 0, stream>>>(plan.req_len, cache.lengths,
                                                                     static_cast<int>(a.batch));
    HILO_CUDA_LAUNCHED("store_lengths_kernel");
  }
  clock.mark();
  const PooledCacheKeys pooled{cache.codes, cache.scales, plan.req_blocks, cache.max_blocks};
  with_heads(a.H, [&](auto hh) {
    run_hisa<decltype(hh)::value>(a.q, a.w, plan.lo, plan.hi, rows, static_cast<int>(a.next_n), true, pooled,
                                  cache.max_blocks, keys, h, stream, buf, decode_sink(a, h.topk, 0), clock);
  });
  if (stats) clock.fill(*stats);
  return kNoViolations;
}

}  // namespace hilo::hisa::cuda_detail
