// Conversions: special values, rounding boundaries and round trips here; bit-exactness against ml_dtypes over all
// fp8 codes and millions of random inputs is in python/test_dtypes.py.
#include <bit>
#include <cmath>
#include <limits>

#include "test_util.hpp"

namespace hilo {
namespace {

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

TEST(DType, NamesRoundTrip) {
  for (DType t : {DType::BOOL, DType::U8, DType::I8, DType::U16, DType::I16, DType::U32, DType::I32, DType::U64,
                  DType::I64, DType::F16, DType::BF16, DType::F32, DType::F64, DType::F8_E4M3, DType::F8_E5M2})
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  EXPECT_HILO_ERROR(parse_dtype("F128", "tensor 'x'"), "tensor 'x': unknown dtype 'F128'");
}

TEST(DType, E4M3TableMatchesDefinition) {
  EXPECT_EQ(e4m3_to_f32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0x80)));
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_f32(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xFF)));
}

TEST(DType, E4M3RoundTripsEveryCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(c))), c) << c;
  }
}

TEST(DType, E4M3SaturatesAndRoundsToEven) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_e4m3(1e6f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-1e6f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(inf), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-inf), 0xFE);
  EXPECT_EQ(f32_to_e4m3(std::nanf("")) & 0x7F, 0x7F);
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);           // would round up past 448: saturates
  EXPECT_EQ(f32_to_e4m3(1.0625f), 0x38);          // halfway between 1 and 1.125: to even (1)
  EXPECT_EQ(f32_to_e4m3(1.1875f), 0x3A);          // halfway between 1.125 and 1.25: to even (1.25)
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: to even (0)
  EXPECT_EQ(f32_to_e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 subnormal steps: to even (2)
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -7) * 1.9375f), 0x08);  // rounds up into the normal range
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // overflow to Inf
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float v = bf16_to_f32(static_cast<uint16_t>(h));
    if (!std::isnan(v)) {
      EXPECT_EQ(f32_to_bf16(v), h);
    }
  }
}

TEST(DType, F16RoundTripsEveryCodeAndOverflows) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float v = f16_to_f32(static_cast<uint16_t>(h));
    if (!std::isnan(v)) {
      EXPECT_EQ(f32_to_f16(v), h) << h;
    }
  }
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie with zero: to even
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);
}

TEST(DType, ConvertMatchesScalarFunctions) {
  std::mt19937_64 gen(test::fresh_seed());
  std::normal_distribution<float> dist(0.0f, 100.0f);
  std::vector<float> x(4096);
  for (auto& v : x) v = dist(gen);
  std::vector<uint16_t> b(x.size()), h(x.size());
  std::vector<uint8_t> e(x.size());
  convert(x.data(), DType::F32, b.data(), DType::BF16, x.size());
  convert(x.data(), DType::F32, h.data(), DType::F16, x.size());
  convert(x.data(), DType::F32, e.data(), DType::F8_E4M3, x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(b[i], f32_to_bf16(x[i]));
    EXPECT_EQ(h[i], f32_to_f16(x[i]));
    EXPECT_EQ(e[i], f32_to_e4m3(x[i]));
  }
  EXPECT_HILO_ERROR(convert(x.data(), DType::I32, b.data(), DType::BF16, 1), "source dtype I32");
}

TEST(DType, Bits) { EXPECT_EQ(bits(bf16_to_f32(0x3F80)), 0x3F800000u); }

}  // namespace
}  // namespace hilo
