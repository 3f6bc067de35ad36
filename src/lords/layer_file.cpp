// Files of quantized layers: save_layers / load_layers (one safetensors file, the checkpoint format's tensors and
// metadata), and the consistency check used for layers built from caller-supplied arrays.
#include <set>

#include "../core/check.hpp"
#include "hilo/lords_io.hpp"

namespace hilo::lords {

void check_layer(const QuantizedLinear& q, const std::string& where) {
  const int bits = q.codebook.bits;
  HILO_CHECK(bits >= 2 && bits <= 4 && q.codebook.values == make_codebook(q.codebook.kind, bits).values,
             "{}: codebook '{}' is not one of hilo's tables", where, q.codebook.name());
  HILO_CHECK(q.rows > 0 && q.cols > 0, "{}: shape [{}, {}] must be positive", where, q.rows, q.cols);
  HILO_CHECK(q.block >= 32 && q.block <= 256 && q.block % 32 == 0 && q.cols % q.block == 0,
             "{}: block = {} must be a multiple of 32 in [32, 256] dividing cols = {}", where, q.block, q.cols);
  HILO_CHECK(static_cast<int64_t>(q.qweight.size()) == q.rows * q.row_bytes(), "{}: qweight holds {} bytes, expected {}",
             where, q.qweight.size(), q.rows * q.row_bytes());
  auto finite = [&](const std::vector<uint16_t>& v, const char* name) {
    for (std::size_t i = 0; i < v.size(); ++i)
      HILO_CHECK((v[i] & 0x7F80u) != 0x7F80u, "{}: {}[{}] is not finite", where, name, i);
  };
  if (q.method == Method::Blockwise) {
    HILO_CHECK(static_cast<int64_t>(q.scales.size()) == q.rows * (q.cols / q.block),
               "{}: scales hold {} values, expected {} ([rows, cols / block])", where, q.scales.size(),
               q.rows * (q.cols / q.block));
    HILO_CHECK(q.b.empty() && q.a.empty(), "{}: a block-wise layer has no LoRDS factors", where);
    finite(q.scales, "scales");
  } else {
    HILO_CHECK(q.rank >= 1 && q.rank <= std::min(q.rows, q.cols), "{}: rank = {} must be in [1, min(rows, cols)]",
               where, q.rank);
    HILO_CHECK(static_cast<int64_t>(q.b.size()) == q.rows * q.rank, "{}: b holds {} values, expected {} ([rows, rank])",
               where, q.b.size(), q.rows * q.rank);
    HILO_CHECK(static_cast<int64_t>(q.a.size()) == q.rank * q.cols, "{}: a holds {} values, expected {} ([rank, cols])",
               where, q.a.size(), q.rank * q.cols);
    HILO_CHECK(q.scales.empty(), "{}: a LoRDS layer has no block scales", where);
    finite(q.b, "b");
    finite(q.a, "a");
  }
}

void save_layers(const std::string& path, const std::map<std::string, QuantizedLinear>& layers, DType source_dtype,
                 const std::vector<NamedTensor>& extra) {
  std::vector<NamedTensor> tensors;
  Metadata metadata;
  std::set<std::string> names;
  auto add = [&](const std::string& name, TensorView view) {
    HILO_CHECK(names.insert(name).second, "save_layers: tensor name '{}' appears twice", name);
    tensors.push_back({name, view});
  };
  for (const auto& [base, q] : layers) {
    check_layer(q, "save_layers: layer '" + base + "'");
    const LayerInfo info = layer_info(q, base, source_dtype);
    const auto specs = info.tensor_specs();
    add(specs[0].name, TensorView(q.qweight.data(), DType::U8, specs[0].shape));
    if (q.method == Method::Blockwise) {
      add(specs[1].name, TensorView(q.scales.data(), DType::BF16, specs[1].shape));
    } else {
      add(specs[1].name, TensorView(q.b.data(), DType::BF16, specs[1].shape));
      add(specs[2].name, TensorView(q.a.data(), DType::BF16, specs[2].shape));
    }
    metadata[info.metadata_key()] = info.metadata_json();
  }
  for (const auto& t : extra) add(t.name, t.view);
  write_safetensors(path, tensors, metadata);
}

std::map<std::string, QuantizedLinear> load_layers(const std::string& path) {
  const Checkpoint checkpoint = Checkpoint::open(path);
  std::map<std::string, QuantizedLinear> layers;
  for (const auto& info : quantized_layers(checkpoint)) layers.emplace(info.base, load_layer(checkpoint, info));
  return layers;
}

}  // namespace hilo::lords
