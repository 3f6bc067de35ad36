// The decoder's linear layers: dense (bf16 kept as bf16; fp16 and f32 as f32) or hilo-quantized, loaded from a
// checkpoint by their base name ("model.layers.0.self_attn.q_proj").
#pragma once

#include <map>
#include <memory>
#include <string>

#include "hilo/llama.hpp"
#include "hilo/lords_io.hpp"
#include "hilo/safetensors.hpp"

namespace hilo::llama::detail {

using QuantizedLayers = std::map<std::string, lords::LayerInfo>;  // by base name
QuantizedLayers quantized_layer_map(const Checkpoint& checkpoint);

// Loads <base> as [rows, cols]: a quantized layer where the checkpoint's metadata describes one, else the dense
// tensor <base>.weight. Throws naming the tensor on a missing tensor, a wrong shape or a non-float dtype.
std::unique_ptr<Linear> load_linear(const Checkpoint& checkpoint, const QuantizedLayers& quantized,
                                    const std::string& base, int64_t rows, int64_t cols);
// A dense linear layer from a tensor already read (the tied lm_head reuses the embeddings).
std::unique_ptr<Linear> dense_linear(const TensorView& weight, const std::string& name);

// A dense float tensor of the given shape as f32 (norm weights).
std::vector<float> load_f32(const Checkpoint& checkpoint, const std::string& name, const Shape& shape);
// The entry `name` after checking it exists, is F32/BF16/F16, has `shape` and holds only finite values.
const TensorEntry& float_entry(const Checkpoint& checkpoint, const std::string& name, const Shape& shape);

}  // namespace hilo::llama::detail
