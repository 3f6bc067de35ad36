// The Llama forward pass: config parsing (and refusals), logits of the real fixture pinned against an independent
// numpy forward pass (tests/tools/llama_reference.py, float64), thread-count independence, eval identities.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "hilo/error.hpp"
#include "hilo/eval.hpp"
#include "hilo/llama.hpp"
#include "hilo/safetensors.hpp"
#include "test_util.hpp"

namespace hilo {
namespace {
namespace fs = std::filesystem;

const std::string kConfig = R"({"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 4,
  "num_attention_heads": 8, "num_key_value_heads": 4, "intermediate_size": 1536, "vocab_size": 4096,
  "rms_norm_eps": 1e-5, "hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
  "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, "tie_word_embeddings": false})";

// kConfig with one key set to a JSON value.
std::string with(const std::string& key, const std::string& value) {
  auto j = nlohmann::json::parse(kConfig);
  j[key] = nlohmann::json::parse(value);
  return j.dump();
}

void expect_refused(const std::string& json, const std::string& needle) {
  try {
    llama::parse_config(json, "config.json");
    FAIL() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LlamaConfig, ParsesTheFixtureShapeAndDefaults) {
  const auto c = llama::parse_config(kConfig, "config.json");
  EXPECT_EQ(c.hidden, 512);
  EXPECT_EQ(c.head_dim, 64);  // hidden / heads when head_dim is absent
  EXPECT_EQ(c.kv_heads, 4);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_FALSE(c.tie_embeddings);
  const auto legacy = llama::parse_config(
      with("rope_parameters", R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_theta": 500000.0})"),
      "config.json");
  EXPECT_EQ(legacy.rope.type, "llama3");
  EXPECT_DOUBLE_EQ(legacy.rope.theta, 500000.0);
  EXPECT_EQ(legacy.rope.original_max_position, 8192);
}

TEST(LlamaConfig, RefusesWhatItDoesNotImplementByName) {
  expect_refused("{not json", "not valid JSON");
  expect_refused(with("model_type", "\"mistral\""), "model_type");
  expect_refused(with("attention_bias", "true"), "attention_bias");
  expect_refused(with("mlp_bias", "true"), "mlp_bias");
  expect_refused(with("hidden_act", "\"gelu\""), "hidden_act");
  expect_refused(with("num_key_value_heads", "3"), "num_key_value_heads");
  expect_refused(with("hidden_size", "-4"), "hidden_size");
  expect_refused(with("rms_norm_eps", "0"), "rms_norm_eps");
  expect_refused(with("rope_parameters", R"({"rope_type": "yarn", "factor": 4.0})"), "yarn");
  expect_refused(with("rope_parameters", R"({"rope_type": "linear"})"), "factor");
  expect_refused(with("tie_word_embeddings", "\"yes\""), "tie_word_embeddings");
}

class LlamaFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(std::string(HILO_FIXTURE_DIR) + "/config.json"))
      model_ = new llama::Model(llama::Model::load(HILO_FIXTURE_DIR));
  }
  static void TearDownTestSuite() { delete model_; }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "no fixture at " << HILO_FIXTURE_DIR;
  }
  static std::vector<int32_t> tokens() { return eval::load_tokens(std::string(HILO_FIXTURE_DIR) + "/validation_tokens.safetensors"); }
  static llama::Model* model_;
};
llama::Model* LlamaFixture::model_ = nullptr;

// float64 logits from `python tests/tools/llama_reference.py ../shared/fixtures/tinylm --tokens 0:512
// --positions 3,7,15,511 --ids 0,1,2,100,4095` (numpy; bf16 weights widened exactly).
TEST_F(LlamaFixture, LogitsMatchTheIndependentReference) {
  const auto tok = tokens();
  const int64_t n = 512, hidden = 512, vocab = 4096;
  std::vector<float> h(n * hidden, NAN), logits(n * vocab, NAN);
  model_->hidden_states(tok.data(), n, h.data());
  model_->logits(h.data(), n, logits.data());
  const int ids[5] = {0, 1, 2, 100, 4095};
  const struct {
    int position;
    double expected[5];
  } pins[] = {
      {3, {-0.9366711731759043, -1.0235940812312638, 0.6557355963985796, -6.041667643144029, 1.9067372981371284}},
      {7, {-0.43093082109300385, 2.4992217369476704, -1.0150679456198382, -0.21931822940034562, -3.204755187366211}},
      {15, {-0.01142551376128731, -0.7017883291060371, 2.4338407832636415, -4.105217885582011, -0.9631692036691694}},
      {511, {-2.4511996738475537, -1.2077649480137056, -1.463655247506208, -6.184516029434686, -2.1973111060637676}},
  };
  constexpr double kTolerance = 1e-4;  // f32 compute against f64: every pin agrees within 1e-5 today
  for (const auto& p : pins)
    for (int i = 0; i < 5; ++i)
      EXPECT_NEAR(logits[p.position * vocab + ids[i]], p.expected[i], kTolerance) << "position " << p.position;
}

TEST_F(LlamaFixture, ResultsDoNotDependOnTheThreadCount) {
  SKIP_IF_HEAVY_SKIPPED();
  const auto tok = tokens();
  const int64_t n = 200, hidden = 512;
  const llama::Model one = llama::Model::load(HILO_FIXTURE_DIR, 1);
  std::vector<float> a(n * hidden, NAN), b(n * hidden, -1.0f);
  one.hidden_states(tok.data() + 1000, n, a.data());
  model_->hidden_states(tok.data() + 1000, n, b.data());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST_F(LlamaFixture, KldOfTheModelWithItselfIsZeroAndPerplexityAgrees) {
  const auto tok = tokens();
  eval::WindowOptions o;
  o.ctx = 128;
  o.max_windows = 2;
  const auto k = eval::kl_divergence(*model_, *model_, tok, o);
  const auto p = eval::perplexity(*model_, tok, o);
  EXPECT_EQ(k.kld_max, 0.0);
  EXPECT_EQ(k.top1_agreement, 1.0);
  EXPECT_EQ(k.base.mean_nll, p.mean_nll);
  EXPECT_EQ(p.tokens, 2 * 127);
  std::vector<int32_t> bad(tok.begin(), tok.begin() + 300);
  bad[77] = 4096;
  EXPECT_THROW(eval::perplexity(*model_, bad, o), Error);
  o.ctx = 1;
  EXPECT_THROW(eval::perplexity(*model_, tok, o), Error);
}

// Layer 0's q/k/v input is rmsnorm(embedding): its mean square per channel is easy to form by hand.
TEST_F(LlamaFixture, CalibrationStatisticsMatchAHandComputation) {
  const auto tok = tokens();
  eval::WindowOptions o;
  o.ctx = 64;
  o.max_windows = 1;
  const auto stats = eval::input_second_moments(*model_, tok, o, /*skip_windows=*/3);
  ASSERT_EQ(stats.size(), 28u);
  for (const auto& [name, h] : stats) EXPECT_EQ(h.size(), name.find("down_proj") != std::string::npos ? 1536u : 512u) << name;
  const auto& q = stats.at("model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(q, stats.at("model.layers.0.self_attn.v_proj.weight"));
  EXPECT_EQ(stats.at("model.layers.2.mlp.gate_proj.weight"), stats.at("model.layers.2.mlp.up_proj.weight"));

  const Checkpoint ck = Checkpoint::open(HILO_FIXTURE_DIR);
  const TensorEntry& embed = ck.at("model.embed_tokens.weight");
  const TensorEntry& norm = ck.at("model.layers.0.input_layernorm.weight");
  std::vector<double> expected(512, 0.0);
  for (int64_t t = 0; t < 64; ++t) {
    const int32_t id = tok[3 * 64 + t];
    double ss = 0;
    std::vector<double> e(512);
    for (int c = 0; c < 512; ++c) ss += (e[c] = load_as_f32(embed.data, embed.dtype, id * 512 + c)) * e[c];
    const double inv = 1 / std::sqrt(ss / 512 + 1e-5);
    for (int c = 0; c < 512; ++c) {
      const double v = load_as_f32(norm.data, norm.dtype, c) * e[c] * inv;
      expected[c] += v * v / 64;
    }
  }
  for (int c = 0; c < 512; ++c) EXPECT_NEAR(q[c], expected[c], 1e-5 * expected[c] + 1e-12) << "channel " << c;
  EXPECT_THROW(eval::input_second_moments(*model_, tok, o, /*skip_windows=*/1000000), Error);
}

}  // namespace
}  // namespace hilo
