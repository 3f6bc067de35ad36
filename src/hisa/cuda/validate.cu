// Value checks of a call, run on the device. The findings go back to the API layer, which words the errors.
#include <climits>
#include <functional>

#include "hisa_kernels.cuh"
#include "runtime.cuh"
#include "validate.hpp"

namespace hilo::hisa::cuda_detail {

bool Violations::any() const {
  for (unsigned long long v : {range, q, w, k, k_scale, table, lens})
    if (v != ULLONG_MAX) return true;
  return false;
}

namespace {

Violations run_checks(cudaStream_t stream, const std::function<void(Violations*)>& launch) {
  Violations* v = nullptr;
  // From hilo's pool, which keeps its memory: the default pool would release it at the synchronisation below and
  // map it again on the next call.
  HILO_CUDA_CHECK(cudaMallocFromPoolAsync(reinterpret_cast<void**>(&v), sizeof(Violations), scratch_pool(), stream));
  HILO_CUDA_CHECK(cudaMemsetAsync(v, 0xFF, sizeof(Violations), stream));
  launch(v);
  Violations host{};
  HILO_CUDA_CHECK(cudaMemcpyAsync(&host, v, sizeof(Violations), cudaMemcpyDeviceToHost, stream));
  HILO_CUDA_CHECK(cudaFreeAsync(v, stream));
  HILO_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

int grid_for(int64_t n) { return static_cast<int>(std::min<int64_t>(4096, std::max<int64_t>(1, (n + 255) / 256))); }

}  // namespace

Violations check_prefill_values(const PrefillArgs& a, cudaStream_t stream) {
  const int64_t q_n = a.S * a.H * kDim, w_n = a.S * a.H, k_n = a.N * kDim;
  return run_checks(stream, [&](Violations* v) {
    check_prefill_kernel<<<grid_for(std::max({q_n, k_n, a.S})), 256, 0, stream>>>(
        a.ks, a.ke, a.S, a.N, a.q, q_n, a.w, w_n, a.k, k_n, a.k_scale, v);
    HILO_CUDA_LAUNCHED("check_prefill_kernel");
  });
}

Violations check_decode_values(const DecodeArgs& a, const PagedKeys& keys, const int32_t* from,
                               cudaStream_t stream) {
  const int64_t capacity = a.max_pages * 64, n_lens = a.per_token_lens ? a.batch * a.next_n : a.batch;
  const int64_t q_n = a.batch * a.next_n * a.H * kDim, w_n = a.batch * a.next_n * a.H;
  const Violations first = run_checks(stream, [&](Violations* v) {
    check_decode_kernel<<<grid_for(std::max({n_lens, a.batch * a.max_pages, q_n})), 256, 0, stream>>>(
        a.lens, n_lens, capacity, keys, a.num_pages, static_cast<int>(a.batch), keys.lengths, from, a.q, q_n, a.w, w_n,
        v);
    HILO_CUDA_LAUNCHED("check_decode_kernel");
  });
  if (first.any()) return first;
  // The rows are read only once the lengths and the block table are known to be valid.
  return run_checks(stream, [&](Violations* v) {
    check_cache_rows_kernel<<<dim3(64, static_cast<unsigned>(a.batch)), 256, 0, stream>>>(keys, static_cast<int>(a.batch),
                                                                                         from, v);
    HILO_CUDA_LAUNCHED("check_cache_rows_kernel");
  });
}

cudaMemPool_t scratch_pool() {
  static cudaMemPool_t pools[64] = {};
  int device = 0;
  HILO_CUDA_CHECK(cudaGetDevice(&device));
  cudaMemPool_t& pool = pools[device & 63];
  if (!pool) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    HILO_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
    uint64_t keep = ~0ull;
    HILO_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  return pool;
}

size_t& scratch_slab_bytes() {
  static size_t bytes = size_t{32} << 20;
  return bytes;
}

void set_scratch_slab_bytes(std::size_t bytes) { scratch_slab_bytes() = bytes; }

bool& scratch_poison() {
  static bool on = false;
  return on;
}

void set_scratch_poison(bool on) { scratch_poison() = on; }

int64_t scratch_high_water(bool reset) {
  cudaMemPool_t pool = scratch_pool();
  uint64_t value = 0;
  HILO_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &value));
  if (reset) {
    uint64_t zero = 0;
    HILO_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
  }
  return static_cast<int64_t>(value);
}

FlatTuning& flat_tuning() {
  static FlatTuning tuning;
  return tuning;
}

TopkTuning& topk_tuning() {
  static TopkTuning tuning;
  return tuning;
}

void copy_to_host(void* dst, const void* src, std::size_t bytes, void* stream) {
  HILO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(stream)));
  HILO_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  HILO_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  HILO_CUDA_CHECK(cudaMemset(p, 0, bytes == 0 ? 1 : bytes));
  return p;
}

void device_free(void* p) { cudaFree(p); }

void device_zero(void* p, std::size_t bytes, void* stream) {
  HILO_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, as_stream(stream)));
}

}  // namespace hilo::hisa::cuda_detail
