// y = x . W^T straight from the packed format (block-wise or LoRDS), and the dense bf16 baseline, on one tiled
// driver: each task takes 4 output rows, decodes them 256 columns at a time into an L1-resident f32 tile (codes
// -> values -> times the scale: a block scale, or LoRDS' S = B . A computed for those columns only) and
// accumulates the tile's dot products with every activation row. The whole W^ never exists.
// Each output element is owned by one task, so results do not depend on the thread count.
#include <algorithm>
#include <vector>

#include "../core/check.hpp"
#include "../core/parallel.hpp"
#include "hilo/dtype.hpp"
#include "kernels.hpp"
#include "matrix.hpp"

namespace hilo::lords {
namespace {
using namespace detail;

constexpr int kTileRows = 4;
constexpr int kTaskTiles = 8;
constexpr int64_t kChunk = kScaleChunk;  // the chunks line up with the panels of A

// Activations [batch, cols] permuted into the weights' storage order.
std::vector<float> to_storage_order(const float* x, int64_t batch, int64_t cols, int bits, bool lane) {
  std::vector<float> out(static_cast<std::size_t>(batch * cols));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < cols; ++p) out[b * cols + p] = x[b * cols + lane_column(p, bits, lane)];
  return out;
}

// Runs decode_rows(first_row, nrows, c0, n, tile) for every tile of rows and chunk of columns, and the dot
// products of each tile with the activations xs (storage order). A task owns kTaskTiles tiles and walks them chunk
// by chunk; prepare(task_first_row, task_rows, c0, n) runs before each chunk's tiles (on the task's thread), for
// work shared by the task's rows (LoRDS' scales).
struct NoPrepare {
  void operator()(int64_t, int64_t, int64_t, int64_t) const {}
};

template <typename DecodeRows, typename Prepare = NoPrepare>
void tiled_matmul(int64_t rows, int64_t cols, const float* xs, int64_t batch, float* y, int threads,
                  const DecodeRows& decode_rows, const Prepare& prepare = {}) {
  const Kernels& k = kernels();
  constexpr int64_t kTaskRows = kTileRows * kTaskTiles;
  const int64_t tasks = (rows + kTaskRows - 1) / kTaskRows;
  parallel_for(tasks, threads, [&](int64_t t) {
    const int64_t first = t * kTaskRows, task_rows = std::min(kTaskRows, rows - first);
    alignas(64) float tile[kTileRows * kChunk];
    std::vector<float> acc(static_cast<std::size_t>(batch * kTaskRows), 0.0f);  // [tile][batch][row in tile]
    for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
      const int64_t n = std::min(kChunk, cols - c0);
      prepare(first, task_rows, c0, n);
      for (int64_t r0 = 0; r0 < task_rows; r0 += kTileRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kTileRows, task_rows - r0));
        decode_rows(first + r0, nr, c0, n, tile);
        k.dot_tile(tile, nr, n, xs + c0, cols, static_cast<int>(batch), acc.data() + r0 * batch);
      }
    }
    for (int64_t r0 = 0; r0 < task_rows; r0 += kTileRows) {
      const int nr = static_cast<int>(std::min<int64_t>(kTileRows, task_rows - r0));
      for (int64_t b = 0; b < batch; ++b)
        for (int r = 0; r < nr; ++r) y[b * rows + first + r0 + r] = acc[r0 * batch + b * nr + r];
    }
  });
}

void check_matmul(const char* where, int64_t cols, const float* x, int64_t batch, const float* y) {
  HILO_CHECK(batch >= 1, "{}: batch = {} must be >= 1", where, batch);
  HILO_CHECK(x != nullptr && y != nullptr, "{}: x and y must not be null", where);
  HILO_CHECK(cols % 32 == 0, "{}: the input dimension {} must be a multiple of 32", where, cols);
}

void check_layer(const QuantizedLinear& q) {
  HILO_CHECK(q.codebook.bits >= 2 && q.codebook.bits <= 4 && q.codebook.values.size() == (1u << q.codebook.bits),
             "matmul: codebook '{}' is malformed", q.codebook.name());
  HILO_CHECK(q.rows > 0 && q.cols > 0 && q.block > 0 && q.cols % q.block == 0,
             "matmul: layer [{}, {}] with block {} is malformed", q.rows, q.cols, q.block);
  HILO_CHECK(static_cast<int64_t>(q.qweight.size()) == q.rows * q.row_bytes(),
             "matmul: qweight holds {} bytes, expected {}", q.qweight.size(), q.rows * q.row_bytes());
  if (q.method == Method::Blockwise)
    HILO_CHECK(static_cast<int64_t>(q.scales.size()) == q.rows * (q.cols / q.block),
               "matmul: scales hold {} values, expected {}", q.scales.size(), q.rows * (q.cols / q.block));
  else
    HILO_CHECK(q.rank >= 1 && static_cast<int64_t>(q.b.size()) == q.rows * q.rank &&
                   static_cast<int64_t>(q.a.size()) == q.rank * q.cols,
               "matmul: LoRDS factors hold {} and {} values, expected {} and {}", q.b.size(), q.a.size(),
               q.rows * q.rank, q.rank * q.cols);
}

}  // namespace

void matmul(const QuantizedLinear& q, const float* x, int64_t batch, float* y, int threads) {
  check_layer(q);
  check_matmul("lords::matmul", q.cols, x, batch, y);
  const int bits = q.codebook.bits;
  const bool lane = uses_lane_order(bits, q.cols, q.block);
  const std::vector<float> xs = to_storage_order(x, batch, q.cols, bits, lane);
  alignas(64) float lut[16];
  fill_lut16(q.codebook.values, lut);
  const Kernels& k = kernels();
  const int64_t row_bytes = q.row_bytes();

  const bool fused_gemv = k.gemv_blockwise && (lane || (bits == 3 && k.gemv_handles_3bit && q.block % 64 == 0));
  if (q.method == Method::Blockwise && batch == 1 && fused_gemv) {
    // Batch 1 is memory-bound: decode straight into the dot products (no tile), 16 rows per task.
    const int64_t nb = q.cols / q.block, tiles = (q.rows + 15) / 16;
    parallel_for(tiles, threads, [&](int64_t t) {
      const int64_t r0 = t * 16;
      const int nr = static_cast<int>(std::min<int64_t>(16, q.rows - r0));
      k.gemv_blockwise(q.qweight.data() + r0 * row_bytes, row_bytes, nr, q.cols, bits, q.block,
                       q.scales.data() + r0 * nb, nb, lut, xs.data(), y + r0);
    });
    return;
  }
  if (q.method == Method::Blockwise) {
    const int64_t nb = q.cols / q.block;
    tiled_matmul(q.rows, q.cols, xs.data(), batch, y, threads, [&](int64_t r0, int nr, int64_t c0, int64_t n,
                                                                   float* tile) {
      float scale16[kChunk / 16];
      for (int r = 0; r < nr; ++r) {
        const int64_t i = r0 + r;
        // One scale per 16 positions: a run of block / 16 entries per block, the first block possibly entered midway.
        const uint16_t* row_scales = q.scales.data() + i * nb;
        const int64_t per_block = q.block / 16, groups = n / 16;
        int64_t j = 0, t = (c0 % q.block) / 16;
        for (int64_t blk = c0 / q.block; j < groups; ++blk, t = 0) {
          const float sc = bf16_bits_to_f32(row_scales[blk]);
          for (; t < per_block && j < groups; ++t) scale16[j++] = sc;
        }
        k.decode(q.qweight.data() + i * row_bytes, c0, n, bits, lane, lut, scale16, tile + r * n);
      }
    });
    return;
  }
  // LoRDS: B as f32, A as f32 with its columns in storage order, in panels (r (rows + cols) conversions per call).
  const int rank = q.rank;
  std::vector<float> bf(q.b.size()), af(q.a.size()), panels(q.a.size());
  for (std::size_t i = 0; i < bf.size(); ++i) bf[i] = bf16_to_f32(q.b[i]);
  for (int kk = 0; kk < rank; ++kk)
    for (int64_t p = 0; p < q.cols; ++p)
      af[kk * q.cols + p] = bf16_to_f32(q.a[kk * q.cols + lane_column(p, bits, lane)]);
  pack_panels(af.data(), rank, q.cols, panels.data());
  // The task's scales S[rows of the task, chunk] are computed 64 columns at a time for all its rows, so each strip
  // of the A panel is loaded into L1 once per task rather than once per tile.
  static thread_local std::vector<float> task_scales;  // the task's thread computes and reads them
  const auto prepare = [&](int64_t first, int64_t task_rows, int64_t c0, int64_t n) {
    task_scales.resize(static_cast<std::size_t>(kTileRows * kTaskTiles * kChunk));
    const float* panel = panel_at(panels.data(), rank, c0);
    for (int64_t c = 0; c < n; c += 64) {
      const int64_t w = std::min<int64_t>(64, n - c);
      int64_t r = 0;
      for (; r + 4 <= task_rows; r += 4)
        k.scale_rows4(bf.data() + (first + r) * rank, rank, panel + c, rank, n, w, task_scales.data() + r * n + c, n);
      for (; r < task_rows; ++r)
        k.scale_row(bf.data() + (first + r) * rank, panel + c, rank, n, w, task_scales.data() + r * n + c);
    }
  };
  tiled_matmul(
      q.rows, q.cols, xs.data(), batch, y, threads,
      [&](int64_t r0, int nr, int64_t c0, int64_t n, float* tile) {
        for (int r = 0; r < nr; ++r) {
          float* t = tile + r * n;
          const float* s = task_scales.data() + ((r0 + r) % (kTileRows * kTaskTiles)) * n;
          k.decode(q.qweight.data() + (r0 + r) * row_bytes, c0, n, bits, lane, lut, nullptr, t);
          for (int64_t p = 0; p < n; ++p) t[p] *= s[p];
        }
      },
      prepare);
}

void matmul_bf16(const uint16_t* w, int64_t rows, int64_t cols, const float* x, int64_t batch, float* y,
                 int threads) {
  HILO_CHECK(w != nullptr && rows > 0, "matmul_bf16: w must be a non-empty [rows, cols] matrix");
  check_matmul("matmul_bf16", cols, x, batch, y);
  const Kernels& k = kernels();
  tiled_matmul(rows, cols, x, batch, y, threads, [&](int64_t r0, int nr, int64_t c0, int64_t n, float* tile) {
    for (int r = 0; r < nr; ++r) k.bf16_row(w + (r0 + r) * cols + c0, n, tile + r * n);
  });
}

void matmul_f32(const float* w, int64_t rows, int64_t cols, int64_t ldw, const float* x, int64_t batch, float* y,
                int threads) {
  HILO_CHECK(w != nullptr && rows > 0, "matmul_f32: w must be a non-empty [rows, cols] matrix");
  HILO_CHECK(ldw >= cols, "matmul_f32: ldw = {} must be >= cols = {}", ldw, cols);
  check_matmul("matmul_f32", cols, x, batch, y);
  tiled_matmul(rows, cols, x, batch, y, threads, [&](int64_t r0, int nr, int64_t c0, int64_t n, float* tile) {
    for (int r = 0; r < nr; ++r) std::copy_n(w + (r0 + r) * ldw + c0, n, tile + r * n);
  });
}

namespace reference {
void matmul(const QuantizedLinear& q, const float* x, int64_t batch, float* y) {
  check_layer(q);
  check_matmul("lords::reference::matmul", q.cols, x, batch, y);
  std::vector<float> w(static_cast<std::size_t>(q.rows * q.cols));
  dequantize(q, w.data());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < q.rows; ++i) {
      double s = 0;
      for (int64_t c = 0; c < q.cols; ++c) s += static_cast<double>(w[i * q.cols + c]) * x[b * q.cols + c];
      y[b * q.rows + i] = static_cast<float>(s);
    }
}
}  // namespace reference

}  // namespace hilo::lords
