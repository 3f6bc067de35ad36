// Synthetic indexer inputs with the structure of real long-context attention, and the overlap metrics used to
// judge HISA against the flat indexer. See docs/hisa.md ("Synthetic data") for the model.
#pragma once

#include <cstdint>
#include <vector>

#include "hilo/hisa.hpp"

namespace hilo::hisa {

struct SynthConfig {
  int64_t context = 65536;  // keys (prefill: one causal sequence; decode: per request)
  int64_t queries = 256;    // prefill: the last `queries` positions of the sequence
  int heads = 64;
  int dim = 128;
  DType dtype = DType::F8_E4M3;  // of q and k: F8_E4M3 (per-row scales), BF16 or F32
  uint64_t seed = 0;
  // Structure of the keys and queries.
  int topics = 48;                  // distinct topic directions
  double span_mean = 512;         // mean length of a topical span (log-normal)
  double span_sigma = 0.25;        // log-normal spread of how strongly a whole span carries its topic
  double salience_sigma = 0.3;    // log-normal spread of how strongly a token carries its span's topic
  int64_t relevant_tokens = 4096; // a query segment attends to earlier spans covering about this many tokens
  int query_segment = 64;         // consecutive queries share their topics
  double background = 0.0;        // spread of a query segment's weak affinity to every topic
  double noise = 0.5;             // per-token noise, relative to the topic signal
  double local_weight = 0.9;      // weight of the relative-position (local window) component in queries
  int needles = 8;                // planted needles: short runs of tokens far back that some queries look for
  int needle_length = 16;         // tokens per needle
  double needle_fraction = 0.25;  // fraction of query segments that look for a needle
};

// One (query row, needle token) pair: recall counts the pairs found.
struct Needle {
  int64_t row;       // query row that looks for it
  int64_t position;  // key position of one token of the needle (absolute)
};

struct PrefillProblem {
  Tensor q, w, k, k_scale, ks, ke;
  std::vector<Needle> needles;
  PrefillInputs inputs() const { return {q, w, k, k_scale, ks, ke}; }
};

// Decode: `batch` requests of `context` tokens each in a paged cache with shuffled pages, next_n query rows each.
struct DecodeProblem {
  Tensor q, w, kv_cache, block_table, context_lens;
  std::vector<Needle> needles;  // row = r * next_n + j
  DecodeInputs inputs() const { return {q, w, kv_cache, block_table, context_lens}; }
};

PrefillProblem make_prefill_problem(const SynthConfig& cfg);
DecodeProblem make_decode_problem(const SynthConfig& cfg, int batch, int next_n);

struct Overlap {
  double mean = 0, min = 0;
};
// Per-row IoU |A n B| / |A u B| of two index tensors [rows, topk] (I32, -1 = unused); two empty rows count as 1.
Overlap iou(const TensorView& a, const TensorView& b);
// Fraction of needles found in `idx`; idx[row] holds positions relative to base[row] (ks for prefill, 0 for decode).
double needle_recall(const TensorView& idx, const std::vector<Needle>& needles, const std::vector<int64_t>& base);

}  // namespace hilo::hisa
