// Element types and exact conversions between f32, bf16, fp16 and fp8 e4m3.
//
// Rounding is round-to-nearest-even everywhere. bf16 and fp16 follow IEEE 754 (overflow -> Inf, NaN stays NaN),
// bit-exact with ml_dtypes / numpy. fp8 e4m3 ("e4m3fn": no Inf, max 448, NaN = 0x7F/0xFF) saturates: finite values
// and +-Inf beyond +-448 become +-448; NaN becomes 0x7F (sign kept). That equals ml_dtypes on clip(x, -448, 448).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hilo {

enum class DType : uint8_t {
  BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2,
};

// Bytes per element.
std::size_t dtype_size(DType t);
// The safetensors name ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType t);
// Parses a safetensors dtype name; throws hilo::Error naming `argument` if unknown.
DType parse_dtype(std::string_view name, std::string_view argument = "dtype");
bool is_floating(DType t);

// Scalar conversions (exact semantics in the header comment).
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float x);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float x);
float e4m3_to_f32(uint8_t bits);
uint8_t f32_to_e4m3(float x);
// Exact fp8 e4m3 -> f32 table, one entry per code (NaN codes hold NaN).
const float* e4m3_table();
constexpr float kE4M3Max = 448.0f;

// Element-wise conversion of `count` values between floating dtypes (F32, F16, BF16, F8_E4M3), via f32.
void convert(const void* src, DType src_type, void* dst, DType dst_type, std::size_t count);
// Reads element i of a floating-point buffer as f32.
float load_as_f32(const void* data, DType type, std::size_t i);

}  // namespace hilo
