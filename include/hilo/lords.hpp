// LoRDS: low-rank decomposed scaling (W ~ Q . (B A), arXiv 2601.22716) and the block-wise absmax baseline
// (bitsandbytes / QLoRA style), on the CPU. Semantics: docs/lords.md (and ../shared/docs/lords-spec.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hilo/tensor.hpp"

namespace hilo::lords {

// ---- Codebooks (values in [-1, 1], ascending, 2^bits entries) ----
enum class CodebookKind { NF, INT };

struct Codebook {
  CodebookKind kind = CodebookKind::NF;
  int bits = 4;
  std::vector<float> values;  // ascending; codes index into it
  std::string name() const;   // "nf4", "int3", ...
  int zero_code() const;      // the code whose value is 0
};

// NF4 is bitsandbytes' table exactly; NF2/NF3 follow the same normal map (offset 0.9677083). INTk holds
// i / (2^(k-1) - 1) for i = -2^(k-1) .. 2^(k-1) - 1, clamped to [-1, 1]: the lowest code duplicates -1.
Codebook make_codebook(CodebookKind kind, int bits);
CodebookKind parse_codebook(std::string_view name);  // "nf" | "int"

// Index of the nearest value (ties to the lower code); NaN -> zero_code(); +-Inf -> the extreme codes.
uint8_t nearest_code(const Codebook& cb, float x);

// ---- Methods and configuration ----
enum class Method { Blockwise, Lords };
enum class Optimizer { Adam, ALS };
Method parse_method(std::string_view name);
Optimizer parse_optimizer(std::string_view name);
std::string to_string(Method m);
std::string to_string(Optimizer o);

struct QuantConfig {
  Method method = Method::Lords;
  CodebookKind codebook = CodebookKind::NF;
  int bits = 4;
  int block = 64;  // a multiple of 32 in [32, 256]. Block-wise: scale block along the input dim; LoRDS: sets the parity rank and the init
  int rank = 0;    // LoRDS rank; 0: parity with `block` (same bits per weight as block-wise)
  Optimizer optimizer = Optimizer::Adam;  // reaches lower error per second than ALS (docs/results/lords-quality.md)
  int steps = -1;         // refinement iterations; -1: the optimizer's default (Adam 500 as in the paper, ALS 20)
  float learning_rate = 0.1f;  // Adam: step size relative to each factor's initial RMS
  uint64_t seed = 0;            // initialises rank components beyond the block scales' rank
  int threads = 0;
  // -1: the CPU. >= 0: LoRDS' Adam refinement runs on that CUDA device (the rest, and block-wise, on the CPU);
  // same format and code rule, errors within rounding of the CPU's (docs/lords.md, "GPU refinement").
  int device = -1;
  std::vector<float> act_sq;    // optional: mean squared activation per input channel (activation-aware error)
  std::function<void(double)> on_step;  // optional: called between refinement steps with the fraction done
};

// Rank at parameter parity with block size B: floor(rows * cols / (B * (rows + cols))), at least 1.
int parity_rank(int64_t rows, int64_t cols, int block);

// A quantized linear layer W [rows, cols] (rows = outputs). Codes are packed little-endian per row (docs/lords.md).
struct QuantizedLinear {
  Method method = Method::Lords;
  Codebook codebook;
  int block = 64;
  int rank = 0;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> qweight;  // [rows, cols * bits / 8]
  std::vector<uint16_t> scales;  // block-wise: bf16 [rows, cols / block]
  std::vector<uint16_t> b, a;    // LoRDS: bf16 [rows, rank], [rank, cols]
  int64_t row_bytes() const { return cols * codebook.bits / 8; }
  double bits_per_weight() const;  // codes, scales and factors, counted from what is stored
};

struct QuantReport {
  double rel_error = 0;       // ||W - W^||_F / ||W||_F (unweighted)
  double init_rel_error = 0;  // LoRDS: after the SVD initialisation, before refinement
  double seconds = 0;
  int steps = 0;
  std::vector<double> trace;  // LoRDS: relative (weighted) error after each refinement step
};

// W: host [rows, cols] F32, BF16 or F16. Refuses NaN/Inf, cols not divisible by block, unknown bit widths.
QuantizedLinear quantize(const TensorView& w, const QuantConfig& cfg, QuantReport* report = nullptr);
// W^ = dequantised weight, f32 [rows, cols].
void dequantize(const QuantizedLinear& q, float* out);
double relative_error(const TensorView& w, const QuantizedLinear& q);

// y [batch, rows] = x [batch, cols] . W^T straight from the packed format (never the whole W^), f32.
void matmul(const QuantizedLinear& q, const float* x, int64_t batch, float* y, int threads = 0);
// The dense baseline on the same tiled driver: y [batch, rows] = x [batch, cols] . W^T for a bf16 W [rows, cols].
void matmul_bf16(const uint16_t* w, int64_t rows, int64_t cols, const float* x, int64_t batch, float* y,
                 int threads = 0);
// The same for an f32 W [rows, cols] whose rows are `ldw` floats apart (ldw >= cols).
void matmul_f32(const float* w, int64_t rows, int64_t cols, int64_t ldw, const float* x, int64_t batch, float* y,
                int threads = 0);
namespace reference {
// Dequantise, then a plain f64-accumulated matmul: the oracle of lords::matmul.
void matmul(const QuantizedLinear& q, const float* x, int64_t batch, float* y);
}  // namespace reference

}  // namespace hilo::lords
