// Random quantized layers for the LoRDS benchmarks (CPU and GPU): random codes and NF scales/factors, since speed
// does not depend on the values.
#pragma once

#include <cmath>
#include <random>

#include "hilo/dtype.hpp"
#include "hilo/lords.hpp"

namespace hilo::bench {

inline lords::QuantizedLinear random_layer(lords::Method method, int bits, int block, int64_t rows, int64_t cols,
                                           std::mt19937_64& gen) {
  lords::QuantizedLinear q;
  q.method = method;
  q.codebook = lords::make_codebook(lords::CodebookKind::NF, bits);
  q.block = block;
  q.rows = rows, q.cols = cols;
  q.qweight.resize(static_cast<std::size_t>(rows * q.row_bytes()));
  for (auto& v : q.qweight) v = static_cast<uint8_t>(gen());
  std::normal_distribution<float> n(0.0f, 0.1f);
  if (method == lords::Method::Blockwise) {
    q.scales.resize(static_cast<std::size_t>(rows * (cols / block)));
    for (auto& v : q.scales) v = f32_to_bf16(std::fabs(n(gen)));
  } else {
    q.rank = lords::parity_rank(rows, cols, block);
    q.b.resize(static_cast<std::size_t>(rows * q.rank));
    q.a.resize(static_cast<std::size_t>(q.rank * cols));
    for (auto& v : q.b) v = f32_to_bf16(n(gen));
    for (auto& v : q.a) v = f32_to_bf16(n(gen));
  }
  return q;
}

// Bytes the layer stores: codes plus bf16 scales or factors.
inline std::size_t stored_bytes(const lords::QuantizedLinear& q) {
  return q.qweight.size() + 2 * (q.scales.size() + q.b.size() + q.a.size());
}

}  // namespace hilo::bench
