#include "hilo/dtype.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "check.hpp"
#include "float8.hpp"

namespace hilo {
namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  std::size_t size;
  bool floating;
};

constexpr std::array<DTypeInfo, 15> kTypes{{
    {DType::BOOL, "BOOL", 1, false},     {DType::U8, "U8", 1, false},
    {DType::I8, "I8", 1, false},         {DType::U16, "U16", 2, false},
    {DType::I16, "I16", 2, false},       {DType::U32, "U32", 4, false},
    {DType::I32, "I32", 4, false},       {DType::U64, "U64", 8, false},
    {DType::I64, "I64", 8, false},       {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true},      {DType::F32, "F32", 4, true},
    {DType::F64, "F64", 8, true},        {DType::F8_E4M3, "F8_E4M3", 1, true},
    {DType::F8_E5M2, "F8_E5M2", 1, true},
}};

const DTypeInfo& info(DType t) {
  for (const auto& i : kTypes)
    if (i.type == t) return i;
  fail("dtype: unknown enum value {}", static_cast<int>(t));
}

uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Significand (with the implicit bit) and biased exponent of a finite, non-negative f32 given as bits;
// f32 subnormals get exponent 1 so that value = m * 2^(e - 150) holds for all.
void split(uint32_t a, uint32_t& m, int& e) {
  e = static_cast<int>(a >> 23);
  m = a & 0x7FFFFFu;
  if (e == 0)
    e = 1;
  else
    m |= 0x800000u;
}

std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int code = 0; code < 256; ++code) {
    const int sign = code >> 7, exp = (code >> 3) & 0xF, man = code & 7;
    float v;
    if (exp == 0xF && man == 7)
      v = std::numeric_limits<float>::quiet_NaN();
    else if (exp == 0)
      v = std::ldexp(static_cast<float>(man), -9);
    else
      v = std::ldexp(static_cast<float>(8 + man), exp - 10);
    t[code] = sign ? -v : v;
  }
  return t;
}

const std::array<float, 256> kE4M3Table = make_e4m3_table();

}  // namespace

std::size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
bool is_floating(DType t) { return info(t).floating; }

DType parse_dtype(std::string_view name, std::string_view argument) {
  for (const auto& i : kTypes)
    if (i.name == name) return i.type;
  fail("{}: unknown dtype '{}' (known: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64, F8_E4M3, "
       "F8_E5M2)",
       argument, name);
}

float bf16_to_f32(uint16_t bits) { return bits_float(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float x) {
  const uint32_t b = float_bits(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((b >> 16) | 0x0040u);  // quiet NaN
  const uint32_t rounded = b + 0x7FFFu + ((b >> 16) & 1u);  // carries into the exponent, Inf on overflow
  return static_cast<uint16_t>(rounded >> 16);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0x1F) return bits_float(sign | 0x7F800000u | (man << 13));
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t f32_to_f16(float x) {
  const uint32_t b = float_bits(x);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  const uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds past 65504
  if (a < 0x38800000u) {                                              // below 2^-14: fp16 subnormal
    uint32_t m;
    int e;
    split(a, m, e);
    return static_cast<uint16_t>(sign | fp8::shift_round_even(m, 126 - e));  // value * 2^24, rounded
  }
  uint32_t r = a - (112u << 23);
  r += 0xFFFu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

float e4m3_to_f32(uint8_t bits) { return kE4M3Table[bits]; }
const float* e4m3_table() { return kE4M3Table.data(); }

uint8_t f32_to_e4m3(float x) { return fp8::encode_e4m3(x); }

namespace {

// Element access through memcpy: buffers may be unaligned (a safetensors data section, a paged cache).
template <typename T>
T load_unaligned(const void* data, std::size_t i) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(data) + i * sizeof(T), sizeof(T));
  return v;
}

template <typename T>
void store_unaligned(void* data, std::size_t i, T v) {
  std::memcpy(static_cast<unsigned char*>(data) + i * sizeof(T), &v, sizeof(T));
}

}  // namespace

float load_as_f32(const void* data, DType type, std::size_t i) {
  switch (type) {
    case DType::F32: return load_unaligned<float>(data, i);
    case DType::BF16: return bf16_to_f32(load_unaligned<uint16_t>(data, i));
    case DType::F16: return f16_to_f32(load_unaligned<uint16_t>(data, i));
    case DType::F8_E4M3: return kE4M3Table[static_cast<const uint8_t*>(data)[i]];
    default: fail("load_as_f32: dtype {} is not a supported floating type", dtype_name(type));
  }
}

void convert(const void* src, DType src_type, void* dst, DType dst_type, std::size_t count) {
  auto supported = [](DType t) {
    return t == DType::F32 || t == DType::BF16 || t == DType::F16 || t == DType::F8_E4M3;
  };
  HILO_CHECK(supported(src_type), "convert: source dtype {} is not one of F32, BF16, F16, F8_E4M3",
             dtype_name(src_type));
  HILO_CHECK(supported(dst_type), "convert: destination dtype {} is not one of F32, BF16, F16, F8_E4M3",
             dtype_name(dst_type));
  if (src_type == dst_type) {
    std::memcpy(dst, src, count * dtype_size(src_type));
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const float v = load_as_f32(src, src_type, i);
    switch (dst_type) {
      case DType::F32: store_unaligned<float>(dst, i, v); break;
      case DType::BF16: store_unaligned<uint16_t>(dst, i, f32_to_bf16(v)); break;
      case DType::F16: store_unaligned<uint16_t>(dst, i, f32_to_f16(v)); break;
      default: static_cast<uint8_t*>(dst)[i] = f32_to_e4m3(v); break;
    }
  }
}

}  // namespace hilo
