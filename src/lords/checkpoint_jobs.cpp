// quantize_checkpoint / dequantize_checkpoint: stream a Hugging Face checkpoint one tensor at a time into a new
// directory built atomically. Every output shard's header is known before any weight is read (the packed sizes
// follow from the shapes and the configuration), so each tensor is read, converted, written and released in turn:
// peak memory follows the largest tensor, not the model.
#include <chrono>
#include <filesystem>
#include <regex>
#include <set>

#include "../core/atomic_file.hpp"
#include "../core/check.hpp"
#include "checkpoint_io.hpp"
#include "refine_cuda.hpp"
#include "hilo/lords_io.hpp"

namespace hilo::lords {
namespace {
namespace fs = std::filesystem;
using namespace detail;

std::string base_of(const std::string& name) {
  return name.ends_with(".weight") ? name.substr(0, name.size() - 7) : name;
}

// The plan of one output shard: for each input tensor, either carried or quantized as `layer`.
struct PlannedTensor {
  const TensorEntry* entry = nullptr;
  bool quantize = false;
  LayerInfo layer;
};
struct PlannedShard {
  std::string name;
  std::vector<PlannedTensor> tensors;
  std::vector<TensorSpec> specs;
  Metadata metadata;
};

LayerInfo plan_layer(const TensorEntry& e, const QuantConfig& cfg) {
  HILO_CHECK(e.shape.size() == 2, "quantize: tensor '{}' matches --include but is {}-D (only 2-D weights quantize)",
             e.name, e.shape.size());
  HILO_CHECK(e.dtype == DType::F32 || e.dtype == DType::BF16 || e.dtype == DType::F16,
             "quantize: tensor '{}' is {}, expected F32, BF16 or F16", e.name, dtype_name(e.dtype));
  const int64_t rows = e.shape[0], cols = e.shape[1];
  HILO_CHECK(rows > 0 && cols > 0, "quantize: tensor '{}' is empty", e.name);
  HILO_CHECK(cols % cfg.block == 0,
             "quantize: block = {} does not divide the input dimension {} of '{}' (hilo refuses rather than pads)",
             cfg.block, cols, e.name);
  LayerInfo info;
  info.base = base_of(e.name);
  info.method = cfg.method;
  info.codebook = make_codebook(cfg.codebook, cfg.bits);
  info.block = cfg.block;
  info.rows = rows, info.cols = cols;
  info.source_dtype = e.dtype;
  if (cfg.method == Method::Lords) {
    info.rank = cfg.rank > 0 ? cfg.rank : parity_rank(rows, cols, cfg.block);
    HILO_CHECK(info.rank <= std::min(rows, cols), "quantize: rank = {} exceeds min(rows, cols) of '{}'", info.rank,
               e.name);
  }
  return info;
}

}  // namespace

CheckpointQuantResult quantize_checkpoint(const std::string& model, const std::string& out,
                                          const CheckpointQuantOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const QuantConfig& cfg = options.config;
  HILO_CHECK(cfg.bits >= 2 && cfg.bits <= 4, "quantize: bits = {} is not one of 2, 3, 4", cfg.bits);
  HILO_CHECK(cfg.block >= 32 && cfg.block <= 256 && cfg.block % 32 == 0,
             "quantize: block = {} must be one of 32, 64, ..., 256", cfg.block);
  detail::check_device(cfg);
  std::regex include;
  try {
    include = std::regex(options.include, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail("quantize: --include '{}' is not a valid regular expression ({})", options.include, e.what());
  }
  const Checkpoint input = Checkpoint::open(model);
  HILO_CHECK(quantized_layers(input).empty(), "quantize: '{}' is already a hilo-quantized checkpoint", model);

  // Plan everything (and refuse bad input) before writing a byte.
  std::vector<PlannedShard> shards;
  const auto shard_names = output_shard_names(input);
  double total_work = 0;
  for (std::size_t s = 0; s < input.shards().size(); ++s) {
    PlannedShard shard;
    shard.name = shard_names[s];
    shard.metadata = plain_metadata(input.shards()[s].metadata());
    shard.metadata["hilo.format_version"] = "1";
    for (const TensorEntry& e : input.shards()[s].tensors()) {
      PlannedTensor t;
      t.entry = &e;
      t.quantize = std::regex_search(e.name, include);
      if (t.quantize) {
        t.layer = plan_layer(e, cfg);
        for (auto& spec : t.layer.tensor_specs()) shard.specs.push_back(spec);
        shard.metadata[t.layer.metadata_key()] = t.layer.metadata_json();
        total_work += static_cast<double>(e.shape[0] * e.shape[1]);
      } else {
        shard.specs.push_back({e.name, e.dtype, e.shape});
      }
      shard.tensors.push_back(std::move(t));
    }
    shards.push_back(std::move(shard));
  }
  HILO_CHECK(total_work > 0, "quantize: no tensor of '{}' matches --include '{}'", model, options.include);
  for (const auto& [name, h] : options.act_sq) {
    const TensorEntry* e = input.find(name);
    HILO_CHECK(e != nullptr && e->shape.size() == 2 && static_cast<int64_t>(h.size()) == e->shape[1],
               "quantize: activation statistics for '{}' ({} channels) match no 2-D tensor of that width in '{}'", name,
               h.size(), model);
  }

  AtomicDirectory dir(out, options.replace_output);
  copy_side_files(model, dir.temp_path());
  CheckpointQuantResult result;
  std::map<std::string, std::string> weight_map;
  std::size_t total_size = 0;
  double done = 0;
  for (const PlannedShard& shard : shards) {
    SafetensorsWriter writer((fs::path(dir.temp_path()) / shard.name).string(), shard.specs, shard.metadata);
    for (const PlannedTensor& t : shard.tensors) {
      const TensorEntry& e = *t.entry;
      if (!t.quantize) {
        writer.write(e.name, e.data, e.nbytes);
        release_mapped_pages(e.data, e.nbytes);
        weight_map[e.name] = shard.name;
        total_size += e.nbytes;
        ++result.carried;
        continue;
      }
      const double work = static_cast<double>(e.shape[0] * e.shape[1]);
      QuantConfig c = cfg;
      if (auto it = options.act_sq.find(e.name); it != options.act_sq.end()) c.act_sq = it->second;
      if (options.on_progress)
        c.on_step = [&](double f) { options.on_progress({e.name, (done + f * work) / total_work}); };
      std::vector<std::byte> storage;
      QuantReport report;
      QuantizedLinear q;
      try {
        q = quantize(aligned_view(e, storage), c, &report);
      } catch (const Error& err) {
        fail("quantize: tensor '{}': {}", e.name, err.what());
      }
      release_mapped_pages(e.data, e.nbytes);
      const auto specs = t.layer.tensor_specs();
      writer.write(specs[0].name, q.qweight.data(), q.qweight.size());
      if (q.method == Method::Blockwise) {
        writer.write(specs[1].name, q.scales.data(), q.scales.size() * 2);
      } else {
        writer.write(specs[1].name, q.b.data(), q.b.size() * 2);
        writer.write(specs[2].name, q.a.data(), q.a.size() * 2);
      }
      for (const auto& spec : specs) weight_map[spec.name] = shard.name, total_size += spec.nbytes();
      result.tensors.push_back({e.name, q.rows, q.cols, q.rank, q.bits_per_weight(), report.rel_error,
                                report.init_rel_error, report.seconds, report.steps});
      done += work;
      if (options.on_progress) options.on_progress({e.name, done / total_work});
    }
    writer.commit();
  }
  if (is_sharded(input)) write_index(dir.temp_path(), weight_map, total_size);
  dir.commit();

  double bits = 0, weights = 0;
  for (const auto& t : result.tensors) {
    result.rel_error_mean += t.rel_error / static_cast<double>(result.tensors.size());
    bits += t.bits_per_weight * static_cast<double>(t.rows * t.cols);
    weights += static_cast<double>(t.rows * t.cols);
  }
  result.bits_per_weight = bits / weights;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void dequantize_checkpoint(const std::string& quantized, const std::string& out, bool replace_output,
                           const ProgressFn& on_progress) {
  const Checkpoint input = Checkpoint::open(quantized);
  const std::vector<LayerInfo> layers = quantized_layers(input);
  HILO_CHECK(!layers.empty(), "dequantize: '{}' holds no hilo-quantized layer", quantized);
  std::map<std::string, const LayerInfo*> by_qweight;  // <base>.qweight -> layer
  std::set<std::string> layer_tensors;
  for (const auto& l : layers) {
    const auto specs = l.tensor_specs();
    by_qweight[specs[0].name] = &l;
    for (const auto& s : specs) {
      HILO_CHECK(input.find(s.name) != nullptr, "dequantize: layer '{}' lacks tensor '{}'", l.base, s.name);
      layer_tensors.insert(s.name);
    }
  }
  AtomicDirectory dir(out, replace_output);
  copy_side_files(quantized, dir.temp_path());
  const auto shard_names = output_shard_names(input);
  std::map<std::string, std::string> weight_map;
  std::size_t total_size = 0, done = 0;
  for (std::size_t s = 0; s < input.shards().size(); ++s) {
    const SafetensorsFile& shard = input.shards()[s];
    std::vector<TensorSpec> specs;
    for (const TensorEntry& e : shard.tensors()) {
      if (auto it = by_qweight.find(e.name); it != by_qweight.end())
        specs.push_back({weight_name(it->second->base), DType::BF16, {it->second->rows, it->second->cols}});
      else if (!layer_tensors.count(e.name))
        specs.push_back({e.name, e.dtype, e.shape});
    }
    SafetensorsWriter writer((fs::path(dir.temp_path()) / shard_names[s]).string(), specs,
                             plain_metadata(shard.metadata()));
    for (const TensorEntry& e : shard.tensors()) {
      if (auto it = by_qweight.find(e.name); it != by_qweight.end()) {
        const LayerInfo& l = *it->second;
        const QuantizedLinear q = load_layer(input, l);
        std::vector<float> w(static_cast<std::size_t>(l.rows * l.cols));
        dequantize(q, w.data());
        std::vector<uint16_t> bf(w.size());
        convert(w.data(), DType::F32, bf.data(), DType::BF16, w.size());
        writer.write(weight_name(l.base), bf.data(), bf.size() * 2);
        weight_map[weight_name(l.base)] = shard_names[s];
        total_size += bf.size() * 2;
      } else if (!layer_tensors.count(e.name)) {
        writer.write(e.name, e.data, e.nbytes);
        weight_map[e.name] = shard_names[s];
        total_size += e.nbytes;
      }
      release_mapped_pages(e.data, e.nbytes);
      if (on_progress) on_progress({e.name, static_cast<double>(++done) / static_cast<double>(input.size())});
    }
    writer.commit();
  }
  if (is_sharded(input)) write_index(dir.temp_path(), weight_map, total_size);
  dir.commit();
}

CheckpointSummary inspect_checkpoint(const std::string& path) {
  const Checkpoint input = Checkpoint::open(path);
  const std::vector<LayerInfo> layers = quantized_layers(input);
  CheckpointSummary summary;
  summary.path = path;
  std::set<std::string> layer_tensors;
  double bits = 0;
  for (const auto& l : layers) {
    for (const auto& s : l.tensor_specs()) {
      const TensorEntry* e = input.find(s.name);
      HILO_CHECK(e != nullptr, "inspect: layer '{}' lacks tensor '{}'", l.base, s.name);
      HILO_CHECK(e->dtype == s.dtype && e->shape == s.shape, "inspect: tensor '{}' is {} {}, the metadata implies {} {}",
                 s.name, dtype_name(e->dtype), e->shape, dtype_name(s.dtype), s.shape);
      layer_tensors.insert(s.name);
    }
    std::string kind = to_string(l.method) + " " + l.codebook.name() +
                       (l.method == Method::Lords ? " r" + std::to_string(l.rank) : " B" + std::to_string(l.block));
    summary.tensors.push_back({weight_name(l.base), kind, {l.rows, l.cols}, l.bits_per_weight()});
    summary.quantized_parameters += l.rows * l.cols;
    bits += l.bits_per_weight() * static_cast<double>(l.rows * l.cols);
  }
  for (const auto& name : input.names()) {
    if (layer_tensors.count(name)) continue;
    const TensorEntry& e = input.at(name);
    summary.tensors.push_back({name, std::string(dtype_name(e.dtype)), e.shape, 8.0 * dtype_size(e.dtype)});
  }
  std::sort(summary.tensors.begin(), summary.tensors.end(),
            [](const TensorSummary& a, const TensorSummary& b) { return a.name < b.name; });
  for (const auto& t : summary.tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    summary.parameters += n;
  }
  summary.quantized_layers = static_cast<int>(layers.size());
  summary.quantized_bits_per_weight = summary.quantized_parameters ? bits / summary.quantized_parameters : 0;
  for (const auto& shard : input.shards()) summary.file_bytes += static_cast<double>(fs::file_size(shard.path()));
  return summary;
}

}  // namespace hilo::lords
