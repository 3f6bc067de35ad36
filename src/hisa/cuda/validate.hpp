// Device-side value checks (validate.cu), used by the launchers before they compute.
#pragma once

#include "launch.hpp"
#include "runtime.cuh"
#include "score_keys.cuh"

namespace hilo::hisa::cuda_detail {

// Ranges and NaN/Inf of q, w, k, k_scale.
Violations check_prefill_values(const PrefillArgs& a, cudaStream_t stream);
// Lengths, block table, q, w; then the cache rows [from[r], keys.lengths[r]) (from = nullptr: all).
Violations check_decode_values(const DecodeArgs& a, const PagedKeys& keys, const int32_t* from, cudaStream_t stream);

}  // namespace hilo::hisa::cuda_detail
