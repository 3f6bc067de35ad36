// Argument checks shared by the reference, the fast CPU path and (later) the CUDA path, so all refuse the same
// inputs with the same messages.
#pragma once

#include <string_view>

#include "hilo/hisa.hpp"

namespace hilo::hisa::detail {

struct PrefillShape {
  int64_t S, H, D, N;
};

struct DecodeShape {
  int64_t batch, next_n, H, D, num_pages, max_pages;
  bool per_token_lens;  // context_lens is [batch, next_n]
};

// Shapes, dtypes, contiguity and options of a prefill call, for tensors on `device` (no data is read).
PrefillShape check_prefill_layout(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx,
                                  std::string_view where, DeviceKind device);
// The layout checks, then the values (ranges; NaN/Inf with opt.check_finite) of host tensors.
PrefillShape check_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx,
                           std::string_view where);
// The messages of the value checks, shared with the CUDA path (whose validation kernel finds the index).
[[noreturn]] void fail_range(std::string_view where, int64_t i, int64_t ks, int64_t ke, int64_t N);
[[noreturn]] void fail_nonfinite(std::string_view where, std::string_view name, const Shape& shape, int64_t index,
                                 float value);
// block_only: stage 1 alone, which needs blocks_kept * block <= topk instead of >=.
void check_hisa_options(const HisaOptions& opt, std::string_view where, bool block_only = false);
// Shapes, dtypes, contiguity and options of a decode call, for tensors on `device` (no data is read).
DecodeShape check_decode_layout(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out,
                                std::string_view where, DeviceKind device);
// With scan_cache, every visible key of the paged cache is checked for NaN/Inf here (the reference does this).
// The fast paths pass false and check each key where they first read it (packing, pooled-cache appends), so a
// decode step costs no extra pass over the whole cache.
DecodeShape check_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out,
                         std::string_view where, bool scan_cache);
// Fails naming request r and position pos if a cache row's codes or scale are not finite.
void check_cache_row(const uint8_t* codes, float scale, int64_t D, std::string_view where, int64_t r, int64_t pos);

// Visible length of decode row (r, j).
int64_t decode_visible(const DecodeInputs& in, const DecodeShape& shape, int64_t r, int64_t j);
// The largest visible length of request r (what its pooled keys must cover).
int64_t decode_request_length(const DecodeInputs& in, const DecodeShape& shape, int64_t r);

// Index of the first NaN/Inf among n elements of F32, BF16 or F8_E4M3 data, or -1.
int64_t first_nonfinite(const void* data, DType dtype, int64_t n);
// Refuses NaN/Inf anywhere in a floating tensor of F32, BF16 or F8_E4M3 (host, contiguous).
void check_finite(const TensorView& t, std::string_view where, std::string_view name);

}  // namespace hilo::hisa::detail
