// LoRDS / block-wise quantized layers in safetensors files, and whole Hugging Face checkpoints quantized,
// dequantized and inspected one tensor at a time. The format is specified in docs/lords.md ("Format").
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hilo/lords.hpp"
#include "hilo/safetensors.hpp"

namespace hilo::lords {

// ---- One quantized linear layer ----
// Tensors <base>.qweight (U8 [rows, cols * bits / 8]) and either <base>.scales (BF16 [rows, cols / block]) or
// <base>.lords_b (BF16 [rows, rank]) and <base>.lords_a (BF16 [rank, cols]); the file's __metadata__ holds
// "hilo:<base>" -> JSON {"method", "bits", "codebook", "codebook_values", "block", "rank", "shape", "source_dtype"}.
struct LayerInfo {
  std::string base;  // e.g. "model.layers.0.self_attn.q_proj"
  Method method = Method::Lords;
  Codebook codebook;
  int block = 64;
  int rank = 0;  // LoRDS only
  int64_t rows = 0, cols = 0;
  DType source_dtype = DType::BF16;  // what the weight was before quantisation (what dequantize writes back: bf16)

  std::vector<TensorSpec> tensor_specs() const;  // in file order
  std::string metadata_key() const { return "hilo:" + base; }
  std::string metadata_json() const;
  double bits_per_weight() const;  // from the tensor sizes
};
LayerInfo layer_info(const QuantizedLinear& q, const std::string& base, DType source_dtype);
// Parses and validates one "hilo:<base>" metadata entry (throws naming the key).
LayerInfo parse_layer_metadata(const std::string& key, const std::string& json);
// Every quantized layer described in the checkpoint's shards, sorted by base name.
std::vector<LayerInfo> quantized_layers(const Checkpoint& checkpoint);
// Reads one layer's tensors (dtypes and shapes checked against the metadata).
QuantizedLinear load_layer(const Checkpoint& checkpoint, const LayerInfo& info);
// The tensor name a quantized layer replaces: "<base>.weight".
std::string weight_name(const std::string& base);

// ---- Files of quantized layers (what the Python package saves and loads) ----
// Writes the layers (and any plain tensors in `extra`) to one safetensors file with their "hilo:<base>" metadata,
// atomically (temporary file, then rename). Names must be unique; each layer is checked as layer_tensors() does.
void save_layers(const std::string& path, const std::map<std::string, QuantizedLinear>& layers,
                 DType source_dtype = DType::BF16, const std::vector<NamedTensor>& extra = {});
// Every quantized layer of a file (or checkpoint directory), by base name.
std::map<std::string, QuantizedLinear> load_layers(const std::string& path);
// Checks that a layer's fields are consistent (codebook, block, rank, sizes, finite scales); throws naming `where`.
void check_layer(const QuantizedLinear& q, const std::string& where);

// ---- Whole checkpoints ----
struct Progress {
  std::string tensor;       // being processed
  double fraction = 0;      // of the whole job (by weights)
};
using ProgressFn = std::function<void(const Progress&)>;  // may throw to abort (the output is then not created)

struct CheckpointQuantOptions {
  QuantConfig config;
  std::string include = R"(_proj\.weight$)";  // ECMAScript regex, searched in each tensor name
  bool replace_output = false;               // replace an existing output directory
  // Activation-aware LoRDS refinement: mean squared input activation per input channel, by tensor name
  // ("<base>.weight"), e.g. from llama::input_second_moments. Tensors without an entry use the plain error.
  std::map<std::string, std::vector<float>> act_sq;
  ProgressFn on_progress;
};

struct TensorResult {
  std::string name;
  int64_t rows = 0, cols = 0;
  int rank = 0;
  double bits_per_weight = 0, rel_error = 0, init_rel_error = 0, seconds = 0;
  int steps = 0;
};

struct CheckpointQuantResult {
  std::vector<TensorResult> tensors;  // quantized tensors, in processing order
  int carried = 0;                    // tensors copied unchanged
  double rel_error_mean = 0;          // mean over tensors of the relative Frobenius error
  double bits_per_weight = 0;         // stored bits / weights over the quantized tensors
  double seconds = 0;
};

// MODEL: a Hugging Face directory (model.safetensors or an index plus shards) or one .safetensors file.
// OUT: a new directory with the same shard names, an index where the input had one, and every other file of the
// model directory (config.json, tokenizer files) copied. Matching tensors must be 2-D F32/BF16/F16.
CheckpointQuantResult quantize_checkpoint(const std::string& model, const std::string& out,
                                          const CheckpointQuantOptions& options);
// Writes a plain bf16 checkpoint: every quantized layer becomes <base>.weight, everything else is copied.
void dequantize_checkpoint(const std::string& quantized, const std::string& out, bool replace_output,
                           const ProgressFn& on_progress = {});

struct TensorSummary {
  std::string name;  // tensor name, or <base>.weight for a quantized layer
  std::string dtype;  // safetensors dtype, or e.g. "lords nf4 r32" / "blockwise int3 B64"
  Shape shape;        // the logical (unquantized) shape
  double bits_per_weight = 0;
};
struct CheckpointSummary {
  std::string path;
  std::vector<TensorSummary> tensors;
  int64_t parameters = 0;            // logical weights, quantized layers counted as rows * cols
  int64_t quantized_parameters = 0;
  int quantized_layers = 0;
  double quantized_bits_per_weight = 0;  // over the quantized layers
  double file_bytes = 0;
};
CheckpointSummary inspect_checkpoint(const std::string& path);

}  // namespace hilo::lords
