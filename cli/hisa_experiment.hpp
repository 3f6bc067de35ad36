// One HISA-vs-flat measurement on generated (or given) data: timings, overlap and needle recall, stage split.
// Shared by `hilo hisa` and the CPU benchmark so both measure the same way.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "hilo/hisa.hpp"
#include "hilo/hisa_data.hpp"

namespace hilo::cli {

struct HisaExperiment {
  hisa::SynthConfig synth;
  bool decode = false;
  int batch = 8, next_n = 1;  // decode
  hisa::HisaOptions hisa;     // topk, block, blocks_kept, pooled, threads
  int repeat = 1;             // timed runs of each indexer; the median is reported
  std::string input;          // prefill inputs from a safetensors file instead of generated data
  std::string output;         // writes flat_idx and hisa_idx here
  std::string save_inputs;    // prefill: writes the inputs (generated or not) in --input's format
  bool progress = true;       // progress bars on stderr (terminals only)
};

struct HisaExperimentResult {
  std::string mode, dtype, kernel;
  int64_t rows = 0, context = 0, heads = 0, dim = 0;
  int threads = 0;
  double flat_ms = 0, hisa_ms = 0, speedup = 0;
  double flat_gflop = 0, hisa_gflop = 0;  // arithmetic done (multiply-adds * 2), 1e9
  double cache_build_ms = 0;              // decode: first hisa_decode call, which pools every block once
  hisa::Overlap iou, block_only_iou;
  std::optional<double> needle_recall_flat, needle_recall_hisa;
  int64_t needles = 0;
  hisa::HisaStats stats;
};

HisaExperimentResult run_hisa_experiment(const HisaExperiment& exp);
nlohmann::json to_json(const HisaExperimentResult& r, const HisaExperiment& exp);
std::string to_table(const HisaExperimentResult& r, const HisaExperiment& exp);

}  // namespace hilo::cli
