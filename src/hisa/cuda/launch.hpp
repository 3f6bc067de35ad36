// The CUDA path's internal interface: plain structs of device pointers and the launchers that run a whole call on
// a stream. No CUDA or fmt headers: the public API (api.cpp, compiled by the host compiler) checks the arguments,
// calls these and turns reported violations into hilo::Error messages; the .cu files hold kernels and launchers.
#pragma once

#include <cstdint>

#include "hilo/hisa.hpp"

namespace hilo::hisa::cuda_detail {

constexpr int kDim = 128;         // head dimension the kernels are built for
constexpr int kMaxTopk = 4096;
constexpr int kTileRows = 16;     // query rows that share key loads in a CTA
constexpr int kUnionSort = 2048;  // tile_rows * kept blocks per row must fit
constexpr int kKeysPerWarp = 64;

// First offending index of each value check (ULLONG_MAX: none). For cache rows: request << 40 | position.
struct Violations {
  unsigned long long range, q, w, k, k_scale, table, lens;
  bool any() const;
};
constexpr Violations kNoViolations{~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull};

struct PrefillArgs {
  const uint8_t* q;  // [S, H, 128] fp8
  const float* w;    // [S, H]
  const uint8_t* k;  // [N, 128] fp8
  const float* k_scale;
  const int32_t* ks;
  const int32_t* ke;
  int64_t S, H, N;
};

struct HisaArgs {
  int block, blocks_kept, topk;
  bool sorted;
};

struct DecodeArgs {
  const uint8_t* q;  // [batch, next_n, H, 128] fp8
  const float* w;    // [batch * next_n, H]
  const uint8_t* cache;
  const int32_t* table;
  const int32_t* lens;
  int64_t batch, next_n, H, num_pages, max_pages;
  bool per_token_lens;
  int32_t* positions;  // may be null
  int32_t* slots;      // may be null
};

struct PooledCacheArgs {
  uint8_t* codes;
  float* scales;
  int32_t* lengths;
  int max_blocks;
};

// Each runs its validation kernels first when `check` (IndexerOptions::check_finite: ranges, block table, NaN/Inf),
// waits for them and returns their findings without computing anything if one failed. Without it nothing is
// checked and nothing synchronises.
Violations flat_prefill(const PrefillArgs& a, int topk, bool sorted, bool check, int32_t* idx, void* stream);
Violations hisa_prefill(const PrefillArgs& a, const HisaArgs& h, bool check, int32_t* idx, void* stream,
                        HisaStats* stats);
Violations flat_decode(const DecodeArgs& a, int topk, bool sorted, bool check, void* stream);
Violations hisa_decode(const DecodeArgs& a, const HisaArgs& h, const PooledCacheArgs& cache, bool check,
                       void* stream, HisaStats* stats);
void topk_rows(const float* scores, int64_t rows, int64_t len, int k, bool sorted, int32_t* out, void* stream);
void pool_keys(const uint8_t* k, const float* k_scale, int64_t N, int block, uint8_t* codes, float* scale,
               void* stream);

// Sizes that pick the flat indexer's strategy (tests shrink them to exercise every path on small inputs).
struct FlatTuning {
  int64_t single_pass_bytes = 128ll << 20;  // score all keys of all rows at once up to this many bytes of scores
  int64_t chunk_budget_bytes = 64ll << 20;  // else: chunk scores of a row block (about L2-sized)
  // Keys per merged chunk. 32K measured 2-7% faster than 16K on an H100 (chunk 64K / 128K, causal 64K; each pair in
  // one call, two calls, 2026-12-06): half the merges, each a longer row; the row block becomes 512 rows (still 512
  // scoring CTAs).
  int64_t chunk_keys = 32768;
  bool wgmma = true;  // on sm_90a devices: flat dense keys and HISA's token stage score with wgmma (false: mma.sync)
  // The wgmma scoring kernels' wide shape (WgShape in score_wgmma.cuh: four warpgroups with banks of N = 64 instead
  // of two with N = 128). Written 2026-12-06 without device time left: compiled, never run, so off.
  bool wide_mainloop = false;
  // HISA's tile unions by one sort of (block, row) pairs and a block scan (tile_union_pairs_kernel) instead of a
  // serial deduplication and binary searches in global memory (tile_union_kernel): the same bytes, ~2.3 ms less of
  // 32.5 ms at causal 64K on an H100 (2026-12-05). false keeps the first kernel for A/B and as the tests' reference.
  bool pair_union = true;
};
FlatTuning& flat_tuning();

// Top-k strategy switches (benchmarks compare them; tests exercise both).
struct TopkTuning {
  // Rows split into segments of this length, per-segment winners then a merge (0: never split; -1: automatic).
  int64_t segment = -1;
  // CTAs per row (a thread-block cluster) for rows that are not split: 1..8, or -1: automatic. The automatic
  // choice of both: automatic_topk_split in topk_launch.cuh.
  int cluster = -1;
  // Unsorted rows of at most 8192 elements go to the short-row kernel (topk_short.cuh); false: never.
  bool short_rows = true;
  // Unsorted rows of at most 1024 elements into a sink that can finish in a warp (HISA's block top-k, short decode
  // rows, topk_rows) go to the tiny-row kernel, a warp per row (topk_tiny.cuh); false: never.
  bool tiny_rows = true;
  // The automatic rule before 2026-11-28, kept for same-process A/B measurements (bench_hisa_cuda's decode part).
  bool legacy_cluster_rule = false;
  // Rows stored as contiguous, 16-byte aligned f32 values are read with 16-byte loads (false: element by element,
  // for A/B runs; the output is the same).
  bool vector_loads = true;
  // A merge whose running top-k is full reads its row once: every candidate (above the k-th key so far) into shared
  // memory, the selection there; a second, two-pass read only when more than 4096 turned up (false: always two
  // passes, for A/B runs; the output is the same).
  bool one_read = true;
  // Sources of many medium rows (the flat indexer's merges) run the general kernel at 2 CTAs per SM (64 registers)
  // instead of 1 (false: 1, for A/B runs).
  bool two_ctas = true;
};
TopkTuning& topk_tuning();

// Smallest scratch slab in bytes (0: one allocation per buffer); benchmarks compare the two.
void set_scratch_slab_bytes(std::size_t bytes);
// Tests: fill every scratch slab with 0x7F bytes as it is handed out (f32 3.4e38, int32 2139062143), so that reading
// an entry nothing wrote shows in the output.
void set_scratch_poison(bool on);
// Peak bytes of hilo's scratch pool on the current device since the last reset (benchmarks).
int64_t scratch_high_water(bool reset);

// Device memory helpers for the API layer.
void copy_to_host(void* dst, const void* src, std::size_t bytes, void* stream);  // waits
void* device_alloc(std::size_t bytes);                                           // zero-filled
void device_free(void* p);
void device_zero(void* p, std::size_t bytes, void* stream);

}  // namespace hilo::hisa::cuda_detail
