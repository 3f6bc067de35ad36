// HISA and the flat DSA indexer on NVIDIA GPUs (Hopper and newer: fp8 tensor cores). Same semantics as hisa.hpp,
// except that the dot products accumulate in the tensor cores' order, so scores differ from the CPU's by rounding
// and the top-k sets can differ where scores tie within that rounding (docs/hisa.md, "GPU").
//
// Tensors are TensorViews on one CUDA device (Device{DeviceKind::CUDA, i}), contiguous. Work is queued on `stream`
// (a cudaStream_t; nullptr = the default stream). With opt.check_finite (default) the inputs' values are checked
// on the device first (ranges, NaN/Inf, block-table entries) and the call waits for that check: one
// synchronisation, and the same error messages as the CPU. Without it nothing waits (CUDA graphs, serving loops)
// and the caller vouches for the inputs. This header includes no CUDA headers.
#pragma once

#include <cstdint>
#include <memory>

#include "hilo/hisa.hpp"

namespace hilo::hisa::cuda {

// Requirements of the CUDA path: q and k F8_E4M3, head dim 128, heads in {16, 32, 48, 64}, topk <= 4096.
void flat_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx, void* stream = nullptr);
void hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx, void* stream = nullptr,
                  HisaStats* stats = nullptr);

// Pooled keys of a paged cache on the device, for HISA decode: [max_batch, max_blocks] pooled rows (fp8 + scale)
// kept up to date with each request's length. A block is (re)pooled from its rows whenever tokens reach it, so the
// rows always equal hisa::pool_keys over the request's keys, bit for bit.
class PooledKeyCache {
 public:
  PooledKeyCache(int device, int max_batch, int max_blocks, int block = 128, int head_dim = 128);
  ~PooledKeyCache();
  PooledKeyCache(const PooledKeyCache&) = delete;
  PooledKeyCache& operator=(const PooledKeyCache&) = delete;
  int block() const { return block_; }
  int max_batch() const { return max_batch_; }
  int max_blocks() const { return max_blocks_; }
  // Device views for tests: codes [max_batch, max_blocks, 128] F8_E4M3, scales [max_batch, max_blocks], lengths
  // [max_batch] I32 (tokens pooled per request).
  TensorView codes() const;
  TensorView scales() const;
  TensorView lengths() const;
  void reset(void* stream = nullptr);  // forget every request (lengths to 0)

 private:
  int device_, max_batch_, max_blocks_, block_;
  void* codes_ = nullptr;
  void* scales_ = nullptr;
  void* lengths_ = nullptr;
};

void flat_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out, void* stream = nullptr);
void hisa_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt, const DecodeOutputs& out,
                 void* stream = nullptr, HisaStats* stats = nullptr);

// Top-k of each row of scores [R, L] F32 -> out [R, k] I32 (ascending positions, -1 padded; ties to the smaller
// position; NaN never selected). k <= 4096.
void topk_rows(const TensorView& scores, int k, const TensorView& out, bool sorted = false, void* stream = nullptr);

// Pooled block keys of a device K (what hisa_prefill scores in stage 1): codes [NB, 128] F8_E4M3, scale [NB] F32.
void pool_keys(const TensorView& k, const TensorView& k_scale, int block, const TensorView& codes,
               const TensorView& scale, void* stream = nullptr);

}  // namespace hilo::hisa::cuda
