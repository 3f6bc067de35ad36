// The packed checkpoint format and the checkpoint jobs: layer metadata, quantize / dequantize / inspect of
// Hugging Face directories, and the guarantee that bad input leaves nothing behind.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hilo/lords_data.hpp"
#include "hilo/lords_io.hpp"
#include "test_util.hpp"

namespace hilo::lords {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

Tensor synthetic_bf16(int64_t rows, int64_t cols, uint64_t seed) {
  WeightSynthConfig c;
  c.rows = rows, c.cols = cols, c.seed = seed;
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  synthetic_weight(c, w.data());
  Tensor t(DType::BF16, {rows, cols});
  convert(w.data(), DType::F32, t.view().data(), DType::BF16, w.size());
  return t;
}

// A small Llama-like checkpoint in two shards (plus config.json), or one model.safetensors.
struct TinyModel {
  std::vector<std::pair<std::string, Tensor>> tensors;
  explicit TinyModel(uint64_t seed) {
    tensors.emplace_back("model.embed_tokens.weight", synthetic_bf16(32, 64, seed));
    tensors.emplace_back("model.layers.0.self_attn.q_proj.weight", synthetic_bf16(64, 64, seed + 1));
    tensors.emplace_back("model.layers.0.mlp.down_proj.weight", synthetic_bf16(64, 128, seed + 2));
    tensors.emplace_back("model.layers.0.mlp.up_proj.weight", synthetic_bf16(128, 64, seed + 3));
    Tensor norm(DType::F32, {64});
    std::fill(norm.ptr<float>(), norm.ptr<float>() + 64, 1.0f);
    tensors.emplace_back("model.norm.weight", std::move(norm));
  }
  void write(const fs::path& dir, bool sharded) const {
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << R"({"model_type": "llama"})";
    if (!sharded) {
      std::vector<NamedTensor> all;
      for (const auto& [n, t] : tensors) all.push_back({n, t.view()});
      write_safetensors((dir / "model.safetensors").string(), all, {{"format", "pt"}});
      return;
    }
    std::vector<NamedTensor> s1, s2;
    nlohmann::json map;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const bool first = i < 2;
      (first ? s1 : s2).push_back({tensors[i].first, tensors[i].second.view()});
      map[tensors[i].first] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    write_safetensors((dir / "model-00001-of-00002.safetensors").string(), s1, {{"format", "pt"}});
    write_safetensors((dir / "model-00002-of-00002.safetensors").string(), s2, {{"format", "pt"}});
    std::ofstream(dir / "model.safetensors.index.json") << nlohmann::json{{"weight_map", map}}.dump();
  }
};

// Nothing but the input in the temporary directory: no output, no leftover temporary directory.
void expect_only(const fs::path& dir, const std::set<std::string>& names) {
  std::set<std::string> seen;
  for (const auto& e : fs::directory_iterator(dir)) seen.insert(e.path().filename().string());
  EXPECT_EQ(seen, names);
}

TEST(LordsFormat, LayerMetadataRoundTrips) {
  for (auto m : {Method::Blockwise, Method::Lords}) {
    QuantizedLinear q;
    q.method = m;
    q.codebook = make_codebook(CodebookKind::INT, 3);
    q.block = 64, q.rank = m == Method::Lords ? 5 : 0, q.rows = 48, q.cols = 128;
    const LayerInfo info = layer_info(q, "model.layers.7.mlp.up_proj", DType::F16);
    const LayerInfo back = parse_layer_metadata(info.metadata_key(), info.metadata_json());
    EXPECT_EQ(back.base, info.base);
    EXPECT_EQ(back.method, m);
    EXPECT_EQ(back.codebook.values, q.codebook.values);
    EXPECT_EQ(back.block, 64);
    EXPECT_EQ(back.rank, q.rank);
    EXPECT_EQ(back.rows, 48);
    EXPECT_EQ(back.cols, 128);
    EXPECT_EQ(back.source_dtype, DType::F16);
    const auto specs = info.tensor_specs();
    EXPECT_EQ(specs[0].name, "model.layers.7.mlp.up_proj.qweight");
    EXPECT_EQ(specs[0].shape, (Shape{48, 48}));
    EXPECT_EQ(specs.size(), m == Method::Lords ? 3u : 2u);
    const double expect = m == Method::Lords ? 3.0 + 16.0 * 5 * (48 + 128) / (48.0 * 128) : 3.0 + 16.0 / 64;
    EXPECT_DOUBLE_EQ(info.bits_per_weight(), expect);
  }
}

TEST(LordsFormat, MalformedMetadataIsRefused) {
  QuantizedLinear q;
  q.method = Method::Lords;
  q.codebook = make_codebook(CodebookKind::NF, 4);
  q.block = 64, q.rank = 4, q.rows = 64, q.cols = 128;
  const LayerInfo info = layer_info(q, "l", DType::BF16);
  nlohmann::json good = nlohmann::json::parse(info.metadata_json());
  auto refuses = [&](nlohmann::json j, const std::string& needle) {
    EXPECT_HILO_ERROR(parse_layer_metadata("hilo:l", j.dump()), needle);
  };
  EXPECT_HILO_ERROR(parse_layer_metadata("hilo:l", "{not json"), "not a valid hilo layer");
  EXPECT_HILO_ERROR(parse_layer_metadata("other", good.dump()), "does not name a hilo layer");
  auto j = good;
  j["codebook_values"][3] = 0.5;
  refuses(j, "codebook_values differ");
  j = good, j["codebook"] = "nf3";
  refuses(j, "does not match bits");
  j = good, j["shape"] = {64};
  refuses(j, "shape");
  j = good, j["block"] = 48;
  refuses(j, "block = 48");
  j = good, j["rank"] = 0;
  refuses(j, "rank = 0");
  j = good, j["method"] = "gptq";
  refuses(j, "gptq");
  j = good, j.erase("bits");
  refuses(j, "not a valid hilo layer");
  j = good, j["format_version"] = 2;
  refuses(j, "format_version");
}

TEST(LordsCheckpoint, QuantizeDequantizeInspectSharded) {
  for (bool sharded : {true, false})
    for (auto method : {Method::Lords, Method::Blockwise}) {
      TempDir tmp;
      const TinyModel model(test::fresh_seed());
      model.write(tmp.path() / "in", sharded);
      CheckpointQuantOptions o;
      o.config.method = method;
      o.config.bits = 3;
      o.config.block = 32;
      o.config.steps = 10;
      double last = -1;
      o.on_progress = [&](const Progress& p) {
        EXPECT_GE(p.fraction, last);
        last = p.fraction;
      };
      const auto r = quantize_checkpoint((tmp.path() / "in").string(), (tmp.path() / "q").string(), o);
      EXPECT_DOUBLE_EQ(last, 1.0);
      ASSERT_EQ(r.tensors.size(), 3u);  // the *_proj weights
      EXPECT_EQ(r.carried, 2);
      EXPECT_TRUE(fs::exists(tmp.path() / "q" / "config.json"));
      EXPECT_EQ(fs::exists(tmp.path() / "q" / "model.safetensors.index.json"), sharded);
      expect_only(tmp.path(), {"in", "q"});

      const Checkpoint q = Checkpoint::open((tmp.path() / "q").string());
      const auto layers = quantized_layers(q);
      ASSERT_EQ(layers.size(), 3u);
      for (const auto& t : model.tensors) {
        const auto it = std::find_if(layers.begin(), layers.end(),
                                     [&](const LayerInfo& l) { return weight_name(l.base) == t.first; });
        if (it == layers.end()) {  // carried over byte for byte
          const TensorEntry& e = q.at(t.first);
          ASSERT_EQ(e.nbytes, t.second.nbytes());
          EXPECT_EQ(0, std::memcmp(e.data, t.second.view().data(), e.nbytes));
          continue;
        }
        const QuantizedLinear layer = load_layer(q, *it);
        const auto rt = std::find_if(r.tensors.begin(), r.tensors.end(), [&](auto& x) { return x.name == t.first; });
        ASSERT_NE(rt, r.tensors.end());
        EXPECT_NEAR(relative_error(t.second.view(), layer), rt->rel_error, 1e-12);
        EXPECT_DOUBLE_EQ(layer.bits_per_weight(), rt->bits_per_weight);
      }

      dequantize_checkpoint((tmp.path() / "q").string(), (tmp.path() / "d").string(), false);
      const Checkpoint d = Checkpoint::open((tmp.path() / "d").string());
      EXPECT_TRUE(quantized_layers(d).empty());
      EXPECT_EQ(d.names().size(), model.tensors.size());
      for (const auto& l : layers) {
        const TensorEntry& e = d.at(weight_name(l.base));
        EXPECT_EQ(e.dtype, DType::BF16);
        std::vector<float> w(l.rows * l.cols);
        dequantize(load_layer(q, l), w.data());
        std::vector<uint16_t> expect(w.size());
        convert(w.data(), DType::F32, expect.data(), DType::BF16, w.size());
        EXPECT_EQ(0, std::memcmp(e.data, expect.data(), e.nbytes));
      }
      for (const auto& shard : d.shards())
        for (const auto& [k, v] : shard.metadata()) EXPECT_NE(k.rfind("hilo", 0), 0u) << k;

      const CheckpointSummary s = inspect_checkpoint((tmp.path() / "q").string());
      EXPECT_EQ(s.quantized_layers, 3);
      EXPECT_EQ(s.quantized_parameters, 64 * 64 + 64 * 128 + 128 * 64);
      EXPECT_EQ(s.parameters, s.quantized_parameters + 32 * 64 + 64);
      EXPECT_NEAR(s.quantized_bits_per_weight, r.bits_per_weight, 1e-12);
      EXPECT_EQ(s.tensors.size(), 5u);
    }
}

TEST(LordsCheckpoint, BadInputWritesNothing) {
  TempDir tmp;
  const TinyModel model(test::fresh_seed());
  model.write(tmp.path() / "in", true);
  const std::string in = (tmp.path() / "in").string(), out = (tmp.path() / "q").string();
  CheckpointQuantOptions o;
  o.config.steps = 2;
  auto refuses = [&](const CheckpointQuantOptions& opts, const std::string& needle) {
    EXPECT_HILO_ERROR(quantize_checkpoint(in, out, opts), needle);
    expect_only(tmp.path(), {"in"});
  };
  auto c = o;
  c.include = "norm";
  refuses(c, "is 1-D");
  c = o, c.include = "(";
  refuses(c, "not a valid regular expression");
  c = o, c.include = "nothing-matches";
  refuses(c, "no tensor");
  c = o, c.config.block = 256;
  refuses(c, "does not divide the input dimension 64");
  c = o, c.config.bits = 1;
  refuses(c, "bits = 1");
  c = o, c.on_progress = [](const Progress& p) {
    if (p.fraction > 0.3) throw Error("stop");
  };
  refuses(c, "stop");  // an interrupted run leaves nothing
  EXPECT_HILO_ERROR(quantize_checkpoint((tmp.path() / "missing").string(), out, o), "does not exist");

  // A NaN in a weight is found when its tensor is read: the partial output is removed.
  TempDir tmp2;
  TinyModel nan_model(test::fresh_seed());
  nan_model.tensors[3].second.ptr<uint16_t>()[100] = 0x7FC0;
  nan_model.write(tmp2.path() / "in", false);
  EXPECT_HILO_ERROR(quantize_checkpoint((tmp2.path() / "in").string(), (tmp2.path() / "q").string(), o),
                    "model.layers.0.mlp.up_proj.weight");
  expect_only(tmp2.path(), {"in"});

  // An existing output is kept unless replace_output is set; a quantized input is not quantized again.
  quantize_checkpoint(in, out, o);
  EXPECT_HILO_ERROR(quantize_checkpoint(in, out, o), "already exists");
  c = o, c.replace_output = true, c.config.bits = 2;
  quantize_checkpoint(in, out, c);
  EXPECT_EQ(quantized_layers(Checkpoint::open(out)).front().codebook.bits, 2);
  expect_only(tmp.path(), {"in", "q"});
  EXPECT_HILO_ERROR(quantize_checkpoint(out, (tmp.path() / "qq").string(), o), "already a hilo-quantized");
  EXPECT_HILO_ERROR(dequantize_checkpoint(in, (tmp.path() / "d").string(), false), "no hilo-quantized layer");
  expect_only(tmp.path(), {"in", "q"});
}

// A checkpoint whose quantized tensors were damaged is refused on load with the tensor's name.
TEST(LordsCheckpoint, DamagedLayersAreRefused) {
  TempDir tmp;
  const TinyModel model(test::fresh_seed());
  model.write(tmp.path() / "in", false);
  CheckpointQuantOptions o;
  o.config.steps = 2;
  quantize_checkpoint((tmp.path() / "in").string(), (tmp.path() / "q").string(), o);
  const Checkpoint q = Checkpoint::open((tmp.path() / "q").string());
  // Rewrite the file with one factor entry set to Inf, and with a factor tensor of the wrong shape.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& name : q.names()) tensors.emplace_back(name, Tensor::copy_of(q.at(name).view()));
  const Metadata metadata = q.shards()[0].metadata();
  auto rewrite = [&](const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& damage) {
    std::vector<std::pair<std::string, Tensor>> copy;
    for (const auto& [n, t] : tensors) copy.emplace_back(n, Tensor::copy_of(t.view()));
    damage(copy);
    std::vector<NamedTensor> named;
    for (const auto& [n, t] : copy) named.push_back({n, t.view()});
    fs::create_directories(tmp.path() / "bad");
    write_safetensors((tmp.path() / "bad" / "model.safetensors").string(), named, metadata);
    return Checkpoint::open((tmp.path() / "bad").string());
  };
  {
    const Checkpoint bad = rewrite([](auto& ts) {
      for (auto& [n, t] : ts)
        if (n.ends_with("lords_a")) t.template ptr<uint16_t>()[0] = 0x7F80;
    });
    const auto layers = quantized_layers(bad);
    bool refused = false;
    for (const auto& l : layers) {
      try {
        load_layer(bad, l);
      } catch (const Error& e) {
        refused = std::string(e.what()).find("non-finite") != std::string::npos;
      }
    }
    EXPECT_TRUE(refused);
  }
  {
    const Checkpoint bad = rewrite([](auto& ts) {
      for (auto& [n, t] : ts)
        if (n == "model.layers.0.mlp.down_proj.lords_b") t = Tensor(DType::BF16, {3, 3});
    });
    EXPECT_HILO_ERROR(inspect_checkpoint((tmp.path() / "bad").string()), "down_proj.lords_b");
  }
}

// The real fixture: every *_proj.weight quantized, everything else carried, errors in the expected range.
TEST(LordsCheckpoint, FixtureModelQuantizes) {
  const std::string root = HILO_FIXTURE_DIR;
  if (!fs::exists(root + "/model.safetensors.index.json")) GTEST_SKIP() << "no fixture at " << root;
  TempDir tmp;
  CheckpointQuantOptions o;
  o.config.method = Method::Blockwise;
  const auto r = quantize_checkpoint(root, (tmp.path() / "q").string(), o);
  EXPECT_EQ(r.tensors.size(), 28u);  // 4 layers x 7 projections
  EXPECT_EQ(r.carried, 11);
  EXPECT_DOUBLE_EQ(r.bits_per_weight, 4.25);
  EXPECT_GT(r.rel_error_mean, 0.05);
  EXPECT_LT(r.rel_error_mean, 0.15);
  EXPECT_TRUE(fs::exists(tmp.path() / "q" / "tokenizer.json"));
}

}  // namespace
}  // namespace hilo::lords
