// A Llama-architecture forward pass on the CPU over a Hugging Face checkpoint: plain (bf16 / fp16 / f32) or
// quantized by hilo (LoRDS or block-wise layers run through lords::matmul, never a dequantised copy).
// Semantics follow transformers' LlamaForCausalLM in f32 (docs/eval.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hilo/tensor.hpp"

namespace hilo::llama {

struct RopeConfig {
  std::string type = "default";  // "default", "linear" or "llama3"
  double theta = 10000.0;
  double factor = 1.0;                     // linear, llama3
  double low_freq_factor = 1.0;            // llama3
  double high_freq_factor = 4.0;           // llama3
  int64_t original_max_position = 8192;    // llama3
};

struct Config {
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, vocab = 0;
  double rms_eps = 1e-6;
  RopeConfig rope;
  bool tie_embeddings = false;
};

// Parses config.json text (`where` names the file in errors). Refuses other architectures and settings this
// forward pass does not implement (biases, activations other than silu, unknown RoPE types), naming the key.
Config parse_config(const std::string& json_text, const std::string& where);

// A linear layer y [batch, rows] = x [batch, cols] . W^T, whatever W's storage (dense or quantized).
class Linear {
 public:
  virtual ~Linear() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  virtual void forward(const float* x, int64_t batch, float* y, int threads) const = 0;
  virtual std::string format() const = 0;  // "bf16", "lords nf4 r32", "blockwise int3 B64", ...
};

struct LayerWeights {
  std::string prefix;  // "model.layers.<i>."
  std::vector<float> attn_norm, mlp_norm;
  std::unique_ptr<Linear> q, k, v, o, gate, up, down;
};

// Sees the input of the decoder's linear layers: `bases` are the layers reading x [n, cols] (q, k and v share one).
using LinearInputObserver =
    std::function<void(const std::vector<std::string>& bases, const float* x, int64_t n, int64_t cols)>;

class Model {
 public:
  // PATH: a model directory with config.json and model.safetensors (or an index and shards).
  static Model load(const std::string& path, int threads = 0);
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const Config& config() const { return config_; }
  const std::string& path() const { return path_; }
  int64_t quantized_linears() const { return quantized_linears_; }
  std::string linear_format() const;  // the formats of the decoder's linear layers, e.g. "lords nf4 r32 (28)"

  // One sequence of n tokens at positions 0..n-1: final hidden states (after the last norm) [n, hidden].
  // threads < 0: the count given to load(); the result does not depend on it.
  void hidden_states(const int32_t* tokens, int64_t n, float* out, int threads = -1,
                     const LinearInputObserver* observer = nullptr) const;
  // Logits [n, vocab] of hidden states [n, hidden].
  void logits(const float* hidden, int64_t n, float* out, int threads = -1) const;

 private:
  Model() = default;
  std::string path_;
  Config config_;
  int threads_ = 0;
  int64_t quantized_linears_ = 0;
  Tensor embed_;  // [vocab, hidden] in the checkpoint's dtype
  std::vector<LayerWeights> layers_;
  std::vector<float> final_norm_;
  std::unique_ptr<Linear> lm_head_;
  std::vector<float> rope_inv_freq_;  // [head_dim / 2]
};

}  // namespace hilo::llama
