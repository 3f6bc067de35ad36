// The public CUDA API (hilo/hisa_cuda.hpp): the CPU path's argument checks, the CUDA path's own limits, then the
// launchers; violations found on the device become the same error messages as on the CPU.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>

#include "../../core/check.hpp"
#include "../../cuda/host.hpp"
#include "../checks.hpp"
#include "hilo/hisa_cuda.hpp"
#include "launch.hpp"

namespace hilo::hisa::cuda_detail {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  fail("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err), cudaGetErrorString(err), what, file, line);
}

}  // namespace hilo::hisa::cuda_detail

namespace hilo::hisa::cuda {
namespace {

using cuda_detail::kDim;
using cuda_detail::Violations;
constexpr unsigned long long kNone = ~0ull;

using hilo::cuda_detail::DeviceScope;

void expect_one_device(std::initializer_list<const TensorView*> views, int device, std::string_view where) {
  for (const TensorView* v : views)
    if (!v->empty())
      HILO_CHECK(v->device().index == device, "{}: tensors are on different CUDA devices ({} and cuda:{})", where,
                 to_string(v->device()), device);
}

void check_kernel_limits(DType q, DType k, int64_t H, int64_t D, int topk, std::string_view where) {
  HILO_CHECK(q == DType::F8_E4M3 && k == DType::F8_E4M3, "{}: the CUDA path takes F8_E4M3 q and keys, got {} and {}",
             where, dtype_name(q), dtype_name(k));
  HILO_CHECK(D == kDim, "{}: the CUDA path is built for head dim {}, q has {}", where, kDim, D);
  HILO_CHECK(H == 16 || H == 32 || H == 48 || H == 64, "{}: the CUDA path takes 16, 32, 48 or 64 heads, q has {}",
             where, H);
  HILO_CHECK(topk <= cuda_detail::kMaxTopk, "{}: the CUDA path takes topk <= {}, got {}", where, cuda_detail::kMaxTopk,
             topk);
}

void check_hisa_limits(const HisaOptions& opt, int tile_rows, std::string_view where) {
  detail::check_hisa_options(opt, where);
  HILO_CHECK(opt.pooled == PooledFormat::FP8, "{}: the CUDA path pools keys in fp8 only, got {}", where,
             to_string(opt.pooled));
  HILO_CHECK(opt.block % cuda_detail::kKeysPerWarp == 0, "{}: the CUDA path needs block to be a multiple of {}, got {}",
             where, cuda_detail::kKeysPerWarp, opt.block);
  const int cap = std::max(opt.blocks_kept, (opt.topk + opt.block - 1) / opt.block + 1);
  HILO_CHECK(cap - 2 <= cuda_detail::kMaxTopk && tile_rows * cap <= cuda_detail::kUnionSort,
             "{}: blocks_kept = {} (with {} query rows per tile) is too large for the CUDA path", where,
             opt.blocks_kept, tile_rows);
}

template <typename T>
T fetch(const void* base, int64_t index, void* stream) {
  T value{};
  cuda_detail::copy_to_host(&value, static_cast<const T*>(base) + index, sizeof(T), stream);
  return value;
}

void raise_prefill(const Violations& v, const PrefillInputs& in, int64_t N, std::string_view where, void* stream) {
  if (v.range != kNone) {
    const auto i = static_cast<int64_t>(v.range);
    detail::fail_range(where, i, fetch<int32_t>(in.ks.data(), i, stream), fetch<int32_t>(in.ke.data(), i, stream), N);
  }
  const float nan = __builtin_nanf("");
  if (v.q != kNone) detail::fail_nonfinite(where, "q", in.q.shape(), static_cast<int64_t>(v.q), nan);
  if (v.w != kNone)
    detail::fail_nonfinite(where, "w", in.w.shape(), static_cast<int64_t>(v.w),
                           fetch<float>(in.w.data(), static_cast<int64_t>(v.w), stream));
  if (v.k != kNone) detail::fail_nonfinite(where, "k", in.k.shape(), static_cast<int64_t>(v.k), nan);
  if (v.k_scale != kNone)
    detail::fail_nonfinite(where, "k_scale", in.k_scale.shape(), static_cast<int64_t>(v.k_scale),
                           fetch<float>(in.k_scale.data(), static_cast<int64_t>(v.k_scale), stream));
}

void raise_decode(const Violations& v, const DecodeInputs& in, const detail::DecodeShape& s, std::string_view where,
                  void* stream) {
  if (v.lens != kNone) {
    const auto i = static_cast<int64_t>(v.lens);
    const std::string at = s.per_token_lens ? fmt::format("[{}, {}]", i / s.next_n, i % s.next_n) : fmt::format("[{}]", i);
    fail("{}: context_lens{} = {} is outside [0, {}] (max_pages * 64 of the block table)", where, at,
         fetch<int32_t>(in.context_lens.data(), i, stream), s.max_pages * 64);
  }
  if (v.table != kNone) {
    const auto i = static_cast<int64_t>(v.table);
    fail("{}: block_table[{}, {}] = {} points outside the cache's {} pages", where, i / s.max_pages, i % s.max_pages,
         fetch<int32_t>(in.block_table.data(), i, stream), s.num_pages);
  }
  const float nan = __builtin_nanf("");
  if (v.q != kNone) detail::fail_nonfinite(where, "q", in.q.shape(), static_cast<int64_t>(v.q), nan);
  if (v.w != kNone)
    detail::fail_nonfinite(where, "w", in.w.shape(), static_cast<int64_t>(v.w),
                           fetch<float>(in.w.data(), static_cast<int64_t>(v.w), stream));
  if (v.k != kNone) {
    const auto code = static_cast<int64_t>(v.k);
    fail("{}: kv_cache holds a non-finite key or scale at request {}, position {}", where, code >> 40,
         code & ((int64_t{1} << 40) - 1));
  }
}

struct Prefill {
  detail::PrefillShape shape;
  cuda_detail::PrefillArgs args;
};

Prefill check_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx,
                      std::string_view where) {
  const detail::PrefillShape s = detail::check_prefill_layout(in, opt, idx, where, DeviceKind::CUDA);
  check_kernel_limits(in.q.dtype(), in.k.dtype(), s.H, s.D, opt.topk, where);
  expect_one_device({&in.q, &in.w, &in.k, &in.k_scale, &in.ks, &in.ke, &idx}, in.q.device().index, where);
  return {s,
          {static_cast<const uint8_t*>(in.q.data()), static_cast<const float*>(in.w.data()),
           static_cast<const uint8_t*>(in.k.data()), static_cast<const float*>(in.k_scale.data()),
           static_cast<const int32_t*>(in.ks.data()), static_cast<const int32_t*>(in.ke.data()), s.S, s.H, s.N}};
}

struct Decode {
  detail::DecodeShape shape;
  cuda_detail::DecodeArgs args;
};

Decode check_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out,
                    std::string_view where) {
  const detail::DecodeShape s = detail::check_decode_layout(in, opt, out, where, DeviceKind::CUDA);
  check_kernel_limits(in.q.dtype(), DType::F8_E4M3, s.H, s.D, opt.topk, where);
  HILO_CHECK(s.next_n <= cuda_detail::kTileRows, "{}: the CUDA path takes next_n <= {}, got {}", where,
             cuda_detail::kTileRows, s.next_n);
  expect_one_device({&in.q, &in.w, &in.kv_cache, &in.block_table, &in.context_lens, &out.positions, &out.slots},
                    in.q.device().index, where);
  return {s,
          {static_cast<const uint8_t*>(in.q.data()), static_cast<const float*>(in.w.data()),
           static_cast<const uint8_t*>(in.kv_cache.data()), static_cast<const int32_t*>(in.block_table.data()),
           static_cast<const int32_t*>(in.context_lens.data()), s.batch, s.next_n, s.H, s.num_pages, s.max_pages,
           s.per_token_lens, out.positions.empty() ? nullptr : static_cast<int32_t*>(out.positions.data()),
           out.slots.empty() ? nullptr : static_cast<int32_t*>(out.slots.data())}};
}

cuda_detail::HisaArgs hisa_args(const HisaOptions& opt) {
  return {opt.block, opt.blocks_kept, opt.topk, opt.sorted};
}

}  // namespace

void flat_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx, void* stream) {
  constexpr std::string_view where = "cuda::flat_prefill";
  const Prefill p = check_prefill(in, opt, idx, where);
  DeviceScope scope(in.q.device().index);
  const Violations v = cuda_detail::flat_prefill(p.args, opt.topk, opt.sorted, opt.check_finite,
                                                 static_cast<int32_t*>(idx.data()), stream);
  raise_prefill(v, in, p.shape.N, where, stream);
}

void hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx, void* stream,
                  HisaStats* stats) {
  constexpr std::string_view where = "cuda::hisa_prefill";
  const Prefill p = check_prefill(in, opt, idx, where);
  check_hisa_limits(opt, 1, where);
  DeviceScope scope(in.q.device().index);
  const Violations v = cuda_detail::hisa_prefill(p.args, hisa_args(opt), opt.check_finite,
                                                 static_cast<int32_t*>(idx.data()), stream, stats);
  raise_prefill(v, in, p.shape.N, where, stream);
}

void flat_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out, void* stream) {
  constexpr std::string_view where = "cuda::flat_decode";
  const Decode d = check_decode(in, opt, out, where);
  DeviceScope scope(in.q.device().index);
  // Without check_finite nothing is validated up front (no synchronisation); a request with a bad length or page
  // index then gets no candidates instead of an error (decode_rows_kernel), and no read leaves the cache.
  const Violations v = cuda_detail::flat_decode(d.args, opt.topk, opt.sorted, opt.check_finite, stream);
  raise_decode(v, in, d.shape, where, stream);
}

void hisa_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt, const DecodeOutputs& out,
                 void* stream, HisaStats* stats) {
  constexpr std::string_view where = "cuda::hisa_decode";
  const Decode d = check_decode(in, opt, out, where);
  check_hisa_limits(opt, static_cast<int>(d.shape.next_n), where);
  HILO_CHECK(cache.block() == opt.block, "{}: the pooled cache has block {}, the call asks for {}", where, cache.block(),
             opt.block);
  HILO_CHECK(cache.max_batch() >= d.shape.batch && int64_t{cache.max_blocks()} * opt.block >= d.shape.max_pages * 64,
             "{}: the pooled cache ({} requests x {} blocks) is smaller than the call ({} requests x {} tokens)", where,
             cache.max_batch(), cache.max_blocks(), d.shape.batch, d.shape.max_pages * 64);
  HILO_CHECK(cache.codes().device() == in.q.device(), "{}: the pooled cache is on {}, the inputs on {}", where,
             to_string(cache.codes().device()), to_string(in.q.device()));
  DeviceScope scope(in.q.device().index);
  const cuda_detail::PooledCacheArgs c{static_cast<uint8_t*>(cache.codes().data()),
                                       static_cast<float*>(cache.scales().data()),
                                       static_cast<int32_t*>(cache.lengths().data()), cache.max_blocks()};
  const Violations v = cuda_detail::hisa_decode(d.args, hisa_args(opt), c, opt.check_finite, stream, stats);
  raise_decode(v, in, d.shape, where, stream);
}

void topk_rows(const TensorView& scores, int k, const TensorView& out, bool sorted, void* stream) {
  constexpr std::string_view where = "cuda::topk_rows";
  HILO_CHECK(k >= 1 && k <= cuda_detail::kMaxTopk, "{}: k = {} must be in [1, {}]", where, k, cuda_detail::kMaxTopk);
  expect_contiguous_on(scores, DeviceKind::CUDA, where, "scores");
  expect_contiguous_on(out, DeviceKind::CUDA, where, "out");
  expect_dtype(scores, where, "scores", {DType::F32});
  expect_ndim(scores, where, "scores", 2);
  expect_dtype(out, where, "out", {DType::I32});
  expect_shape(out, where, "out", {scores.size(0), k});
  expect_one_device({&scores, &out}, scores.device().index, where);
  DeviceScope scope(scores.device().index);
  cuda_detail::topk_rows(static_cast<const float*>(scores.data()), scores.size(0), scores.size(1), k, sorted,
                         static_cast<int32_t*>(out.data()), stream);
}

void pool_keys(const TensorView& k, const TensorView& k_scale, int block, const TensorView& codes,
               const TensorView& scale, void* stream) {
  constexpr std::string_view where = "cuda::pool_keys";
  HILO_CHECK(block >= 1, "{}: block = {} must be positive", where, block);
  expect_contiguous_on(k, DeviceKind::CUDA, where, "k");
  expect_contiguous_on(k_scale, DeviceKind::CUDA, where, "k_scale");
  expect_contiguous_on(codes, DeviceKind::CUDA, where, "codes");
  expect_contiguous_on(scale, DeviceKind::CUDA, where, "scale");
  expect_dtype(k, where, "k", {DType::F8_E4M3});
  expect_ndim(k, where, "k", 2);
  HILO_CHECK(k.size(1) == kDim, "{}: k has shape {}, the CUDA path needs head dim {}", where, shape_string(k.shape()),
             kDim);
  const int64_t N = k.size(0), NB = (N + block - 1) / block;
  expect_dtype(k_scale, where, "k_scale", {DType::F32});
  expect_shape(k_scale, where, "k_scale", {N});
  expect_dtype(codes, where, "codes", {DType::F8_E4M3});
  expect_shape(codes, where, "codes", {NB, kDim});
  expect_dtype(scale, where, "scale", {DType::F32});
  expect_shape(scale, where, "scale", {NB});
  expect_one_device({&k, &k_scale, &codes, &scale}, k.device().index, where);
  DeviceScope scope(k.device().index);
  cuda_detail::pool_keys(static_cast<const uint8_t*>(k.data()), static_cast<const float*>(k_scale.data()), N, block,
                         static_cast<uint8_t*>(codes.data()), static_cast<float*>(scale.data()), stream);
}

PooledKeyCache::PooledKeyCache(int device, int max_batch, int max_blocks, int block, int head_dim)
    : device_(device), max_batch_(max_batch), max_blocks_(max_blocks), block_(block) {
  HILO_CHECK(max_batch >= 1 && max_blocks >= 1 && block >= 1,
             "cuda::PooledKeyCache: max_batch = {}, max_blocks = {} and block = {} must be positive", max_batch,
             max_blocks, block);
  HILO_CHECK(head_dim == kDim, "cuda::PooledKeyCache: the CUDA path is built for head dim {}, got {}", kDim, head_dim);
  DeviceScope scope(device);
  const int64_t rows = int64_t{max_batch} * max_blocks;
  codes_ = cuda_detail::device_alloc(rows * kDim);
  scales_ = cuda_detail::device_alloc(rows * sizeof(float));
  lengths_ = cuda_detail::device_alloc(max_batch * sizeof(int32_t));
}

PooledKeyCache::~PooledKeyCache() {
  cuda_detail::device_free(codes_);
  cuda_detail::device_free(scales_);
  cuda_detail::device_free(lengths_);
}

TensorView PooledKeyCache::codes() const {
  return TensorView(codes_, DType::F8_E4M3, {max_batch_, max_blocks_, kDim}, {}, Device{DeviceKind::CUDA, device_});
}
TensorView PooledKeyCache::scales() const {
  return TensorView(scales_, DType::F32, {max_batch_, max_blocks_}, {}, Device{DeviceKind::CUDA, device_});
}
TensorView PooledKeyCache::lengths() const {
  return TensorView(lengths_, DType::I32, {max_batch_}, {}, Device{DeviceKind::CUDA, device_});
}

void PooledKeyCache::reset(void* stream) {
  DeviceScope scope(device_);
  cuda_detail::device_zero(lengths_, max_batch_ * sizeof(int32_t), stream);
}

}  // namespace hilo::hisa::cuda
