// `hilo quantize`, `hilo dequantize`, `hilo inspect`: LoRDS / block-wise quantization of Hugging Face checkpoints.
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "hilo/error.hpp"
#include "hilo/eval.hpp"
#include "hilo/llama.hpp"
#include "hilo/lords_io.hpp"
#include "progress.hpp"

namespace hilo::cli {
namespace {

std::atomic<bool> g_interrupted{false};

// Ctrl-C (or SIGTERM) stops the job at the next progress report; the temporary output is then removed.
void install_interrupt_handler() {
  auto handler = [](int) { g_interrupted = true; };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

void check_interrupted() {
  if (g_interrupted) throw Error("interrupted: no output was written");
}

nlohmann::json to_json(const lords::CheckpointQuantResult& r, const lords::CheckpointQuantOptions& o,
                       const std::string& out) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : r.tensors)
    tensors.push_back({{"name", t.name},
                       {"rows", t.rows},
                       {"cols", t.cols},
                       {"rank", t.rank},
                       {"bits_per_weight", t.bits_per_weight},
                       {"rel_error", t.rel_error},
                       {"init_rel_error", t.init_rel_error},
                       {"steps", t.steps},
                       {"seconds", t.seconds}});
  const auto& c = o.config;
  return {{"output", out},
          {"method", lords::to_string(c.method)},
          {"bits", c.bits},
          {"codebook", lords::make_codebook(c.codebook, c.bits).name()},
          {"block", c.block},
          {"optimizer", lords::to_string(c.optimizer)},
          {"device", c.device >= 0 ? fmt::format("cuda:{}", c.device) : std::string("cpu")},
          {"tensors", tensors},
          {"carried", r.carried},
          {"rel_error_mean", r.rel_error_mean},
          {"bits_per_weight", r.bits_per_weight},
          {"seconds", r.seconds}};
}

std::string to_table(const lords::CheckpointQuantResult& r) {
  std::string s = fmt::format("{:<48} {:>12} {:>5} {:>8} {:>10} {:>8}\n", "tensor", "shape", "rank", "bits/w",
                              "rel_error", "seconds");
  for (const auto& t : r.tensors)
    s += fmt::format("{:<48} {:>12} {:>5} {:>8.4f} {:>10.5f} {:>8.2f}\n", t.name,
                     fmt::format("{}x{}", t.rows, t.cols), t.rank, t.bits_per_weight, t.rel_error, t.seconds);
  s += fmt::format("{} tensors quantized, {} carried over; mean rel_error {:.5f}, {:.4f} bits per weight, {:.1f} s\n",
                   r.tensors.size(), r.carried, r.rel_error_mean, r.bits_per_weight, r.seconds);
  return s;
}

struct Calibration {
  std::string tokens;
  eval::WindowOptions window = [] {
    eval::WindowOptions w;
    w.max_windows = 32;
    return w;
  }();
  int64_t skip = 0;
};

std::map<std::string, std::vector<float>> calibrate(const std::string& model, const Calibration& c, int threads) {
  const auto tokens = eval::load_tokens(c.tokens);
  const llama::Model m = llama::Model::load(model, threads);
  ProgressBar bar("calibrate");
  auto window = c.window;
  window.threads = threads;
  window.on_window = [&](int64_t done, int64_t total) {
    check_interrupted();
    bar.update(static_cast<double>(done) / total, fmt::format("{}/{} windows", done, total));
  };
  auto stats = eval::input_second_moments(m, tokens, window, c.skip);
  bar.done();
  return stats;
}

Action add_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize",
                                 "Quantize the linear layers of a Hugging Face checkpoint (LoRDS or block-wise absmax) "
                                 "into hilo's packed safetensors format (docs/lords.md)");
  auto model = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>("lords");
  auto codebook = std::make_shared<std::string>("nf");
  auto optimizer = std::make_shared<std::string>("adam");
  auto opts = std::make_shared<lords::CheckpointQuantOptions>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("MODEL", *model, "Hugging Face model directory (single or sharded safetensors) or one .safetensors")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("-o,--output", *out, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--method", *method, "lords: low-rank scales S = B.A; blockwise: one absmax scale per block")
      ->check(CLI::IsMember({"lords", "blockwise"}))
      ->capture_default_str();
  cmd->add_option("--bits", opts->config.bits, "Bits per code")->check(CLI::IsMember({2, 3, 4}))->capture_default_str();
  cmd->add_option("--codebook", *codebook, "nf: normal-float (NF4 = bitsandbytes); int: symmetric integers")
      ->check(CLI::IsMember({"nf", "int"}))
      ->capture_default_str();
  cmd->add_option("--block", opts->config.block,
                  "Block size (32..256, a multiple of 32): block-wise scale block; LoRDS parity rank and init")
      ->capture_default_str();
  cmd->add_option("--rank", opts->config.rank, "LoRDS rank (0: parity with --block, same bits per weight)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--steps", opts->config.steps, "LoRDS refinement steps (-1: adam 500, als 20)")
      ->check(CLI::Range(-1, 1000000))
      ->capture_default_str();
  cmd->add_option("--optimizer", *optimizer, "LoRDS refinement: adam (the paper's) or als (alternating least squares)")
      ->check(CLI::IsMember({"adam", "als"}))
      ->capture_default_str();
  cmd->add_option("--lr", opts->config.learning_rate, "Adam step size, relative to each factor's RMS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--include", opts->include, "Quantize tensors whose name matches this regex (searched)")
      ->capture_default_str();
  auto device = std::make_shared<std::string>("cpu");
  cmd->add_option("--device", *device,
                  "Where LoRDS' Adam refinement runs: cpu, cuda or cuda:N (initialisation, final codes and block-wise "
                  "scales stay on the CPU)")
      ->capture_default_str();
  cmd->add_option("--threads", opts->config.threads, "Threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", opts->config.seed, "Seed (initialises rank components beyond the block scales' rank)")
      ->capture_default_str();
  auto calib = std::make_shared<Calibration>();
  cmd->add_option("--calibration", calib->tokens,
                  "LoRDS: activation-aware refinement, weighting each input channel by its mean squared activation "
                  "over these tokens (safetensors 'tokens'; the model must be a Llama checkpoint)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--calibration-windows", calib->window.max_windows, "Calibration windows")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--calibration-ctx", calib->window.ctx, "Tokens per calibration window")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--calibration-skip", calib->skip, "Windows skipped at the start of the calibration tokens")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--force", opts->replace_output, "Replace an existing output directory");
  cmd->add_flag("--json", *json, "Print the report as JSON on stdout");
  return [=]() {
    opts->config.method = lords::parse_method(*method);
    opts->config.codebook = lords::parse_codebook(*codebook);
    opts->config.optimizer = lords::parse_optimizer(*optimizer);
    const Device dev = parse_device(*device, "quantize: --device");
    opts->config.device = dev.kind == DeviceKind::CUDA ? dev.index : -1;
    install_interrupt_handler();
    if (!calib->tokens.empty()) {
      if (opts->config.method != lords::Method::Lords)
        throw Error("quantize: --calibration applies to --method lords (block-wise absmax scales use no data)");
      opts->act_sq = calibrate(*model, *calib, opts->config.threads);
    }
    ProgressBar bar("quantize");
    opts->on_progress = [&](const lords::Progress& p) {
      check_interrupted();
      bar.update(p.fraction, p.tensor);
    };
    const auto result = lords::quantize_checkpoint(*model, *out, *opts);
    bar.done();
    if (*json)
      std::cout << to_json(result, *opts, *out).dump(2) << std::endl;
    else
      std::cout << to_table(result);
    return 0;
  };
}

Action add_dequantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("dequantize", "Write a plain bf16 Hugging Face checkpoint from a hilo-quantized one");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  cmd->add_option("QUANTIZED", *in, "hilo-quantized checkpoint (directory or .safetensors)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("-o,--output", *out, "Output directory (must not exist unless --force)")->required();
  cmd->add_flag("--force", *force, "Replace an existing output directory");
  return [=]() {
    install_interrupt_handler();
    ProgressBar bar("dequantize");
    lords::dequantize_checkpoint(*in, *out, *force, [&](const lords::Progress& p) {
      check_interrupted();
      bar.update(p.fraction, p.tensor);
    });
    bar.done();
    std::cout << "wrote " << *out << "\n";
    return 0;
  };
}

Action add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a checkpoint: tensors, quantization format, bits per weight");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("FILE", *path, "Checkpoint directory or .safetensors file")->required()->check(CLI::ExistingPath);
  cmd->add_flag("--json", *json, "Print as JSON on stdout");
  return [=]() {
    const auto s = lords::inspect_checkpoint(*path);
    if (*json) {
      nlohmann::json tensors = nlohmann::json::array();
      for (const auto& t : s.tensors)
        tensors.push_back(
            {{"name", t.name}, {"format", t.dtype}, {"shape", t.shape}, {"bits_per_weight", t.bits_per_weight}});
      std::cout << nlohmann::json{{"path", s.path},
                                  {"tensors", tensors},
                                  {"parameters", s.parameters},
                                  {"quantized_layers", s.quantized_layers},
                                  {"quantized_parameters", s.quantized_parameters},
                                  {"quantized_bits_per_weight", s.quantized_bits_per_weight},
                                  {"file_bytes", s.file_bytes}}
                       .dump(2)
                << std::endl;
      return 0;
    }
    fmt::print("{:<56} {:<22} {:>14} {:>7}\n", "tensor", "format", "shape", "bits/w");
    for (const auto& t : s.tensors)
      fmt::print("{:<56} {:<22} {:>14} {:>7.3f}\n", t.name, t.dtype, fmt::format("{}", fmt::join(t.shape, "x")),
                 t.bits_per_weight);
    fmt::print("{} tensors, {} parameters; {} quantized layers ({} weights) at {:.4f} bits per weight; {:.1f} MB\n",
               s.tensors.size(), s.parameters, s.quantized_layers, s.quantized_parameters,
               s.quantized_bits_per_weight, s.file_bytes / 1e6);
    return 0;
  };
}

}  // namespace

std::map<std::string, Action> add_lords_commands(CLI::App& app) {
  return {{"quantize", add_quantize(app)}, {"dequantize", add_dequantize(app)}, {"inspect", add_inspect(app)}};
}

}  // namespace hilo::cli
