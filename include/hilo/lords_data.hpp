// Synthetic weight matrices with the structure LLM linear layers have (docs/lords.md, "Synthetic weights"):
// heavy-tailed entries, per-row and per-column magnitude structure and a few outlier input channels.
#pragma once

#include <cstdint>

namespace hilo::lords {

struct WeightSynthConfig {
  int64_t rows = 4096, cols = 4096;
  uint64_t seed = 0;
  double std = 0.02;              // typical magnitude of an entry
  double tail_dof = 5;            // entries ~ Student-t with this many degrees of freedom (heavy tails)
  double row_sigma = 0.35;        // log-normal spread of the per-output-row magnitude
  double col_sigma = 0.35;        // log-normal spread of the per-input-channel magnitude
  double outlier_fraction = 0.01; // input channels whose magnitude is multiplied by outlier_scale
  double outlier_scale = 6;
};

// Fills out [rows, cols] (f32). Every entry depends only on (seed, row, column): rows can be made in any order.
void synthetic_weight(const WeightSynthConfig& cfg, float* out);
// Rows [row0, row0 + n) only (for streaming a large matrix to disk).
void synthetic_weight_rows(const WeightSynthConfig& cfg, int64_t row0, int64_t n, float* out);

}  // namespace hilo::lords
