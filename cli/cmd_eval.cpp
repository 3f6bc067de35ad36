// `hilo perplexity` and `hilo kld`: evaluation of plain and hilo-quantized Llama checkpoints (docs/eval.md).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "hilo/error.hpp"
#include "hilo/eval.hpp"
#include "hilo/safetensors.hpp"
#include "hilo/tokenizer.hpp"
#include "hilo/llama.hpp"
#include "progress.hpp"

namespace hilo::cli {
namespace {

struct EvalArgs {
  std::string tokens, text;
  eval::WindowOptions window;
  int threads = 0;
  bool json = false;
};

void add_eval_options(CLI::App* cmd, EvalArgs& a) {
  auto* tokens = cmd->add_option("--tokens", a.tokens, "safetensors file with an integer tensor 'tokens'")
                     ->check(CLI::ExistingFile);
  auto* text = cmd->add_option("--text", a.text, "UTF-8 text file, tokenized with the (base) model's tokenizer.json")
                   ->check(CLI::ExistingFile);
  tokens->excludes(text);  // one of them is required: checked when the command runs
  cmd->add_option("--ctx", a.window.ctx, "Tokens per window (non-overlapping windows)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-windows", a.window.max_windows, "Evaluate at most this many windows (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--threads", a.threads, "Threads (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--json", a.json, "Print the result as JSON on stdout");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot be read", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<int32_t> tokenize_file(const std::string& model_dir, const std::string& text_file) {
  const auto tokenizer = text::BpeTokenizer::load((std::filesystem::path(model_dir) / "tokenizer.json").string());
  ProgressBar bar("tokenize");
  auto ids = tokenizer.encode(read_file(text_file));
  bar.done();
  return ids;
}

// --tokens or --text (CLI11 refuses both).
std::vector<int32_t> eval_tokens(const EvalArgs& a, const std::string& model_dir) {
  if (!a.text.empty()) return tokenize_file(model_dir, a.text);
  if (a.tokens.empty()) throw Error("no input: give --tokens FILE (token ids) or --text FILE (UTF-8 text)");
  return eval::load_tokens(a.tokens);
}

nlohmann::json to_json(const eval::PerplexityResult& r) {
  return {{"ppl", r.ppl}, {"mean_nll", r.mean_nll}, {"tokens", r.tokens}, {"windows", r.windows}, {"seconds", r.seconds}};
}

llama::Model load_model(const std::string& path, int threads) {
  ProgressBar bar("load " + path);
  llama::Model m = llama::Model::load(path, threads);
  bar.done();
  return m;
}

Action add_perplexity(CLI::App& app) {
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a Llama checkpoint (plain or hilo-quantized) over "
                                               "non-overlapping windows of a token stream");
  auto model = std::make_shared<std::string>();
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("MODEL", *model, "Hugging Face model directory")->required()->check(CLI::ExistingDirectory);
  add_eval_options(cmd, *a);
  return [=]() {
    const auto tokens = eval_tokens(*a, *model);
    const llama::Model m = load_model(*model, a->threads);
    ProgressBar bar("perplexity");
    auto opts = a->window;
    opts.threads = a->threads;
    opts.on_window = [&](int64_t done, int64_t total) {
      bar.update(static_cast<double>(done) / total, fmt::format("{}/{} windows", done, total));
    };
    const auto r = eval::perplexity(m, tokens, opts);
    bar.done();
    if (a->json) {
      auto j = to_json(r);
      j["model"] = *model;
      j["ctx"] = a->window.ctx;
      j["linear_format"] = m.linear_format();
      std::cout << j.dump(2) << std::endl;
    } else {
      fmt::print("{}: perplexity {:.4f} (mean NLL {:.5f} nats) over {} predictions in {} windows of {}; {:.1f} s\n",
                 *model, r.ppl, r.mean_nll, r.tokens, r.windows, a->window.ctx, r.seconds);
      fmt::print("linear layers: {}\n", m.linear_format());
    }
    return 0;
  };
}

nlohmann::json to_json(const eval::KldResult& r, const std::string& base, const std::string& quant,
                       const llama::Model& mq, int64_t ctx) {
  return {{"base", base},
          {"quant", quant},
          {"ctx", ctx},
          {"base_ppl", r.base.ppl},
          {"quant_ppl", r.quant.ppl},
          {"kld_mean", r.kld_mean},
          {"kld_median", r.kld_median},
          {"kld_p99", r.kld_p99},
          {"kld_max", r.kld_max},
          {"top1_agreement", r.top1_agreement},
          {"tokens", r.tokens},
          {"windows", r.windows},
          {"seconds", r.seconds},
          {"quant_linear_format", mq.linear_format()}};
}

Action add_kld(CLI::App& app) {
  auto* cmd = app.add_subcommand("kld", "KL divergence of QUANT's next-token distribution from BASE's, top-1 "
                                        "agreement and both perplexities, in one pass (several QUANTs share it)");
  auto base = std::make_shared<std::string>();
  auto quants = std::make_shared<std::vector<std::string>>();
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("BASE", *base, "Reference model directory (e.g. the bf16 checkpoint)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("QUANT", *quants, "Model directories to compare (e.g. hilo-quantized versions of BASE)")
      ->required()
      ->check(CLI::ExistingDirectory);
  add_eval_options(cmd, *a);
  return [=]() {
    const auto tokens = eval_tokens(*a, *base);
    const llama::Model mb = load_model(*base, a->threads);
    std::vector<llama::Model> models;
    std::vector<const llama::Model*> ptrs;
    for (const auto& q : *quants) models.push_back(load_model(q, a->threads));
    for (const auto& m : models) ptrs.push_back(&m);
    ProgressBar bar("kld");
    auto opts = a->window;
    opts.threads = a->threads;
    opts.on_window = [&](int64_t done, int64_t total) {
      bar.update(static_cast<double>(done) / total, fmt::format("{}/{} windows", done, total));
    };
    const auto results = eval::kl_divergence(mb, ptrs, tokens, opts);
    bar.done();
    if (a->json) {
      nlohmann::json j = nlohmann::json::array();
      for (std::size_t i = 0; i < results.size(); ++i)
        j.push_back(to_json(results[i], *base, (*quants)[i], models[i], a->window.ctx));
      std::cout << (results.size() == 1 ? j[0] : j).dump(2) << std::endl;
      return 0;
    }
    fmt::print("base {}: perplexity {:.4f}; {} predictions in {} windows of {}; {:.1f} s\n", *base,
               results[0].base.ppl, results[0].tokens, results[0].windows, a->window.ctx, results[0].seconds);
    fmt::print("{:<40} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}\n", "quant", "ppl", "KLD mean", "KLD median",
               "KLD p99", "KLD max", "top-1");
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      fmt::print("{:<40} {:>10.4f} {:>10.6f} {:>10.6f} {:>10.6f} {:>10.4f} {:>8.4f}\n", (*quants)[i], r.quant.ppl,
                 r.kld_mean, r.kld_median, r.kld_p99, r.kld_max, r.top1_agreement);
      fmt::print("  linear layers: {}\n", models[i].linear_format());
    }
    return 0;
  };
}

Action add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Tokenize a UTF-8 text file with a model's tokenizer.json (byte-level "
                                             "BPE) into a safetensors file holding I32 'tokens'");
  auto model = std::make_shared<std::string>();
  auto text_file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("MODEL", *model, "Model directory holding tokenizer.json")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--text", *text_file, "UTF-8 text file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", *out, "Output .safetensors (written atomically)")->required();
  return [=]() {
    const auto ids = tokenize_file(*model, *text_file);
    const TensorView view(ids.data(), DType::I32, {static_cast<int64_t>(ids.size())});
    write_safetensors(*out, {{"tokens", view}}, {{"tokenizer", *model + "/tokenizer.json"}});
    fmt::print("{} tokens -> {}\n", ids.size(), *out);
    return 0;
  };
}

}  // namespace

std::map<std::string, Action> add_eval_commands(CLI::App& app) {
  return {{"perplexity", add_perplexity(app)}, {"kld", add_kld(app)}, {"tokenize", add_tokenize(app)}};
}

}  // namespace hilo::cli
