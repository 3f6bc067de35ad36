// Loading a Llama checkpoint and its forward pass (f32 activations; linear layers dense or quantized).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <numbers>

#include "../core/check.hpp"
#include "../core/mapped_file.hpp"
#include "../core/parallel.hpp"
#include "attention.hpp"
#include "hilo/llama.hpp"
#include "linear.hpp"

namespace hilo::llama {
namespace {
namespace fs = std::filesystem;
using namespace detail;

// transformers' inverse frequencies, including the "linear" and "llama3" rescalings.
std::vector<float> rope_inverse_frequencies(const Config& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(static_cast<std::size_t>(half));
  const RopeConfig& r = c.rope;
  for (int64_t i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(r.theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    if (r.type == "linear") f /= r.factor;
    if (r.type == "llama3") {
      const double wavelen = 2 * std::numbers::pi / f;
      const double old = static_cast<double>(r.original_max_position);
      const double low_wavelen = old / r.low_freq_factor, high_wavelen = old / r.high_freq_factor;
      if (wavelen > low_wavelen) {
        f /= r.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        f = (1 - smooth) * f / r.factor + smooth * f;
      }
    }
    inv[i] = static_cast<float>(f);
  }
  return inv;
}

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, per row of `width`.
void rms_norm(const float* x, int64_t n, int64_t width, const std::vector<float>& weight, double eps, float* out,
              int threads) {
  parallel_for(n, threads, [&](int64_t t) {
    const float* row = x + t * width;
    double ss = 0;
    for (int64_t i = 0; i < width; ++i) ss += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
    for (int64_t i = 0; i < width; ++i) out[t * width + i] = weight[i] * (row[i] * inv);
  });
}

// gate[t] = silu(gate[t]) * up[t].
void swiglu(float* gate, const float* up, int64_t n, int64_t width, int threads) {
  parallel_for(n, threads, [&](int64_t t) {
    for (int64_t i = t * width; i < (t + 1) * width; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void add_into(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

std::string layer_name(int64_t i, const char* rest) { return fmt::format("model.layers.{}.{}", i, rest); }

}  // namespace

Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, int threads) {
  const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  HILO_CHECK(fs::exists(dir / "config.json"), "{}: no config.json beside the model (a Hugging Face directory is needed)",
             path);
  Model m;
  m.path_ = path;
  m.threads_ = threads;
  m.config_ = parse_config(read_file((dir / "config.json").string()), (dir / "config.json").string());
  const Config& c = m.config_;
  const Checkpoint checkpoint = Checkpoint::open(path);
  const QuantizedLayers quantized = quantized_layer_map(checkpoint);

  const TensorEntry& embed = float_entry(checkpoint, "model.embed_tokens.weight", {c.vocab, c.hidden});
  m.embed_ = Tensor::copy_of(embed.view());
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  for (int64_t i = 0; i < c.layers; ++i) {
    LayerWeights w;
    w.prefix = fmt::format("model.layers.{}.", i);
    w.attn_norm = load_f32(checkpoint, layer_name(i, "input_layernorm.weight"), {c.hidden});
    w.mlp_norm = load_f32(checkpoint, layer_name(i, "post_attention_layernorm.weight"), {c.hidden});
    w.q = load_linear(checkpoint, quantized, layer_name(i, "self_attn.q_proj"), qdim, c.hidden);
    w.k = load_linear(checkpoint, quantized, layer_name(i, "self_attn.k_proj"), kvdim, c.hidden);
    w.v = load_linear(checkpoint, quantized, layer_name(i, "self_attn.v_proj"), kvdim, c.hidden);
    w.o = load_linear(checkpoint, quantized, layer_name(i, "self_attn.o_proj"), c.hidden, qdim);
    w.gate = load_linear(checkpoint, quantized, layer_name(i, "mlp.gate_proj"), c.intermediate, c.hidden);
    w.up = load_linear(checkpoint, quantized, layer_name(i, "mlp.up_proj"), c.intermediate, c.hidden);
    w.down = load_linear(checkpoint, quantized, layer_name(i, "mlp.down_proj"), c.hidden, c.intermediate);
    m.layers_.push_back(std::move(w));
  }
  m.final_norm_ = load_f32(checkpoint, "model.norm.weight", {c.hidden});
  if (c.tie_embeddings)
    m.lm_head_ = dense_linear(m.embed_.view(), "model.embed_tokens.weight (tied lm_head)");
  else  // a missing lm_head.weight is an error (transformers would initialise it at random)
    m.lm_head_ = load_linear(checkpoint, quantized, "lm_head", c.vocab, c.hidden);
  m.quantized_linears_ = static_cast<int64_t>(quantized.size());
  m.rope_inv_freq_ = rope_inverse_frequencies(c);
  return m;
}

std::string Model::linear_format() const {
  std::map<std::string, int> counts;
  for (const auto& l : layers_)
    for (const Linear* p : {l.q.get(), l.k.get(), l.v.get(), l.o.get(), l.gate.get(), l.up.get(), l.down.get()})
      ++counts[p->format()];
  std::string s;
  for (const auto& [f, n] : counts) s += fmt::format("{}{} ({})", s.empty() ? "" : ", ", f, n);
  return s;
}

void Model::hidden_states(const int32_t* tokens, int64_t n, float* out, int threads,
                          const LinearInputObserver* observer) const {
  const Config& c = config_;
  const int nt = threads < 0 ? threads_ : threads;
  HILO_CHECK(n >= 1, "hidden_states: n = {} must be >= 1", n);
  for (int64_t t = 0; t < n; ++t)
    HILO_CHECK(tokens[t] >= 0 && tokens[t] < c.vocab, "hidden_states: token {} at position {} is outside [0, {})",
               tokens[t], t, c.vocab);
  const int64_t h = c.hidden, qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  auto buffer = [](int64_t count) { return std::vector<float>(static_cast<std::size_t>(count)); };
  std::vector<float> x = buffer(n * h), normed = buffer(n * h), q = buffer(n * qdim), k = buffer(n * kvdim),
                     v = buffer(n * kvdim), attn = buffer(n * qdim), proj = buffer(n * h),
                     gate = buffer(n * c.intermediate), up = buffer(n * c.intermediate);
  const std::size_t esize = dtype_size(embed_.dtype());
  const auto* embed = static_cast<const std::byte*>(embed_.view().data());
  for (int64_t t = 0; t < n; ++t)
    convert(embed + static_cast<std::size_t>(tokens[t] * h) * esize, embed_.dtype(), x.data() + t * h, DType::F32,
            static_cast<std::size_t>(h));

  const RopeTable rope = rope_table(n, c.head_dim, rope_inv_freq_.data());
  auto observe = [&](const LayerWeights& w, std::initializer_list<const char*> names, const float* in, int64_t cols) {
    if (!observer) return;
    std::vector<std::string> bases;
    for (const char* name : names) bases.push_back(w.prefix + name);
    (*observer)(bases, in, n, cols);
  };
  for (const LayerWeights& w : layers_) {
    rms_norm(x.data(), n, h, w.attn_norm, c.rms_eps, normed.data(), nt);
    observe(w, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, normed.data(), h);
    w.q->forward(normed.data(), n, q.data(), nt);
    w.k->forward(normed.data(), n, k.data(), nt);
    w.v->forward(normed.data(), n, v.data(), nt);
    apply_rope(q.data(), n, c.heads, c.head_dim, rope);
    apply_rope(k.data(), n, c.kv_heads, c.head_dim, rope);
    causal_attention(q.data(), k.data(), v.data(), n, c.heads, c.kv_heads, c.head_dim, attn.data(), nt);
    observe(w, {"self_attn.o_proj"}, attn.data(), qdim);
    w.o->forward(attn.data(), n, proj.data(), nt);
    add_into(x.data(), proj.data(), n * h);

    rms_norm(x.data(), n, h, w.mlp_norm, c.rms_eps, normed.data(), nt);
    observe(w, {"mlp.gate_proj", "mlp.up_proj"}, normed.data(), h);
    w.gate->forward(normed.data(), n, gate.data(), nt);
    w.up->forward(normed.data(), n, up.data(), nt);
    swiglu(gate.data(), up.data(), n, c.intermediate, nt);
    observe(w, {"mlp.down_proj"}, gate.data(), c.intermediate);
    w.down->forward(gate.data(), n, proj.data(), nt);
    add_into(x.data(), proj.data(), n * h);
  }
  rms_norm(x.data(), n, h, final_norm_, c.rms_eps, out, nt);
}

void Model::logits(const float* hidden, int64_t n, float* out, int threads) const {
  lm_head_->forward(hidden, n, out, threads < 0 ? threads_ : threads);
}

}  // namespace hilo::llama
