// config.json of a Hugging Face Llama checkpoint -> llama::Config. Anything the forward pass would silently get
// wrong (another architecture, biases, another activation, an unknown RoPE scaling) is refused by name.
#include <nlohmann/json.hpp>

#include "../core/check.hpp"
#include "hilo/llama.hpp"

namespace hilo::llama {
namespace {
using nlohmann::json;

int64_t positive_int(const json& j, const char* key, const std::string& where, int64_t fallback = -1) {
  if (!j.contains(key) || j[key].is_null()) {
    HILO_CHECK(fallback > 0, "{}: '{}' is missing", where, key);
    return fallback;
  }
  HILO_CHECK(j[key].is_number_integer() && j[key].get<int64_t>() > 0, "{}: '{}' = {} must be a positive integer",
             where, key, j[key].dump());
  return j[key].get<int64_t>();
}

double number(const json& j, const char* key, const std::string& where, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  HILO_CHECK(j[key].is_number(), "{}: '{}' = {} must be a number", where, key, j[key].dump());
  return j[key].get<double>();
}

void require_false(const json& j, const char* key, const std::string& where) {
  if (j.contains(key) && !j[key].is_null())
    HILO_CHECK(j[key].is_boolean() && !j[key].get<bool>(), "{}: '{}' = {} is not supported (only false)", where,
               key, j[key].dump());
}

// transformers 5 writes "rope_parameters"; older files "rope_theta" plus an optional "rope_scaling".
RopeConfig parse_rope(const json& j, const std::string& where) {
  json p = json::object();
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    p = j["rope_parameters"];
  } else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    p = j["rope_scaling"];
  }
  RopeConfig r;
  r.theta = number(p, "rope_theta", where, number(j, "rope_theta", where, 10000.0));
  HILO_CHECK(r.theta > 1, "{}: rope_theta = {} must be > 1", where, r.theta);
  std::string type = "default";
  for (const char* key : {"rope_type", "type"})
    if (p.contains(key) && p[key].is_string()) type = p[key].get<std::string>();
  r.type = type;
  if (type == "default") return r;
  r.factor = number(p, "factor", where, 0);
  HILO_CHECK(r.factor > 0, "{}: RoPE '{}' needs 'factor' > 0 (got {})", where, type, r.factor);
  if (type == "linear") return r;
  if (type == "llama3") {
    r.low_freq_factor = number(p, "low_freq_factor", where, 1.0);
    r.high_freq_factor = number(p, "high_freq_factor", where, 4.0);
    r.original_max_position = positive_int(p, "original_max_position_embeddings", where, 8192);
    HILO_CHECK(r.high_freq_factor > r.low_freq_factor, "{}: RoPE llama3 needs high_freq_factor > low_freq_factor",
               where);
    return r;
  }
  fail("{}: rope_type '{}' is not supported (default, linear, llama3)", where, type);
}

}  // namespace

Config parse_config(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({})", where, e.what());
  }
  HILO_CHECK(j.is_object(), "{}: must hold a JSON object", where);
  const std::string model_type = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  HILO_CHECK(model_type == "llama", "{}: model_type '{}' is not supported (only 'llama')", where, model_type);
  if (j.contains("hidden_act"))
    HILO_CHECK(j["hidden_act"] == "silu", "{}: hidden_act {} is not supported (only \"silu\")", where,
               j["hidden_act"].dump());
  require_false(j, "attention_bias", where);
  require_false(j, "mlp_bias", where);
  if (j.contains("pretraining_tp") && !j["pretraining_tp"].is_null())
    HILO_CHECK(j["pretraining_tp"] == 1, "{}: pretraining_tp = {} is not supported (only 1)", where,
               j["pretraining_tp"].dump());

  Config c;
  c.hidden = positive_int(j, "hidden_size", where);
  c.layers = positive_int(j, "num_hidden_layers", where);
  c.heads = positive_int(j, "num_attention_heads", where);
  c.kv_heads = positive_int(j, "num_key_value_heads", where, c.heads);
  c.head_dim = positive_int(j, "head_dim", where, c.hidden % c.heads == 0 ? c.hidden / c.heads : -1);
  c.intermediate = positive_int(j, "intermediate_size", where);
  c.vocab = positive_int(j, "vocab_size", where);
  c.rms_eps = number(j, "rms_norm_eps", where, 1e-6);
  HILO_CHECK(c.rms_eps > 0, "{}: rms_norm_eps = {} must be positive", where, c.rms_eps);
  HILO_CHECK(c.heads % c.kv_heads == 0, "{}: num_attention_heads = {} must be a multiple of num_key_value_heads = {}",
             where, c.heads, c.kv_heads);
  HILO_CHECK(c.head_dim % 2 == 0, "{}: head_dim = {} must be even (RoPE rotates pairs)", where, c.head_dim);
  c.rope = parse_rope(j, where);
  if (j.contains("tie_word_embeddings") && !j["tie_word_embeddings"].is_null()) {
    HILO_CHECK(j["tie_word_embeddings"].is_boolean(), "{}: 'tie_word_embeddings' = {} must be true or false", where,
               j["tie_word_embeddings"].dump());
    c.tie_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  return c;
}

}  // namespace hilo::llama
