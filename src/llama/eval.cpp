// Perplexity and KL divergence over non-overlapping windows. Per-prediction values are computed in f64 from the
// f32 logits and summed in a fixed order, so results do not depend on the thread count.
#include "hilo/eval.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "hilo/safetensors.hpp"

namespace hilo::eval {
namespace {
constexpr int64_t kLogitRows = 64;  // logits exist for this many positions at a time ([rows, vocab] f32)

// log-sum-exp of one row of logits (f64).
double log_sum_exp(const float* row, int64_t vocab) {
  const float mx = *std::max_element(row, row + vocab);
  double s = 0;
  for (int64_t j = 0; j < vocab; ++j) s += std::exp(static_cast<double>(row[j]) - mx);
  return mx + std::log(s);
}

int32_t argmax(const float* row, int64_t vocab) {  // the first index of the maximum
  return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
}

// KL(p || q) for p = softmax(a), q = softmax(b), given both log-sum-exps.
double kl_row(const float* a, double lse_a, const float* b, double lse_b, int64_t vocab) {
  double kl = 0;
  for (int64_t j = 0; j < vocab; ++j) {
    const double lpa = a[j] - lse_a, lpb = b[j] - lse_b;
    kl += std::exp(lpa) * (lpa - lpb);
  }
  return std::max(kl, 0.0);  // rounding can leave a tiny negative for identical rows
}

// Per-prediction values of models[0] (the base) and, against it, of every other model.
struct PerPrediction {
  std::vector<std::vector<double>> nll;     // [model][prediction]
  std::vector<std::vector<float>> kl;       // [model - 1][prediction]
  std::vector<std::vector<uint8_t>> agree;  // [model - 1][prediction]: same argmax as the base
};

int64_t window_count(const std::vector<int32_t>& tokens, const WindowOptions& o) {
  HILO_CHECK(o.ctx >= 2, "ctx = {} must be >= 2", o.ctx);
  HILO_CHECK(o.max_windows >= 0, "max_windows = {} must be >= 0", o.max_windows);
  const int64_t whole = static_cast<int64_t>(tokens.size()) / o.ctx;
  HILO_CHECK(whole >= 1, "tokens: {} tokens do not fill one window of ctx = {}", tokens.size(), o.ctx);
  return o.max_windows > 0 ? std::min(whole, o.max_windows) : whole;
}

// tokens[first, first + count) must be ids of m's vocabulary.
void check_vocab(const llama::Model& m, const std::vector<int32_t>& tokens, int64_t first, int64_t count) {
  const int64_t vocab = m.config().vocab;
  for (int64_t i = first; i < first + count; ++i)
    HILO_CHECK(tokens[i] >= 0 && tokens[i] < vocab, "tokens: token {} at index {} is outside the vocabulary [0, {})",
               tokens[i], i, vocab);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every window through every model; windows in parallel when there are at least as many as threads (each window
// single-threaded), else one window at a time with parallel layers. Each prediction's values land in their own
// slot, so the sums below do not depend on the schedule.
PerPrediction evaluate(const std::vector<const llama::Model*>& models, const std::vector<int32_t>& tokens,
                       const WindowOptions& o, int64_t windows) {
  const int64_t ctx = o.ctx, vocab = models[0]->config().vocab, per_window = ctx - 1;
  const auto predictions = static_cast<std::size_t>(windows * per_window);
  const std::size_t nm = models.size();
  PerPrediction out;
  out.nll.assign(nm, std::vector<double>(predictions));
  out.kl.assign(nm - 1, std::vector<float>(predictions));
  out.agree.assign(nm - 1, std::vector<uint8_t>(predictions));
  const int nt = resolve_threads(o.threads);
  const bool by_window = windows >= nt;
  const int inner = by_window ? 1 : nt;
  const auto window = [&](int64_t w) {
    const int32_t* tok = tokens.data() + w * ctx;
    std::vector<std::vector<float>> hidden(nm);
    for (std::size_t m = 0; m < nm; ++m) {
      hidden[m].resize(static_cast<std::size_t>(ctx * models[m]->config().hidden));
      models[m]->hidden_states(tok, ctx, hidden[m].data(), inner);
    }
    std::vector<float> base(static_cast<std::size_t>(kLogitRows * vocab)), other(base.size());
    std::vector<double> base_lse(kLogitRows);
    std::vector<int32_t> base_top(kLogitRows);
    for (int64_t r0 = 0; r0 < per_window; r0 += kLogitRows) {
      const int64_t rows = std::min(kLogitRows, per_window - r0);
      const std::size_t first = static_cast<std::size_t>(w * per_window + r0);
      models[0]->logits(hidden[0].data() + r0 * models[0]->config().hidden, rows, base.data(), inner);
      parallel_for(rows, inner, [&](int64_t r) {
        const float* a = base.data() + r * vocab;
        base_lse[r] = log_sum_exp(a, vocab);
        base_top[r] = argmax(a, vocab);
        out.nll[0][first + r] = base_lse[r] - a[tok[r0 + r + 1]];
      });
      for (std::size_t m = 1; m < nm; ++m) {
        models[m]->logits(hidden[m].data() + r0 * models[m]->config().hidden, rows, other.data(), inner);
        parallel_for(rows, inner, [&](int64_t r) {
          const float* a = base.data() + r * vocab;
          const float* b = other.data() + r * vocab;
          const double lse = log_sum_exp(b, vocab);
          out.nll[m][first + r] = lse - b[tok[r0 + r + 1]];
          out.agree[m - 1][first + r] = argmax(b, vocab) == base_top[r];
          out.kl[m - 1][first + r] = static_cast<float>(kl_row(a, base_lse[r], b, lse, vocab));
        });
      }
    }
  };
  const auto progress = [&](int64_t done) {
    if (o.on_window) o.on_window(done, windows);
  };
  if (by_window) {
    parallel_for(windows, nt, window, progress);
  } else {  // a plain loop, so the layers' own parallel loops are not nested in a parallel region
    for (int64_t w = 0; w < windows; ++w) {
      window(w);
      progress(w + 1);
    }
  }
  return out;
}

PerplexityResult finish(const std::vector<double>& nll, int64_t windows, double seconds) {
  PerplexityResult r;
  const auto predictions = static_cast<int64_t>(nll.size());
  double sum = 0;
  for (double v : nll) sum += v;
  r.mean_nll = sum / static_cast<double>(predictions);
  r.ppl = std::exp(r.mean_nll);
  r.tokens = predictions;
  r.windows = windows;
  r.seconds = seconds;
  return r;
}

// numpy's default (linear) quantile of unsorted values.
double quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (static_cast<double>(v[hi]) - v[lo]);
}

}  // namespace

std::vector<int32_t> load_tokens(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  const TensorEntry* e = file.find("tokens");
  HILO_CHECK(e != nullptr, "{}: no tensor named 'tokens'", path);
  const std::size_t n = static_cast<std::size_t>(e->view().numel());
  std::vector<int32_t> out(n);
  auto read = [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, e->data + i * sizeof(T), sizeof(T));
      HILO_CHECK(static_cast<int64_t>(v) >= 0 && static_cast<int64_t>(v) <= INT32_MAX, "{}: tokens[{}] = {} is not a valid token id",
                 path, i, static_cast<int64_t>(v));
      out[i] = static_cast<int32_t>(v);
    }
  };
  switch (e->dtype) {
    case DType::I32: read(int32_t{}); break;
    case DType::I64: read(int64_t{}); break;
    case DType::U32: read(uint32_t{}); break;
    case DType::U16: read(uint16_t{}); break;
    case DType::U8: read(uint8_t{}); break;
    default: fail("{}: 'tokens' has dtype {}, expected an integer type (I32, I64, U32, U16, U8)", path,
                  dtype_name(e->dtype));
  }
  return out;
}

PerplexityResult perplexity(const llama::Model& model, const std::vector<int32_t>& tokens,
                            const WindowOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t windows = window_count(tokens, options);
  check_vocab(model, tokens, 0, windows * options.ctx);
  const PerPrediction p = evaluate({&model}, tokens, options, windows);
  return finish(p.nll[0], windows, seconds_since(t0));
}

std::vector<KldResult> kl_divergence(const llama::Model& base, const std::vector<const llama::Model*>& quants,
                                     const std::vector<int32_t>& tokens, const WindowOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  HILO_CHECK(!quants.empty(), "kld: no model to compare with the base");
  std::vector<const llama::Model*> models{&base};
  for (const llama::Model* q : quants) {
    HILO_CHECK(q != nullptr, "kld: a model to compare is null");
    HILO_CHECK(q->config().vocab == base.config().vocab, "kld: the vocabularies differ ({} in {}, {} in {})",
               base.config().vocab, base.path(), q->config().vocab, q->path());
    models.push_back(q);
  }
  const int64_t windows = window_count(tokens, options);
  check_vocab(base, tokens, 0, windows * options.ctx);
  const PerPrediction p = evaluate(models, tokens, options, windows);
  const double seconds = seconds_since(t0);
  std::vector<KldResult> results;
  for (std::size_t m = 1; m < models.size(); ++m) {
    KldResult r;
    r.base = finish(p.nll[0], windows, seconds);
    r.quant = finish(p.nll[m], windows, seconds);
    const auto& kl = p.kl[m - 1];
    double sum = 0;
    int64_t same = 0;
    for (std::size_t i = 0; i < kl.size(); ++i) {
      sum += kl[i];
      same += p.agree[m - 1][i];
    }
    r.kld_mean = sum / static_cast<double>(kl.size());
    r.kld_median = quantile(kl, 0.5);
    r.kld_p99 = quantile(kl, 0.99);
    r.kld_max = *std::max_element(kl.begin(), kl.end());
    r.top1_agreement = static_cast<double>(same) / static_cast<double>(kl.size());
    r.tokens = static_cast<int64_t>(kl.size());
    r.windows = windows;
    r.seconds = seconds;
    results.push_back(std::move(r));
  }
  return results;
}

KldResult kl_divergence(const llama::Model& base, const llama::Model& quant, const std::vector<int32_t>& tokens,
                        const WindowOptions& options) {
  return kl_divergence(base, std::vector<const llama::Model*>{&quant}, tokens, options).front();
}


std::map<std::string, std::vector<float>> input_second_moments(const llama::Model& model,
                                                               const std::vector<int32_t>& tokens,
                                                               const WindowOptions& options, int64_t skip_windows) {
  HILO_CHECK(options.ctx >= 1, "calibration: ctx = {} must be >= 1", options.ctx);
  HILO_CHECK(skip_windows >= 0, "calibration: skip_windows = {} must be >= 0", skip_windows);
  const int64_t available = static_cast<int64_t>(tokens.size()) / options.ctx - skip_windows;
  HILO_CHECK(available >= 1, "calibration: {} tokens hold no window of {} after skipping {}", tokens.size(),
             options.ctx, skip_windows);
  const int64_t windows = options.max_windows > 0 ? std::min(available, options.max_windows) : available;
  check_vocab(model, tokens, skip_windows * options.ctx, windows * options.ctx);
  std::map<std::string, std::vector<double>> sums;
  const llama::LinearInputObserver observer = [&](const std::vector<std::string>& bases, const float* x, int64_t n,
                                                  int64_t cols) {
    std::vector<double> s(static_cast<std::size_t>(cols), 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) s[c] += static_cast<double>(x[t * cols + c]) * x[t * cols + c];
    for (const auto& base : bases) {
      auto& acc = sums[base + ".weight"];
      acc.resize(s.size(), 0.0);
      for (std::size_t c = 0; c < s.size(); ++c) acc[c] += s[c];
    }
  };
  std::vector<float> hidden(static_cast<std::size_t>(options.ctx * model.config().hidden));
  for (int64_t w = 0; w < windows; ++w) {
    model.hidden_states(tokens.data() + (skip_windows + w) * options.ctx, options.ctx, hidden.data(), options.threads,
                        &observer);
    if (options.on_window) options.on_window(w + 1, windows);
  }
  std::map<std::string, std::vector<float>> out;
  const double count = static_cast<double>(windows * options.ctx);
  for (const auto& [name, s] : sums) {
    auto& v = out[name];
    for (double x : s) v.push_back(static_cast<float>(x / count));
  }
  return out;
}

}  // namespace hilo::eval
