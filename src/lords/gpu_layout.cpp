#include "lords/gpu_layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/parallel.hpp"
#include "hilo/dtype.hpp"
#include "lords/codes.hpp"

namespace hilo::lords::gpu_layout {
namespace {

// Where a lane's fragment pair lives: its lane and the bit offset of the code in the lane's bit string.
struct CodeSlot {
  int lane;
  int bit;
};

CodeSlot code_slot(int bits, int64_t row, int64_t col) {
  const int r = static_cast<int>(row % kTileRows), k = static_cast<int>(col % 16);
  const int s = static_cast<int>(col % kTileCols) / 16;
  const int g = r % 8, t = (k % 8) / 2, e = k % 2;
  const int slot = r / 8 + 2 * (k / 8);
  return {4 * g + t, (4 * s + slot) * 2 * bits + e * bits};
}

// Byte offset of bit `bit` of `lane`'s string within a tile (units of U bytes interleaved across lanes).
int64_t lane_byte(int bits, int lane, int bit) {
  const int ub = unit_bytes(bits), byte = bit / 8;
  return static_cast<int64_t>(byte / ub * 32 + lane) * ub + byte % ub;
}

int64_t tile_offset(int bits, int64_t cols, int64_t row, int64_t col) {
  return (row / kTileRows * tiles_across(cols) + col / kTileCols) * tile_bytes(bits);
}

}  // namespace

std::vector<uint8_t> tile_codes(const QuantizedLinear& q, int threads) {
  const int bits = q.codebook.bits, words = 2 * bits, ub = unit_bytes(bits);
  const int64_t across = tiles_across(q.cols), padded_cols = across * kTileCols;
  std::vector<uint8_t> out(static_cast<std::size_t>(tiles_down(q.rows) * across * tile_bytes(bits)), 0);
  // Row tiles are independent (one thread each; the output does not depend on the thread count).
  parallel_for(tiles_down(q.rows), threads, [&](int64_t rt) {
    std::vector<uint8_t> codes(static_cast<std::size_t>(kTileRows * padded_cols), 0);  // code 0 past the end
    for (int r = 0; r < kTileRows && rt * kTileRows + r < q.rows; ++r)
      detail::unpack_row(q.qweight.data() + (rt * kTileRows + r) * q.row_bytes(), q.cols, bits,
                         codes.data() + r * padded_cols);
    for (int64_t ct = 0; ct < across; ++ct) {
      uint8_t* tile = out.data() + (rt * across + ct) * tile_bytes(bits);
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        uint32_t w[8] = {};
        for (int p = 0; p < 32; ++p) {  // p = 4 s + slot
          const int s = p / 4, slot = p % 4;
          const uint8_t* c = codes.data() + (g + 8 * (slot % 2)) * padded_cols + ct * kTileCols + 16 * s + 2 * t +
                             8 * (slot / 2);
          const uint64_t pair = static_cast<uint64_t>(c[0] | c[1] << bits) << ((p * words) % 32);
          w[p * words / 32] |= static_cast<uint32_t>(pair);
          if (pair >> 32) w[p * words / 32 + 1] |= static_cast<uint32_t>(pair >> 32);
        }
        for (int i = 0; i < words; ++i)  // word i of the lane's string: unit (4 i) / ub, offset (4 i) % ub
          std::memcpy(tile + ((4 * i) / ub * 32 + lane) * ub + (4 * i) % ub, &w[i], 4);
      }
    }
  });
  return out;
}

uint8_t tiled_code(const uint8_t* tiled, int bits, int64_t cols, int64_t row, int64_t col) {
  const CodeSlot cs = code_slot(bits, row, col);
  const uint8_t* tile = tiled + tile_offset(bits, cols, row, col);
  int code = 0;
  for (int b = 0; b < bits; ++b) code |= (tile[lane_byte(bits, cs.lane, cs.bit + b)] >> ((cs.bit + b) % 8) & 1) << b;
  return static_cast<uint8_t>(code);
}

int64_t tiled_scale_blocks(int64_t cols, int block) { return (tiles_across(cols) * kTileCols + block - 1) / block; }

std::vector<uint16_t> tile_scales(const QuantizedLinear& q) {
  const int64_t blocks = q.cols / q.block, padded = tiled_scale_blocks(q.cols, q.block);
  std::vector<uint16_t> out(static_cast<std::size_t>(tiles_down(q.rows) * padded * kTileRows), 0);
  for (int64_t i = 0; i < q.rows; ++i)
    for (int64_t j = 0; j < blocks; ++j)
      out[static_cast<std::size_t>((i / kTileRows * padded + j) * kTileRows + i % kTileRows)] = q.scales[i * blocks + j];
  return out;
}

std::vector<uint16_t> pad_factor_b(const QuantizedLinear& q) {
  const int rp = padded_rank(q.rank);
  std::vector<uint16_t> out(static_cast<std::size_t>(tiles_down(q.rows) * kTileRows * rp), 0);
  for (int64_t i = 0; i < q.rows; ++i) std::copy_n(q.b.data() + i * q.rank, q.rank, out.data() + i * rp);
  return out;
}

std::vector<uint32_t> tile_factor_a(const QuantizedLinear& q) {
  const int groups = padded_rank(q.rank) / 8;
  const int64_t tiles = tiles_across(q.cols);
  std::vector<uint32_t> out(static_cast<std::size_t>(tiles * kStepsPerTile * groups * 32 * 2), 0);
  auto at = [&](int k, int64_t c) -> uint32_t { return k < q.rank && c < q.cols ? q.a[k * q.cols + c] : 0; };
  for (int64_t c = 0; c < tiles; ++c)
    for (int s = 0; s < kStepsPerTile; ++s)
      for (int j = 0; j < groups; ++j)
        for (int lane = 0; lane < 32; ++lane) {
          const int k = 8 * j + lane / 4;
          const int64_t col = c * kTileCols + 16 * s + 2 * (lane % 4);
          uint32_t* w = out.data() + (((c * kStepsPerTile + s) * groups + j) * 32 + lane) * 2;
          w[0] = at(k, col) | at(k, col + 1) << 16;
          w[1] = at(k, col + 8) | at(k, col + 9) << 16;
        }
  return out;
}

std::vector<uint16_t> transpose_factor_a(const QuantizedLinear& q) {
  const int rp = padded_rank(q.rank);
  std::vector<uint16_t> out(static_cast<std::size_t>(tiles_across(q.cols) * kTileCols * rp), 0);
  for (int k = 0; k < q.rank; ++k)
    for (int64_t c = 0; c < q.cols; ++c) out[c * rp + k] = q.a[k * q.cols + c];
  return out;
}

float factor_a_absmax(const QuantizedLinear& q) {
  float m = 0;
  for (uint16_t v : q.a) m = std::max(m, std::abs(bf16_to_f32(v)));
  return m;
}

std::vector<uint32_t> pair_table(const Codebook& cb) {
  const int n = 1 << cb.bits;
  std::vector<uint32_t> out(static_cast<std::size_t>(n * n));
  for (int hi = 0; hi < n; ++hi)
    for (int lo = 0; lo < n; ++lo)
      out[static_cast<std::size_t>(lo | hi << cb.bits)] =
          f32_to_f16(cb.values[static_cast<std::size_t>(lo)]) |
          static_cast<uint32_t>(f32_to_f16(cb.values[static_cast<std::size_t>(hi)])) << 16;
  return out;
}

}  // namespace hilo::lords::gpu_layout
