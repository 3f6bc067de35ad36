// Writes a synthetic Llama-3-8B-shaped Hugging Face checkpoint (bf16, one shard per layer) for measuring
// `hilo quantize`'s peak memory and time on a model far larger than one tensor. Weights come from hilo::lords::
// synthetic_weight; one tensor is in memory at a time. The vocabulary is reduced (default 32000) to save disk.
// --unique-layers K (for timing runs, where drawing 218 M Student-t values per layer would take longer than the
// quantization being timed): layer l >= K copies layer l mod K's tensors from its shard, rows rotated by a
// layer-dependent offset, so every layer's data differs while its statistics and the quantizer's work stay the same.
// The directory is built under a temporary name and appears only when complete (hilo::AtomicDirectory).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "hilo/dtype.hpp"
#include "hilo/lords_data.hpp"
#include "hilo/safetensors.hpp"
#include "json_out.hpp"

namespace {

namespace fs = std::filesystem;

void write_model(const std::string& out, bool force, int layers, int unique_layers, int64_t vocab, int64_t hidden,
                 int64_t kv, int64_t mlp) {
  hilo::AtomicDirectory target(out, force);
  const fs::path dir(target.temp_path());
  const nlohmann::json config{{"model_type", "llama"},       {"hidden_size", hidden},
                              {"intermediate_size", mlp},     {"num_hidden_layers", layers},
                              {"num_attention_heads", 32},    {"num_key_value_heads", 8},
                              {"vocab_size", vocab}};
  hilo::bench::save_json((dir / "config.json").string(), config, 2);
  nlohmann::json weight_map;
  uint64_t seed = 1;
  // A shard of bf16 tensors named prefix + suffix; fill(suffix, shape, values) sets each one's values.
  using TensorList = std::vector<std::pair<std::string, hilo::Shape>>;
  auto write_shard = [&](const std::string& file, const std::string& prefix, const TensorList& tensors, auto&& fill) {
    std::vector<hilo::TensorSpec> specs;
    for (const auto& [suffix, shape] : tensors) specs.push_back({prefix + suffix, hilo::DType::BF16, shape});
    hilo::SafetensorsWriter writer((dir / file).string(), specs, {{"format", "pt"}});
    std::vector<uint16_t> values;
    for (const auto& [suffix, shape] : tensors) {
      values.resize(static_cast<std::size_t>(shape[0] * (shape.size() > 1 ? shape[1] : 1)));
      fill(suffix, shape, values);
      writer.write(prefix + suffix, values.data(), values.size() * 2);
      weight_map[prefix + suffix] = file;
    }
    writer.commit();
  };
  auto draw = [&](const std::string&, const hilo::Shape& shape, std::vector<uint16_t>& values) {
    hilo::lords::WeightSynthConfig c;
    c.rows = shape[0], c.cols = shape.size() > 1 ? shape[1] : 1, c.seed = seed++;
    std::vector<float> w(values.size());
    hilo::lords::synthetic_weight(c, w.data());
    hilo::convert(w.data(), hilo::DType::F32, values.data(), hilo::DType::BF16, w.size());
  };
  const int shards = layers + 1;
  auto shard_name = [&](int i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, shards);
    return std::string(buf);
  };
  write_shard(shard_name(0), "model.", {{"embed_tokens.weight", {vocab, hidden}}, {"norm.weight", {hidden}}}, draw);
  auto prefix = [](int l) { return "model.layers." + std::to_string(l) + "."; };
  const TensorList layer_tensors{{"self_attn.q_proj.weight", {hidden, hidden}}, {"self_attn.k_proj.weight", {kv, hidden}},
                                 {"self_attn.v_proj.weight", {kv, hidden}},     {"self_attn.o_proj.weight", {hidden, hidden}},
                                 {"mlp.gate_proj.weight", {mlp, hidden}},       {"mlp.up_proj.weight", {mlp, hidden}},
                                 {"mlp.down_proj.weight", {hidden, mlp}},       {"input_layernorm.weight", {hidden}},
                                 {"post_attention_layernorm.weight", {hidden}}};
  for (int l = 0; l < layers; ++l) {
    if (unique_layers == 0 || l < unique_layers) {
      write_shard(shard_name(l + 1), prefix(l), layer_tensors, draw);
    } else {  // layer l mod K's tensors, rows rotated by a layer-dependent shift
      const int from = l % unique_layers;
      const hilo::SafetensorsFile src = hilo::SafetensorsFile::open((dir / shard_name(from + 1)).string());
      const int64_t shift = 977 * static_cast<int64_t>(l);
      write_shard(shard_name(l + 1), prefix(l), layer_tensors,
                  [&](const std::string& suffix, const hilo::Shape& shape, std::vector<uint16_t>& values) {
                    const hilo::TensorEntry& e = src.at(prefix(from) + suffix);
                    const std::size_t split = static_cast<std::size_t>(shift % shape[0]) * (e.nbytes / shape[0]);
                    std::rotate_copy(e.data, e.data + split, e.data + e.nbytes, reinterpret_cast<std::byte*>(values.data()));
                  });
    }
    std::fprintf(stderr, "layer %d of %d written\n", l + 1, layers);
  }
  hilo::bench::save_json((dir / "model.safetensors.index.json").string(),
                         {{"metadata", nlohmann::json::object()}, {"weight_map", weight_map}}, 2);
  target.commit();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write a synthetic Llama-3-8B-shaped checkpoint"};
  std::string out;
  int layers = 2;
  int64_t vocab = 32000, hidden = 4096, kv = 1024, mlp = 14336;
  app.add_option("OUT", out, "Output directory")->required();
  app.add_option("--layers", layers)->capture_default_str()->check(CLI::Range(1, 1 << 16));
  app.add_option("--vocab", vocab)->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  int unique_layers = 0;
  app.add_option("--unique-layers", unique_layers, "Draw only this many layers; the rest are row-rotated copies (0: all)")
      ->check(CLI::Range(0, 1 << 16));
  bool force = false;
  app.add_flag("--force", force, "Replace OUT if it exists");
  CLI11_PARSE(app, argc, argv);
  try {
    write_model(out, force, layers, unique_layers, vocab, hidden, kv, mlp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lords_synth_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
