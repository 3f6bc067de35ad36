// Evaluation of (quantized) Llama checkpoints on token streams: perplexity, and the KL divergence of a quantized
// model's next-token distribution from its base model's (llama.cpp's measure). Protocol: docs/eval.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hilo/llama.hpp"

namespace hilo::eval {

// The integer tensor `tokens` (I32, I64, U16, U32 or U8; any shape, read flattened) of a safetensors file.
std::vector<int32_t> load_tokens(const std::string& path);

struct WindowOptions {
  int64_t ctx = 512;          // tokens per window; windows do not overlap
  int64_t max_windows = 0;    // 0: every whole window of the stream
  int threads = 0;            // 0: all cores. Windows run in parallel when there are enough; results never depend on it
  std::function<void(int64_t done, int64_t total)> on_window;  // progress; may throw to abort
};

struct PerplexityResult {
  double ppl = 0;        // exp(mean_nll)
  double mean_nll = 0;   // mean next-token cross-entropy (nats) over every prediction
  int64_t tokens = 0;    // predictions: windows * (ctx - 1)
  int64_t windows = 0;
  double seconds = 0;
};

// Non-overlapping windows of ctx tokens from the start of `tokens`; in each, position t predicts t + 1.
PerplexityResult perplexity(const llama::Model& model, const std::vector<int32_t>& tokens, const WindowOptions& options);

struct KldResult {
  PerplexityResult base, quant;
  double kld_mean = 0, kld_median = 0, kld_p99 = 0, kld_max = 0;  // KL(base || quant) per prediction, nats
  double top1_agreement = 0;  // fraction of predictions whose argmax token is the same
  int64_t tokens = 0, windows = 0;
  double seconds = 0;
};

// Both models over the same windows in one pass (they must share the vocabulary).
KldResult kl_divergence(const llama::Model& base, const llama::Model& quant, const std::vector<int32_t>& tokens,
                        const WindowOptions& options);
// Several models against one base in one pass (the base runs once per window); `seconds` is the whole pass's.
std::vector<KldResult> kl_divergence(const llama::Model& base, const std::vector<const llama::Model*>& quants,
                                     const std::vector<int32_t>& tokens, const WindowOptions& options);

// Calibration for activation-aware quantization: the mean squared input activation per input channel of every
// decoder linear layer, keyed by "<base>.weight" (lords::CheckpointQuantOptions::act_sq), over max_windows windows
// (0: all) after skipping `skip_windows`. Windows run one after another, sums in f64: deterministic.
std::map<std::string, std::vector<float>> input_second_moments(const llama::Model& model,
                                                               const std::vector<int32_t>& tokens,
                                                               const WindowOptions& options, int64_t skip_windows = 0);

}  // namespace hilo::eval
