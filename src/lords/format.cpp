// The packed safetensors format of one quantized layer: tensor specs, the "hilo:<base>" metadata, and loading.
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "../core/check.hpp"
#include "hilo/lords_io.hpp"

namespace hilo::lords {

std::string weight_name(const std::string& base) { return base + ".weight"; }

std::vector<TensorSpec> LayerInfo::tensor_specs() const {
  std::vector<TensorSpec> specs{{base + ".qweight", DType::U8, {rows, cols * codebook.bits / 8}}};
  if (method == Method::Blockwise) {
    specs.push_back({base + ".scales", DType::BF16, {rows, cols / block}});
  } else {
    specs.push_back({base + ".lords_b", DType::BF16, {rows, rank}});
    specs.push_back({base + ".lords_a", DType::BF16, {rank, cols}});
  }
  return specs;
}

double LayerInfo::bits_per_weight() const {
  double bits = 0;
  for (const auto& s : tensor_specs()) bits += 8.0 * static_cast<double>(s.nbytes());
  return bits / static_cast<double>(rows * cols);
}

std::string LayerInfo::metadata_json() const {
  nlohmann::json j = {{"method", to_string(method)},
                      {"bits", codebook.bits},
                      {"codebook", codebook.name()},
                      {"codebook_values", codebook.values},
                      {"block", block},
                      {"shape", {rows, cols}},
                      {"source_dtype", std::string(dtype_name(source_dtype))},
                      {"format_version", 1}};
  if (method == Method::Lords) j["rank"] = rank;
  return j.dump();
}

LayerInfo layer_info(const QuantizedLinear& q, const std::string& base, DType source_dtype) {
  LayerInfo info;
  info.base = base;
  info.method = q.method;
  info.codebook = q.codebook;
  info.block = q.block;
  info.rank = q.method == Method::Lords ? q.rank : 0;
  info.rows = q.rows;
  info.cols = q.cols;
  info.source_dtype = source_dtype;
  return info;
}

LayerInfo parse_layer_metadata(const std::string& key, const std::string& json) {
  HILO_CHECK(key.rfind("hilo:", 0) == 0 && key.size() > 5, "metadata key '{}' does not name a hilo layer", key);
  LayerInfo info;
  info.base = key.substr(5);
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    HILO_CHECK(j.value("format_version", 0) == 1, "metadata '{}': unsupported format_version", key);
    info.method = parse_method(j.at("method").get<std::string>());
    const std::string cb = j.at("codebook").get<std::string>();
    const int bits = j.at("bits").get<int>();
    HILO_CHECK(cb == "nf" + std::to_string(bits) || cb == "int" + std::to_string(bits),
               "metadata '{}': codebook '{}' does not match bits = {}", key, cb, bits);
    info.codebook = make_codebook(parse_codebook(cb.substr(0, cb.size() - 1)), bits);
    const auto values = j.at("codebook_values").get<std::vector<float>>();
    HILO_CHECK(values == info.codebook.values, "metadata '{}': codebook_values differ from hilo's {} table", key, cb);
    info.block = j.at("block").get<int>();
    const auto shape = j.at("shape").get<std::vector<int64_t>>();
    HILO_CHECK(shape.size() == 2 && shape[0] > 0 && shape[1] > 0, "metadata '{}': shape must be [rows, cols]", key);
    info.rows = shape[0], info.cols = shape[1];
    HILO_CHECK(info.block >= 32 && info.block <= 256 && info.block % 32 == 0 && info.cols % info.block == 0,
               "metadata '{}': block = {} is invalid for {} columns", key, info.block, info.cols);
    if (info.method == Method::Lords) {
      info.rank = j.at("rank").get<int>();
      HILO_CHECK(info.rank >= 1 && info.rank <= std::min(info.rows, info.cols), "metadata '{}': rank = {} is invalid",
                 key, info.rank);
    }
    info.source_dtype = parse_dtype(j.value("source_dtype", std::string("BF16")), "source_dtype");
  } catch (const nlohmann::json::exception& e) {
    fail("metadata '{}' is not a valid hilo layer description ({})", key, e.what());
  }
  return info;
}

std::vector<LayerInfo> quantized_layers(const Checkpoint& checkpoint) {
  std::vector<LayerInfo> layers;
  for (const auto& shard : checkpoint.shards())
    for (const auto& [key, value] : shard.metadata())
      if (key.rfind("hilo:", 0) == 0) layers.push_back(parse_layer_metadata(key, value));
  std::sort(layers.begin(), layers.end(), [](const LayerInfo& a, const LayerInfo& b) { return a.base < b.base; });
  for (std::size_t i = 1; i < layers.size(); ++i)
    HILO_CHECK(layers[i].base != layers[i - 1].base, "checkpoint '{}': layer '{}' is described twice",
               checkpoint.path(), layers[i].base);
  return layers;
}

namespace {
template <typename T>
std::vector<T> read_tensor(const Checkpoint& checkpoint, const TensorSpec& spec) {
  const TensorEntry& e = checkpoint.at(spec.name);
  HILO_CHECK(e.dtype == spec.dtype && e.shape == spec.shape, "checkpoint '{}': tensor '{}' is {} {}, expected {} {}",
             checkpoint.path(), spec.name, dtype_name(e.dtype), e.shape, dtype_name(spec.dtype), spec.shape);
  std::vector<T> out(e.nbytes / sizeof(T));
  if (e.nbytes) std::memcpy(out.data(), e.data, e.nbytes);  // copies: the mapped data may be unaligned
  return out;
}

void check_finite_bf16(const std::vector<uint16_t>& v, const Checkpoint& checkpoint, const std::string& name) {
  for (std::size_t i = 0; i < v.size(); ++i)
    HILO_CHECK((v[i] & 0x7F80u) != 0x7F80u, "checkpoint '{}': tensor '{}' holds a non-finite value at {}",
               checkpoint.path(), name, i);
}
}  // namespace

QuantizedLinear load_layer(const Checkpoint& checkpoint, const LayerInfo& info) {
  const auto specs = info.tensor_specs();
  QuantizedLinear q;
  q.method = info.method;
  q.codebook = info.codebook;
  q.block = info.block;
  q.rank = info.rank;
  q.rows = info.rows;
  q.cols = info.cols;
  q.qweight = read_tensor<uint8_t>(checkpoint, specs[0]);
  if (info.method == Method::Blockwise) {
    q.scales = read_tensor<uint16_t>(checkpoint, specs[1]);
    check_finite_bf16(q.scales, checkpoint, specs[1].name);
  } else {
    q.b = read_tensor<uint16_t>(checkpoint, specs[1]);
    q.a = read_tensor<uint16_t>(checkpoint, specs[2]);
    check_finite_bf16(q.b, checkpoint, specs[1].name);
    check_finite_bf16(q.a, checkpoint, specs[2].name);
  }
  return q;
}

}  // namespace hilo::lords
