// The LoRDS CUDA path's internal interface: device pointers in a plain struct and the launcher (no CUDA headers).
#pragma once

#include <cstdint>

namespace hilo::lords::cuda_detail {

constexpr int kMaxRank = 1024;  // B rows staged in shared memory: 8 warps x rank floats

struct GemvArgs {
  const uint8_t* qweight = nullptr;  // [rows, cols * bits / 8], packed little-endian per row
  const uint16_t* scales = nullptr;  // block-wise: bf16 [rows, cols / block]
  const uint16_t* b = nullptr;       // LoRDS: bf16 [rows, rank]
  const uint16_t* a = nullptr;       // LoRDS: bf16 [rank, cols]
  float lut[16] = {};                // codebook values, repeated to 16 entries
  int64_t rows = 0, cols = 0, row_bytes = 0;
  int bits = 4, block = 64, rank = 0;
  bool lords = false;
  const uint16_t* x = nullptr;  // bf16 [batch, cols]
  uint16_t* y = nullptr;        // bf16 [batch, rows]
  int64_t batch = 0;
};

// Returns a CUDA error code (0 = success) so the host side can report it.
int launch_gemv(const GemvArgs& args, void* stream);

}  // namespace hilo::lords::cuda_detail
