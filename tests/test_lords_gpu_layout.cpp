// The device layout of quantized layers (src/lords/gpu_layout.hpp), checked on the CPU so CI covers it without a
// GPU: every code, scale and factor lands where the mma fragment order says, and padding is zero.
#include <gtest/gtest.h>

#include <random>

#include "hilo/dtype.hpp"
#include "hilo/lords.hpp"
#include "lords/codes.hpp"
#include "lords/gpu_layout.hpp"
#include "test_util.hpp"

namespace hilo {
namespace {
namespace gl = lords::gpu_layout;

lords::QuantizedLinear random_codes(int bits, int block, int64_t rows, int64_t cols, int rank, std::mt19937_64& gen) {
  lords::QuantizedLinear q;
  q.method = rank > 0 ? lords::Method::Lords : lords::Method::Blockwise;
  q.codebook = lords::make_codebook(lords::CodebookKind::NF, bits);
  q.block = block;
  q.rank = rank;
  q.rows = rows;
  q.cols = cols;
  q.qweight.resize(static_cast<std::size_t>(rows * q.row_bytes()));
  for (auto& v : q.qweight) v = static_cast<uint8_t>(gen());
  std::normal_distribution<float> n(0.0f, 1.0f);
  if (rank > 0) {
    q.b.resize(static_cast<std::size_t>(rows * rank));
    q.a.resize(static_cast<std::size_t>(rank * cols));
    for (auto& v : q.b) v = f32_to_bf16(n(gen));
    for (auto& v : q.a) v = f32_to_bf16(n(gen));
  } else {
    q.scales.resize(static_cast<std::size_t>(rows * (cols / block)));
    for (auto& v : q.scales) v = f32_to_bf16(n(gen));
  }
  return q;
}

TEST(LordsGpuLayout, EveryCodeLandsInItsFragmentSlot) {
  std::mt19937_64 gen(test::fresh_seed());
  for (int bits : {2, 3, 4})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{16, 128}, {37, 96}, {33, 416}}) {
      const auto q = random_codes(bits, 32, rows, cols, 0, gen);
      const auto tiled = gl::tile_codes(q);
      ASSERT_EQ(tiled, gl::tile_codes(q, 1)) << "depends on the thread count";
      ASSERT_EQ(static_cast<int64_t>(tiled.size()), gl::tiles_down(rows) * gl::tiles_across(cols) * gl::tile_bytes(bits));
      std::vector<uint8_t> row(static_cast<std::size_t>(cols));
      for (int64_t i = 0; i < gl::tiles_down(rows) * gl::kTileRows; ++i) {
        if (i < rows) lords::detail::unpack_row(q.qweight.data() + i * q.row_bytes(), cols, bits, row.data());
        for (int64_t c = 0; c < gl::tiles_across(cols) * gl::kTileCols; ++c) {
          const int want = i < rows && c < cols ? row[static_cast<std::size_t>(c)] : 0;
          ASSERT_EQ(gl::tiled_code(tiled.data(), bits, cols, i, c), want) << bits << " bits, (" << i << ", " << c << ")";
        }
      }
    }
}

// Spot checks of the fragment order itself: lane 4 g + t of step s holds (row g, col 16 s + 2t) as the first code of
// its pair 4 s, and (row g + 8, col 16 s + 2t + 9) as the second code of pair 4 s + 3.
TEST(LordsGpuLayout, FragmentOrderMatchesTheMmaOperand) {
  std::mt19937_64 gen(test::fresh_seed());
  const auto q = random_codes(4, 64, 16, 128, 0, gen);
  const auto tiled = gl::tile_codes(q);
  std::vector<uint8_t> codes(16 * 128);
  for (int i = 0; i < 16; ++i) lords::detail::unpack_row(q.qweight.data() + i * 64, 128, 4, codes.data() + i * 128);
  for (int lane = 0; lane < 32; ++lane)
    for (int s = 0; s < 8; ++s) {
      const int g = lane / 4, t = lane % 4;
      // 4-bit: a lane's 8 words are two 16-byte units, interleaved across lanes.
      auto word = [&](int w) {
        uint32_t v;
        std::memcpy(&v, tiled.data() + (w / 4 * 32 + lane) * 16 + w % 4 * 4, 4);
        return v;
      };
      const uint32_t first = word(s) & 0xFF, last = word(s) >> 24;  // pairs 4 s and 4 s + 3 (8 bits each)
      EXPECT_EQ(first & 0xF, codes[g * 128 + 16 * s + 2 * t]);
      EXPECT_EQ(last >> 4, codes[(g + 8) * 128 + 16 * s + 2 * t + 9]);
    }
}

TEST(LordsGpuLayout, ScalesAndFactorsArePaddedWithZeros) {
  std::mt19937_64 gen(test::fresh_seed());
  const auto bw = random_codes(4, 96, 21, 288, 0, gen);
  const auto scales = gl::tile_scales(bw);
  const int64_t blocks = gl::tiled_scale_blocks(288, 96);  // 384 padded columns -> 4 blocks
  ASSERT_EQ(blocks, 4);
  ASSERT_EQ(static_cast<int64_t>(scales.size()), 2 * blocks * 16);
  for (int64_t i = 0; i < 32; ++i)
    for (int64_t j = 0; j < blocks; ++j)
      EXPECT_EQ(scales[static_cast<std::size_t>((i / 16 * blocks + j) * 16 + i % 16)],
                i < 21 && j < 3 ? bw.scales[static_cast<std::size_t>(i * 3 + j)] : 0);

  const auto lr = random_codes(3, 32, 21, 160, 20, gen);
  ASSERT_EQ(gl::padded_rank(20), 32);
  const auto b = gl::pad_factor_b(lr);
  for (int64_t i = 0; i < 32; ++i)
    for (int k = 0; k < 32; ++k)
      EXPECT_EQ(b[static_cast<std::size_t>(i * 32 + k)], i < 21 && k < 20 ? lr.b[static_cast<std::size_t>(i * 20 + k)] : 0);
  const auto a = gl::tile_factor_a(lr);
  ASSERT_EQ(a.size(), std::size_t{2 * 8 * 4 * 32 * 2});
  for (int64_t c = 0; c < 2; ++c)
    for (int s = 0; s < 8; ++s)
      for (int j = 0; j < 4; ++j)
        for (int lane = 0; lane < 32; ++lane)
          for (int w = 0; w < 2; ++w)
            for (int h = 0; h < 2; ++h) {
              const int k = 8 * j + lane / 4;
              const int64_t col = c * 128 + 16 * s + 2 * (lane % 4) + 8 * w + h;
              const uint32_t got = a[static_cast<std::size_t>((((c * 8 + s) * 4 + j) * 32 + lane) * 2 + w)] >> (16 * h) & 0xFFFF;
              EXPECT_EQ(got, k < 20 && col < 160 ? lr.a[static_cast<std::size_t>(k * 160 + col)] : 0u);
            }
}

TEST(LordsGpuLayout, PairTableHoldsBothCodesInFp16) {
  for (int bits : {2, 3, 4}) {
    const auto cb = lords::make_codebook(lords::CodebookKind::NF, bits);
    const auto table = gl::pair_table(cb);
    const int n = 1 << bits;
    ASSERT_EQ(static_cast<int>(table.size()), n * n);
    for (int lo = 0; lo < n; ++lo)
      for (int hi = 0; hi < n; ++hi) {
        const uint32_t v = table[static_cast<std::size_t>(lo | hi << bits)];
        EXPECT_EQ(f16_to_f32(v & 0xFFFF), f16_to_f32(f32_to_f16(cb.values[static_cast<std::size_t>(lo)])));
        EXPECT_EQ(f16_to_f32(v >> 16), f16_to_f32(f32_to_f16(cb.values[static_cast<std::size_t>(hi)])));
        EXPECT_NEAR(f16_to_f32(v & 0xFFFF), cb.values[static_cast<std::size_t>(lo)], std::ldexp(1.0, -12));
      }
  }
}

}  // namespace
}  // namespace hilo
