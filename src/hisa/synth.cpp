// Synthetic indexer inputs. Model (docs/hisa.md, "Synthetic data"). Like DeepSeek's indexer, each head dimension
// is split into a content half and a rotary (position) half:
//   key n   = 4 * strength(span) * salience_n * topic[span(n)]   (content half; topics orthonormal)
//             + 0.6 * rope(n)                                      (rotary half)
//             + noise_n                                            (everywhere)
//             token 0 is a strong attention sink; needles are short runs with a direction of their own.
//   query s = sum over the spans its segment attends to of weight(head, span) * topic[span]
//             + local_weight * rope(s) + sink direction (+ a needle's direction) + noise
// rope(n) . rope(s) = mean_p cos(w_p (n - s)), a kernel of the relative distance: a local window. Every random draw
// comes from a counter-based stream (seed, purpose, index), so the data does not depend on threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "hilo/hisa_data.hpp"

namespace hilo::hisa {
namespace {

enum Purpose : uint64_t { kTopics = 1, kSpans, kKeys, kHeads, kSegments, kQueries, kNeedles, kPages };

void random_unit(Stream& s, int D, float* out) {
  double norm = 0;
  for (int d = 0; d < D; ++d) {
    out[d] = static_cast<float>(s.normal());
    norm += double(out[d]) * out[d];
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (int d = 0; d < D; ++d) out[d] *= inv;
}

// Rotary half: pairs of dimensions rotated at log-spaced frequencies (periods kLocalShortest..kLocalLongest tokens).
constexpr double kLocalShortest = 64, kLocalLongest = 4096;

// The shared structure of one sequence.
struct World {
  int D = 0;
  int64_t N = 0;
  // Dimensions: [0, reserved) one-hot sink and needle directions; [reserved, content_dims) topics;
  // [content_dims, D) rotary. Separate subspaces keep the planted signals from leaking into each other.
  int reserved = 0, content_dims = 0;
  std::vector<float> topics, sink, needle_dirs;  // unit vectors
  std::vector<double> omega;                     // rotary frequencies, radians per token
  std::vector<int64_t> span_start;  // ascending, span_start[0] = 0
  std::vector<int> span_topic;
  std::vector<float> span_strength;
  std::vector<int64_t> needle_pos;  // first token of each needle
  int needle_length = 1;

  std::size_t span_at(int64_t n) const {
    return (std::upper_bound(span_start.begin(), span_start.end(), n) - span_start.begin()) - 1;
  }
  int needle_at(int64_t n) const {  // -1 when n is no needle token
    for (std::size_t i = 0; i < needle_pos.size(); ++i)
      if (n >= needle_pos[i] && n < needle_pos[i] + needle_length) return static_cast<int>(i);
    return -1;
  }
  void local(int64_t n, float* out) const {
    std::fill(out, out + D, 0.0f);
    const int pairs = static_cast<int>(omega.size());
    const double norm = 1.0 / std::sqrt(static_cast<double>(std::max(1, pairs)));
    for (int p = 0; p < pairs; ++p) {
      out[content_dims + 2 * p] = static_cast<float>(std::cos(omega[p] * n) * norm);
      out[content_dims + 2 * p + 1] = static_cast<float>(std::sin(omega[p] * n) * norm);
    }
  }
};

World make_world(const SynthConfig& cfg, uint64_t seed, int64_t N) {
  World w;
  w.D = cfg.dim;
  w.N = N;
  const int D = cfg.dim;
  const int pairs = D / 4;  // rotary half: D/4 pairs of dimensions
  w.content_dims = D - 2 * pairs;
  w.reserved = std::min(w.content_dims - 1, 1 + cfg.needles);
  // Topics: orthonormal in the content half (Gram-Schmidt) while there are dimensions for them; beyond that,
  // random unit vectors there (and they overlap).
  const int topic_dims = w.content_dims - w.reserved;
  w.topics.assign(static_cast<std::size_t>(cfg.topics) * D, 0.0f);
  for (int t = 0; t < cfg.topics; ++t) {
    Stream s(seed, kTopics, t);
    float* v = &w.topics[t * D] + w.reserved;
    random_unit(s, topic_dims, v);
    if (t >= topic_dims) continue;
    for (int u = 0; u < t; ++u) {
      const float* b = &w.topics[u * D] + w.reserved;
      double dot = 0;
      for (int d = 0; d < topic_dims; ++d) dot += double(v[d]) * b[d];
      for (int d = 0; d < topic_dims; ++d) v[d] -= static_cast<float>(dot) * b[d];
    }
    double norm = 0;
    for (int d = 0; d < topic_dims; ++d) norm += double(v[d]) * v[d];
    for (int d = 0; d < topic_dims; ++d) v[d] = static_cast<float>(v[d] / std::sqrt(norm));
  }
  for (int p = 0; p < pairs; ++p) {
    const double period = kLocalShortest * std::pow(kLocalLongest / kLocalShortest, p / std::max(1.0, pairs - 1.0));
    w.omega.push_back(2 * std::numbers::pi / period);
  }
  w.sink.assign(D, 0.0f);
  w.sink[0] = 1.0f;
  Stream spans(seed, kSpans, 0);
  const double sigma = 0.7, mu = std::log(cfg.span_mean) - sigma * sigma / 2;
  const double ss = cfg.span_sigma;
  for (int64_t start = 0; start < N;) {
    w.span_start.push_back(start);
    w.span_topic.push_back(static_cast<int>(spans.below(cfg.topics)));
    w.span_strength.push_back(static_cast<float>(std::exp(ss * spans.normal() - ss * ss / 2)));
    start += std::max<int64_t>(16, static_cast<int64_t>(std::exp(mu + sigma * spans.normal())));
  }
  w.needle_dirs.assign(static_cast<std::size_t>(cfg.needles) * D, 0.0f);
  for (int i = 0; i < cfg.needles; ++i) w.needle_dirs[i * D + (w.reserved > 1 ? 1 + i % (w.reserved - 1) : 0)] = 1.0f;
  // Far back (in the first half of the context, never the sink), and never overlapping each other.
  w.needle_length = std::max(1, cfg.needle_length);
  for (int i = 0; i < cfg.needles; ++i) {
    Stream s(seed, kNeedles, i);
    int64_t pos = 0;
    for (int attempt = 0; attempt < 64; ++attempt) {
      pos = std::min<int64_t>(N - 1, 1 + N / 16 + s.below(std::max<int64_t>(1, N / 2 - N / 16)));
      bool clear = true;
      for (int64_t other : w.needle_pos) clear &= pos + w.needle_length <= other || other + w.needle_length <= pos;
      if (clear) break;
    }
    w.needle_pos.push_back(pos);
  }
  return w;
}

void key_row(const World& w, const SynthConfig& cfg, uint64_t seed, int64_t n, float* out) {
  const int D = w.D;
  Stream s(seed, kKeys, n);
  const int needle = w.needle_at(n);
  const float noise = static_cast<float>(cfg.noise / std::sqrt(D));
  if (n == 0) {
    for (int d = 0; d < D; ++d) out[d] = 64.0f * w.sink[d] + noise * static_cast<float>(s.normal());
    return;
  }
  if (needle >= 0) {
    const float* dir = &w.needle_dirs[needle * D];
    for (int d = 0; d < D; ++d) out[d] = 16.0f * dir[d] + noise * static_cast<float>(s.normal());
    return;
  }
  const std::size_t span = w.span_at(n);
  const double ts = cfg.salience_sigma;
  const float salience = w.span_strength[span] * static_cast<float>(std::exp(ts * s.normal() - ts * ts / 2));
  const float* topic = &w.topics[w.span_topic[span] * D];
  w.local(n, out);
  for (int d = 0; d < D; ++d) out[d] = 4.0f * salience * topic[d] + 0.6f * out[d] + noise * static_cast<float>(s.normal());
}

constexpr int kMaxRelevantSpans = 64;

struct HeadMix {
  std::vector<float> topic_weight;  // [H][kMaxRelevantSpans]: how much head h attends to the i-th chosen span
  std::vector<float> local, sink, w;
};

HeadMix make_heads(const SynthConfig& cfg, uint64_t seed) {
  HeadMix m;
  for (int h = 0; h < cfg.heads; ++h) {
    Stream s(seed, kHeads, h);
    for (int j = 0; j < kMaxRelevantSpans; ++j) m.topic_weight.push_back(static_cast<float>(0.3 + 0.7 * s.uniform()));
    m.local.push_back(static_cast<float>(cfg.local_weight * (0.5 + s.uniform())));
    m.sink.push_back(static_cast<float>(1.0 + s.uniform()));
    // Most heads vote for what they match; every eighth votes weakly against it, as learned indexer weights can.
    const double mag = 0.5 + s.uniform();
    m.w.push_back(static_cast<float>((h % 8 == 7 ? -0.3 : 1.0) * mag / std::sqrt(cfg.heads)));
  }
  return m;
}

// The f32 query [H][D] of the token at `position`; returns the needle it looks for (-1 if none).
int query_rows(const World& world, const HeadMix& heads, const SynthConfig& cfg, uint64_t seed, int64_t position,
               float* out) {
  const int D = world.D, H = cfg.heads;
  const int64_t segment = position / cfg.query_segment;
  Stream seg(seed, kSegments, segment);
  // The passages this segment attends to: the topics of random earlier spans, while every span of the chosen
  // topics (a topic can recur) fits in relevant_tokens together.
  std::vector<int> topics;
  const int64_t spans_before =
      std::upper_bound(world.span_start.begin(), world.span_start.end(), position) - world.span_start.begin();
  auto topic_tokens = [&](int topic) {  // tokens of `topic` before `position`
    int64_t total = 0;
    for (int64_t i = 0; i < spans_before; ++i) {
      if (world.span_topic[i] != topic) continue;
      const int64_t end = i + 1 < static_cast<int64_t>(world.span_start.size()) ? world.span_start[i + 1] : world.N;
      total += std::min(end, position) - world.span_start[i];
    }
    return total;
  };
  // Random topics that fit the budget first; then, while under half of it, the smallest remaining ones (so the
  // relevant content is never much smaller than the budget either).
  int64_t covered = 0;
  std::vector<std::pair<int64_t, int>> skipped;  // (tokens, topic)
  for (int tries = 0; tries < 4 * kMaxRelevantSpans && topics.size() < kMaxRelevantSpans; ++tries) {
    const int topic = world.span_topic[seg.below(spans_before)];
    if (std::find(topics.begin(), topics.end(), topic) != topics.end()) continue;
    const int64_t tokens = topic_tokens(topic);
    if (covered + tokens > cfg.relevant_tokens) {
      skipped.push_back({tokens, topic});
      continue;
    }
    topics.push_back(topic);
    covered += tokens;
  }
  std::sort(skipped.begin(), skipped.end());
  for (const auto& [tokens, topic] : skipped) {
    if (covered >= cfg.relevant_tokens / 2 || topics.size() >= kMaxRelevantSpans) break;
    if (std::find(topics.begin(), topics.end(), topic) != topics.end()) continue;
    topics.push_back(topic);
    covered += tokens;
  }
  // How much the segment cares about each chosen topic (heads then vary around it).
  std::vector<float> emphasis;
  for (std::size_t j = 0; j < topics.size(); ++j) emphasis.push_back(static_cast<float>(std::exp(0.5 * seg.normal())));
  // A weak affinity to every topic: the tail of the ranking follows spans (blocky), not token noise.
  std::vector<float> background(D, 0.0f);
  for (int t = 0; t < cfg.topics; ++t) {
    const float b = static_cast<float>(cfg.background * seg.normal());
    for (int d = 0; d < D; ++d) background[d] += b * world.topics[t * D + d];
  }
  int needle = -1;
  if (cfg.needles > 0 && seg.uniform() < cfg.needle_fraction) {
    needle = static_cast<int>(seg.below(cfg.needles));
    if (world.needle_pos[needle] + world.needle_length > position) needle = -1;
  }
  std::vector<float> local(D);
  world.local(position, local.data());
  Stream s(seed, kQueries, position);
  const float noise = static_cast<float>(0.3 / std::sqrt(D));
  for (int h = 0; h < H; ++h) {
    float* q = out + static_cast<long>(h) * D;
    for (int d = 0; d < D; ++d)
      q[d] = heads.local[h] * local[d] + heads.sink[h] * world.sink[d] + background[d] +
             noise * static_cast<float>(s.normal());
    for (std::size_t j = 0; j < topics.size(); ++j)
      for (int d = 0; d < D; ++d)
        q[d] += emphasis[j] * heads.topic_weight[h * kMaxRelevantSpans + j] * world.topics[topics[j] * D + d];
    if (needle >= 0)
      for (int d = 0; d < D; ++d) q[d] += 4.0f * world.needle_dirs[needle * D + d];
  }
  return needle;
}

PooledFormat row_format(DType t) {
  return t == DType::F8_E4M3 ? PooledFormat::FP8 : t == DType::BF16 ? PooledFormat::BF16 : PooledFormat::F32;
}

// Encodes query rows: fp8 gets one scale per (row, head), folded into w together with 1/sqrt(D).
void encode_query(const float* q, const HeadMix& heads, const SynthConfig& cfg, void* codes, float* w) {
  const int D = cfg.dim;
  const std::size_t esize = dtype_size(cfg.dtype);
  for (int h = 0; h < cfg.heads; ++h) {
    const float scale =
        encode_pooled_row(q + static_cast<long>(h) * D, D, row_format(cfg.dtype), static_cast<uint8_t*>(codes) + h * D * esize);
    w[h] = heads.w[h] * scale / std::sqrt(static_cast<float>(D));
  }
}

void check_config(const SynthConfig& cfg) {
  HILO_CHECK(cfg.context >= 1, "synth: context = {} must be positive", cfg.context);
  HILO_CHECK(cfg.context <= std::numeric_limits<int32_t>::max(), "synth: context = {} exceeds int32", cfg.context);
  HILO_CHECK(cfg.heads >= 1 && cfg.dim >= 1, "synth: heads = {} and dim = {} must be positive", cfg.heads, cfg.dim);
  HILO_CHECK(cfg.dtype == DType::F8_E4M3 || cfg.dtype == DType::BF16 || cfg.dtype == DType::F32,
             "synth: dtype {} is not one of F8_E4M3, BF16, F32", dtype_name(cfg.dtype));
  HILO_CHECK(cfg.topics >= 1 && cfg.relevant_tokens >= 1 && cfg.query_segment >= 1,
             "synth: topics, relevant_tokens and query_segment must be positive");
  HILO_CHECK(cfg.span_mean >= 1, "synth: span_mean = {} must be >= 1", cfg.span_mean);
  HILO_CHECK(cfg.needles >= 0, "synth: needles = {} must be >= 0", cfg.needles);
}

// Generates keys [N, D] (codes) and their scales for one sequence.
void make_keys(const World& world, const SynthConfig& cfg, uint64_t seed, uint8_t* codes, float* scales) {
  const int D = cfg.dim;
  const std::size_t row_bytes = D * dtype_size(cfg.dtype);
  parallel_for((world.N + 1023) / 1024, 0, [&](int64_t chunk) {
    std::vector<float> row(D);
    for (int64_t n = chunk * 1024; n < std::min(world.N, (chunk + 1) * 1024); ++n) {
      key_row(world, cfg, seed, n, row.data());
      scales[n] = encode_pooled_row(row.data(), D, row_format(cfg.dtype), codes + n * row_bytes);
    }
  });
}

}  // namespace

PrefillProblem make_prefill_problem(const SynthConfig& cfg) {
  check_config(cfg);
  HILO_CHECK(cfg.queries >= 1 && cfg.queries <= cfg.context, "synth: queries = {} must be in [1, context = {}]",
             cfg.queries, cfg.context);
  const int64_t N = cfg.context, S = cfg.queries;
  const int H = cfg.heads, D = cfg.dim;
  const World world = make_world(cfg, cfg.seed, N);
  const HeadMix heads = make_heads(cfg, cfg.seed);
  PrefillProblem p{Tensor(cfg.dtype, {S, H, D}), Tensor(DType::F32, {S, H}), Tensor(cfg.dtype, {N, D}),
                   Tensor(DType::F32, {N}),      Tensor(DType::I32, {S}),    Tensor(DType::I32, {S}), {}};
  make_keys(world, cfg, cfg.seed, static_cast<uint8_t*>(p.k.view().data()), p.k_scale.ptr<float>());
  std::vector<int> needle_of(S);
  const std::size_t q_row_bytes = static_cast<std::size_t>(H) * D * dtype_size(cfg.dtype);
  parallel_for(S, 0, [&](int64_t i) {
    std::vector<float> q(static_cast<std::size_t>(H) * D);
    const int64_t position = N - S + i;
    needle_of[i] = query_rows(world, heads, cfg, cfg.seed, position, q.data());
    encode_query(q.data(), heads, cfg, static_cast<uint8_t*>(p.q.view().data()) + i * q_row_bytes,
                 p.w.ptr<float>() + i * H);
    p.ks.ptr<int32_t>()[i] = 0;
    p.ke.ptr<int32_t>()[i] = static_cast<int32_t>(position + 1);
  });
  for (int64_t i = 0; i < S; ++i)
    if (needle_of[i] >= 0)
      for (int t = 0; t < world.needle_length; ++t) p.needles.push_back({i, world.needle_pos[needle_of[i]] + t});
  return p;
}

DecodeProblem make_decode_problem(const SynthConfig& cfg, int batch, int next_n) {
  check_config(cfg);
  HILO_CHECK(batch >= 1, "synth: batch = {} must be positive", batch);
  HILO_CHECK(next_n >= 1 && next_n <= cfg.context, "synth: next_n = {} must be in [1, context = {}]", next_n,
             cfg.context);
  const int64_t N = cfg.context;
  const int H = cfg.heads, D = cfg.dim;
  const int64_t pages_per_request = (N + kPageSize - 1) / kPageSize;
  const int64_t num_pages = pages_per_request * batch;
  DecodeProblem p{Tensor(cfg.dtype, {batch, next_n, H, D}), Tensor(DType::F32, {int64_t{batch} * next_n, H}),
                  Tensor(DType::U8, {num_pages, kPageSize, D + 4}), Tensor(DType::I32, {batch, pages_per_request}),
                  Tensor(DType::I32, {batch}), {}};
  // Pages of all requests, shuffled, so block tables are not the identity.
  std::vector<int32_t> pages(num_pages);
  for (int64_t i = 0; i < num_pages; ++i) pages[i] = static_cast<int32_t>(i);
  Stream shuffle(cfg.seed, kPages, 0);
  for (int64_t i = num_pages - 1; i > 0; --i) std::swap(pages[i], pages[shuffle.below(i + 1)]);
  std::copy(pages.begin(), pages.end(), p.block_table.ptr<int32_t>());

  // Keys are always fp8 in the paged cache (DeepGEMM's layout); q follows cfg.dtype.
  SynthConfig key_cfg = cfg;
  key_cfg.dtype = DType::F8_E4M3;
  auto* cache = static_cast<uint8_t*>(p.kv_cache.view().data());
  const std::size_t page_bytes = static_cast<std::size_t>(kPageSize) * (D + 4);
  const std::size_t q_row_bytes = static_cast<std::size_t>(H) * D * dtype_size(cfg.dtype);
  for (int r = 0; r < batch; ++r) {
    const uint64_t seed = mix(cfg.seed + 0x1000 * (r + 1));
    const World world = make_world(cfg, seed, N);
    const HeadMix heads = make_heads(cfg, seed);
    Tensor codes(DType::F8_E4M3, {N, D}), scales(DType::F32, {N});
    make_keys(world, key_cfg, seed, static_cast<uint8_t*>(codes.view().data()), scales.ptr<float>());
    for (int64_t pos = 0; pos < N; ++pos) {
      uint8_t* page = cache + p.block_table.ptr<int32_t>()[r * pages_per_request + pos / kPageSize] * page_bytes;
      std::memcpy(page + (pos % kPageSize) * D, static_cast<uint8_t*>(codes.view().data()) + pos * D, D);
      std::memcpy(page + kPageSize * D + (pos % kPageSize) * 4, scales.ptr<float>() + pos, 4);
    }
    p.context_lens.ptr<int32_t>()[r] = static_cast<int32_t>(N);
    std::vector<float> q(static_cast<std::size_t>(H) * D);
    for (int j = 0; j < next_n; ++j) {
      const int64_t row = int64_t{r} * next_n + j;
      const int64_t position = N - next_n + j;
      const int needle = query_rows(world, heads, cfg, seed, position, q.data());
      encode_query(q.data(), heads, cfg, static_cast<uint8_t*>(p.q.view().data()) + row * q_row_bytes,
                   p.w.ptr<float>() + row * H);
      if (needle >= 0)
        for (int t = 0; t < world.needle_length; ++t) p.needles.push_back({row, world.needle_pos[needle] + t});
    }
  }
  return p;
}

}  // namespace hilo::hisa
