// `hilo hisa`: flat indexer vs HISA on generated (or given) data; a table, or JSON with --json.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "hilo/error.hpp"
#include "hisa_experiment.hpp"

namespace hilo::cli {

Action add_hisa_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "hisa",
      "Run the flat DSA indexer and HISA on the same inputs and compare them: time, speedup, IoU of HISA's "
      "top-k against the flat one, IoU of stage 1 alone (block-only), and recall of planted needles. Inputs are "
      "generated (see docs/hisa.md) unless --input is given.");
  auto exp = std::make_shared<HisaExperiment>();
  auto mode = std::make_shared<std::string>("prefill");
  auto dtype = std::make_shared<std::string>("fp8");
  auto pooled = std::make_shared<std::string>("fp8");
  auto json = std::make_shared<bool>(false);
  exp->hisa.threads = 0;

  cmd->add_option("--mode", *mode, "prefill: a chunk of queries at the end of one causal sequence; decode: a batch "
                                   "of requests over a paged KV cache")
      ->check(CLI::IsMember({"prefill", "decode"}))
      ->capture_default_str();
  auto* context = cmd->add_option("--context", exp->synth.context, "Context length (keys per sequence/request)")
                      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
                      ->capture_default_str();
  auto* queries = cmd->add_option("--queries", exp->synth.queries, "Prefill: queries at the end of the context")
                      ->check(CLI::PositiveNumber)
                      ->capture_default_str();
  cmd->add_option("--batch", exp->batch, "Decode: requests")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--next-n", exp->next_n, "Decode: query tokens per request (speculative decoding)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  auto* heads = cmd->add_option("--heads", exp->synth.heads, "Indexer heads H")->check(CLI::Range(1, 1024))->capture_default_str();
  auto* dim = cmd->add_option("--dim", exp->synth.dim, "Head dimension D")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--topk", exp->hisa.topk, "Tokens selected per query")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--block", exp->hisa.block, "HISA block size B")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--blocks", exp->hisa.blocks_kept, "HISA blocks kept per query m (m*B >= topk)")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  auto* dtype_opt = cmd->add_option("--dtype", *dtype, "Element type of q and k")
                        ->check(CLI::IsMember({"fp8", "bf16", "f32"}))
                        ->capture_default_str();
  cmd->add_option("--pooled", *pooled, "Storage of pooled block keys")
      ->check(CLI::IsMember({"fp8", "bf16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--threads", exp->hisa.threads, "Threads (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  auto* seed = cmd->add_option("--seed", exp->synth.seed, "Seed of the generated data")->capture_default_str();
  cmd->add_option("--repeat", exp->repeat, "Timed runs of each indexer (median reported)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  auto* topics = cmd->add_option("--topics", exp->synth.topics,
                                 "Generated data: topic directions (orthonormal up to D/2 - 9, overlapping beyond)")
                     ->check(CLI::Range(1, 1 << 20))
                     ->capture_default_str();
  auto* relevant = cmd->add_option("--relevant-tokens", exp->synth.relevant_tokens,
                                   "Generated data: tokens of the passages a query segment attends to")
                       ->check(CLI::PositiveNumber)
                       ->capture_default_str();
  auto* span = cmd->add_option("--span", exp->synth.span_mean, "Generated data: mean topical span length (tokens)")
                   ->check(CLI::Range(1.0, 1e9))
                   ->capture_default_str();
  auto* needles = cmd->add_option("--needles", exp->synth.needles, "Generated data: planted needles")
                      ->check(CLI::Range(0, 1000))
                      ->capture_default_str();
  auto* input = cmd->add_option("--input", exp->input,
                                "Prefill inputs from a safetensors file: q [S,H,D] (F8_E4M3|BF16|F32), w [S,H] F32, "
                                "k [N,D], k_scale [N] F32, ks/ke [S] I32")
                    ->check(CLI::ExistingFile);
  for (auto* o : {context, queries, heads, dim, dtype_opt, seed, topics, relevant, span, needles}) input->excludes(o);
  cmd->add_option("--output", exp->output, "Write flat_idx and hisa_idx (I32 [rows, topk]) to this safetensors file");
  cmd->add_option("--save-inputs", exp->save_inputs, "Prefill: write the inputs in --input's format (to reuse them)");
  cmd->add_flag("--json", *json, "Print the results as one JSON object on stdout");

  return [=]() {
    exp->decode = *mode == "decode";
    exp->synth.dtype = *dtype == "fp8" ? DType::F8_E4M3 : *dtype == "bf16" ? DType::BF16 : DType::F32;
    exp->hisa.pooled = hisa::parse_pooled_format(*pooled);
    if (!exp->decode && exp->input.empty() && exp->synth.queries > exp->synth.context)
      throw Error(fmt::format("--queries {} is larger than --context {}", exp->synth.queries, exp->synth.context));
    const HisaExperimentResult r = run_hisa_experiment(*exp);
    if (*json)
      std::cout << to_json(r, *exp).dump(2) << std::endl;
    else
      std::cout << to_table(r, *exp);
    return 0;
  };
}

}  // namespace hilo::cli
