// Writes a synthetic Llama-3-8B-shaped Hugging Face checkpoint (bf16, one shard per layer) for measuring
// `hilo quantize`'s peak memory and time on a model far larger than one tensor. Weights come from hilo::lords::
// synthetic_weight; one tensor is in memory at a time. The vocabulary is reduced (default 32000) to save disk.
// --unique-layers K (for timing runs, where drawing 218 M Student-t values per layer would take longer than the
// quantization being timed): layer l >= K copies layer l mod K's tensors from its shard, rows rotated by a
// layer-dependent offset, so every layer's data differs while its statistics and the quantizer's work stay the same.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hilo/dtype.hpp"
#include "hilo/lords_data.hpp"
#include "hilo/safetensors.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Write a synthetic Llama-3-8B-shaped checkpoint"};
  std::string out;
  int layers = 2;
  int64_t vocab = 32000, hidden = 4096, kv = 1024, mlp = 14336;
  app.add_option("OUT", out, "Output directory")->required();
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--vocab", vocab)->capture_default_str();
  int unique_layers = 0;
  app.add_option("--unique-layers", unique_layers, "Draw only this many layers; the rest are row-rotated copies (0: all)")
      ->check(CLI::Range(0, 1 << 16));
  CLI11_PARSE(app, argc, argv);
  if (layers < 1) {
    std::fprintf(stderr, "--layers must be >= 1 (got %d)\n", layers);
    return 2;
  }
  namespace fs = std::filesystem;
  fs::create_directories(out);
  std::ofstream(fs::path(out) / "config.json")
      << nlohmann::json{{"model_type", "llama"}, {"hidden_size", hidden}, {"intermediate_size", mlp},
                        {"num_hidden_layers", layers}, {"num_attention_heads", 32}, {"num_key_value_heads", 8},
                        {"vocab_size", vocab}}
             .dump(2);
  nlohmann::json weight_map;
  uint64_t seed = 1;
  using TensorList = std::vector<std::pair<std::string, hilo::Shape>>;
  // `tensors` (named with prefix `to`) as the tensors of an earlier shard `source` (named with prefix `from`), rows
  // rotated by `shift`.
  auto copy_shard = [&](const std::string& file, const TensorList& tensors, const std::string& source,
                        const std::string& from, const std::string& to, int64_t shift) {
    const hilo::SafetensorsFile src = hilo::SafetensorsFile::open((fs::path(out) / source).string());
    std::vector<hilo::TensorSpec> specs;
    for (const auto& [name, shape] : tensors) specs.push_back({name, hilo::DType::BF16, shape});
    hilo::SafetensorsWriter writer((fs::path(out) / file).string(), specs, {{"format", "pt"}});
    std::vector<std::byte> rotated;
    for (const auto& [name, shape] : tensors) {
      const hilo::TensorEntry& e = src.at(from + name.substr(to.size()));
      const std::size_t row_bytes = e.nbytes / static_cast<std::size_t>(shape[0]);
      const std::size_t split = static_cast<std::size_t>(shift % shape[0]) * row_bytes;
      rotated.resize(e.nbytes);
      std::copy(e.data + split, e.data + e.nbytes, rotated.begin());
      std::copy(e.data, e.data + split, rotated.begin() + static_cast<std::ptrdiff_t>(e.nbytes - split));
      writer.write(name, rotated.data(), rotated.size());
      weight_map[name] = file;
    }
    writer.commit();
  };
  auto write_shard = [&](const std::string& file, const TensorList& tensors) {
    std::vector<hilo::TensorSpec> specs;
    for (const auto& [name, shape] : tensors) specs.push_back({name, hilo::DType::BF16, shape});
    hilo::SafetensorsWriter writer((fs::path(out) / file).string(), specs, {{"format", "pt"}});
    for (const auto& [name, shape] : tensors) {
      hilo::lords::WeightSynthConfig c;
      c.rows = shape[0], c.cols = shape.size() > 1 ? shape[1] : 1, c.seed = seed++;
      std::vector<float> w(static_cast<std::size_t>(c.rows * c.cols));
      hilo::lords::synthetic_weight(c, w.data());
      std::vector<uint16_t> bf(w.size());
      hilo::convert(w.data(), hilo::DType::F32, bf.data(), hilo::DType::BF16, w.size());
      writer.write(name, bf.data(), bf.size() * 2);
      weight_map[name] = file;
      std::fprintf(stderr, "%s %s\n", file.c_str(), name.c_str());
    }
    writer.commit();
  };
  const int shards = layers + 1;
  auto shard_name = [&](int i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, shards);
    return std::string(buf);
  };
  write_shard(shard_name(0), {{"model.embed_tokens.weight", {vocab, hidden}}, {"model.norm.weight", {hidden}}});
  auto prefix = [](int l) { return "model.layers." + std::to_string(l) + "."; };
  for (int l = 0; l < layers; ++l) {
    const std::string p = prefix(l);
    const TensorList tensors{{p + "self_attn.q_proj.weight", {hidden, hidden}},
                             {p + "self_attn.k_proj.weight", {kv, hidden}},
                             {p + "self_attn.v_proj.weight", {kv, hidden}},
                             {p + "self_attn.o_proj.weight", {hidden, hidden}},
                             {p + "mlp.gate_proj.weight", {mlp, hidden}},
                             {p + "mlp.up_proj.weight", {mlp, hidden}},
                             {p + "mlp.down_proj.weight", {hidden, mlp}},
                             {p + "input_layernorm.weight", {hidden}},
                             {p + "post_attention_layernorm.weight", {hidden}}};
    if (unique_layers > 0 && l >= unique_layers)
      copy_shard(shard_name(l + 1), tensors, shard_name(l % unique_layers + 1), prefix(l % unique_layers), p,
                 977 * static_cast<int64_t>(l));
    else
      write_shard(shard_name(l + 1), tensors);
    std::fprintf(stderr, "layer %d of %d written\n", l + 1, layers);
  }
  std::ofstream(fs::path(out) / "model.safetensors.index.json")
      << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", weight_map}}.dump(2);
  return 0;
}
