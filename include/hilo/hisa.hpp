// HISA (hierarchical indexed sparse attention) and the flat DSA "lightning indexer" it replaces.
// Semantics: docs/hisa.md (and ../shared/docs/hisa-spec.md). In short, for query s and key n in [ks[s], ke[s]):
//
//   I[s, n] = sum_h  w[s,h] * relu( dot(q[s,h,:], k[n,:]) * k_scale[n] )
//
// and each output row holds the topk n with the largest I (ties: smaller n first), as n - ks[s], -1 padded.
// Exact arithmetic (shared by every CPU path, so they agree bit for bit): inputs are widened to f32 exactly;
// dot = fma chain over d = 0..D-1 starting at 0; logit = dot * k_scale (f32); r = logit > 0 ? logit : 0;
// I = fma chain over h = 0..H-1 of w[h] * r starting at 0. Rows are ordered by (I desc, n asc) when `sorted`;
// otherwise their order is unspecified (the CPU returns ascending n).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hilo/tensor.hpp"

namespace hilo::hisa {

// Prefill inputs (host, contiguous). DeepSeek-V3.2 sizes: H = 64, D = 128.
struct PrefillInputs {
  TensorView q;        // [S, H, D]  F8_E4M3 | BF16 | F32
  TensorView w;        // [S, H]     F32, q scale and 1/sqrt(D) folded in
  TensorView k;        // [N, D]     F8_E4M3 | BF16 | F32
  TensorView k_scale;  // [N]        F32 (1.0 for BF16/F32 keys)
  TensorView ks;       // [S]        I32, first visible key of query s
  TensorView ke;       // [S]        I32, one past the last visible key
};

struct IndexerOptions {
  int topk = 2048;
  bool sorted = false;       // order each row by score (desc), ties by position (asc)
  int threads = 0;           // 0: every hardware thread
  bool check_finite = true;  // refuse NaN/Inf in q, w, keys and scales (error names the tensor and index)
  std::function<void(double)> progress;  // optional, called on the calling thread with the fraction done
};

// How pooled block keys are stored. FP8 (default) quantises each pooled row like a key: scale = amax/448,
// code = e4m3(x / scale) (scale 1 and zero codes for an all-zero row). BF16/F32 keep the mean with scale 1.
enum class PooledFormat { FP8, BF16, F32 };
std::string to_string(PooledFormat f);
PooledFormat parse_pooled_format(const std::string& name);

struct HisaOptions : IndexerOptions {
  int block = 128;       // B: keys per block, blocks aligned to absolute key row 0
  int blocks_kept = 64;  // m: blocks kept per query (first and last eligible block always among them)
  PooledFormat pooled = PooledFormat::FP8;
};

// Where HISA's time went and how much key traffic the query tiles shared (filled by the fast CPU path).
struct HisaStats {
  double pool_ms = 0, block_ms = 0, token_ms = 0;  // wall time of the three stages
  double mean_blocks_kept = 0;                     // per query, after selection
  double mean_tile_union_blocks = 0;               // distinct blocks a query tile scores
  double mean_tile_queries = 0;                    // queries per tile
  double mean_blocks_scored = 0;                   // pooled blocks scored per query in the block stage
  double mean_candidates = 0;                      // tokens scored per query in the token stage
};

// Pooled block keys: block b holds the mean of k[n] * k_scale[n] (f32, summed in order of n, divided by the
// number of rows that exist) over rows [bB, min((b+1)B, N)).
struct PooledKeys {
  Tensor codes;  // [num_blocks, D] F8_E4M3 | BF16 | F32
  Tensor scale;  // [num_blocks] F32
  int block = 128;
  PooledFormat format = PooledFormat::FP8;
};
PooledKeys pool_keys(const TensorView& k, const TensorView& k_scale, int block, PooledFormat format);
// Quantises one pooled row `mean[0..D)` into `codes` in the given format; returns its scale.
float encode_pooled_row(const float* mean, int D, PooledFormat format, void* codes);

// The flat indexer: idx [S, topk] I32.
void flat_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx);
// HISA: block scores on pooled keys, keep m blocks (first and last forced), exact top-k inside them.
void hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx, HisaStats* stats = nullptr);
// Stage 1 alone (for measuring how much the token stage adds): keep opt.blocks_kept blocks with HISA's rule and
// return every visible token in them, up to topk, in ascending position; -1 padded. Needs blocks_kept*block <= topk.
void block_only_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx);

// ---- Decode over a paged KV cache (DeepGEMM's SM90 layout) ----
constexpr int kPageSize = 64;

// kv_cache [num_pages, 64, D + 4] U8: each page holds 64 fp8 key rows (64*D bytes), then their 64 f32 scales.
// Query j of request r sees positions [0, L - next_n + j + 1) with L = context_lens[r] ([batch]); with
// context_lens of shape [batch, next_n] it sees [0, context_lens[r, j]).
struct DecodeInputs {
  TensorView q;             // [batch, next_n, H, D]  F8_E4M3 | BF16 | F32
  TensorView w;             // [batch * next_n, H]    F32
  TensorView kv_cache;      // [num_pages, 64, D + 4] U8
  TensorView block_table;   // [batch, max_pages]     I32
  TensorView context_lens;  // [batch] or [batch, next_n] I32
};

// Row i = r * next_n + j. positions: token positions within the request; slots: page * 64 + offset (FlashMLA's
// sparse decode); -1 marks unused entries in both. Either may be empty (not written).
struct DecodeOutputs {
  TensorView positions;  // [batch * next_n, topk] I32
  TensorView slots;      // [batch * next_n, topk] I32
};

// Pooled keys of every request of a paged cache, maintained as tokens are appended: a completed block is pooled
// once; the tail block keeps its running f32 sum and is re-encoded in place. Equal to pool_keys() over the
// request's keys at every length.
class PooledKeyCache {
 public:
  explicit PooledKeyCache(int head_dim, int block = 128, PooledFormat format = PooledFormat::FP8);

  // Pools the tokens of `request` from its last pooled length up to `length`, reading the paged cache through
  // `block_table_row` (max_pages entries). A length below the pooled one restarts the request (slot reuse).
  void update(int request, const TensorView& kv_cache, const int32_t* block_table_row, int64_t max_pages,
              int64_t length);
  void reset(int request);
  int64_t length(int request) const;
  int64_t num_blocks(int request) const;
  // Pooled rows of a request: codes [num_blocks, D] in format(), scales [num_blocks].
  TensorView codes(int request) const;
  TensorView scales(int request) const;
  int head_dim() const { return head_dim_; }
  int block() const { return block_; }
  PooledFormat format() const { return format_; }

 private:
  struct Request {
    int64_t length = 0;
    std::vector<uint8_t> codes;  // num_blocks * D * element size
    std::vector<float> scales;
    std::vector<float> tail_sum;  // running sum of the incomplete tail block
  };
  Request& slot(int request);
  int head_dim_, block_;
  PooledFormat format_;
  std::vector<Request> requests_;
};

void flat_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out);
// Brings `cache` up to date with context_lens, then runs HISA on the cached pooled keys.
void hisa_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt, const DecodeOutputs& out,
                 HisaStats* stats = nullptr);
// Stage 1 alone for decode (see block_only_prefill).
void block_only_decode(const DecodeInputs& in, PooledKeyCache& cache, const HisaOptions& opt,
                       const DecodeOutputs& out);

// The CPU scoring kernel in use: "avx512" or "portable".
const char* cpu_kernel();

// Plain implementations: the oracle every fast path is tested against. Same signatures, same checks.
namespace reference {
void flat_prefill(const PrefillInputs& in, const IndexerOptions& opt, const TensorView& idx);
void hisa_prefill(const PrefillInputs& in, const HisaOptions& opt, const TensorView& idx);
void flat_decode(const DecodeInputs& in, const IndexerOptions& opt, const DecodeOutputs& out);
void hisa_decode(const DecodeInputs& in, const HisaOptions& opt, const DecodeOutputs& out);
// The score of one (query, key) pair with the exact arithmetic above; q [H][D], key [D] already widened to f32.
float score(const float* q, const float* w, int H, int D, const float* key, float key_scale);
}  // namespace reference

}  // namespace hilo::hisa
