// Element types of checkpoint tensors and their conversion to float64.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace muspec {

/// Every dtype muspec can name. The floating types convertible to float64 are F64, F32, F16,
/// BF16 and the fp8 family; the rest are recognised (so files parse and sizes validate) but
/// are never analysed as matrices.
enum class DType : uint8_t {
  BOOL, U8, I8, I16, U16, I32, U32, I64, U64,
  F16, BF16, F32, F64, C64, C128,
  F8_E4M3,      ///< float8_e4m3fn: no infinities, NaN = S.1111.111, max 448
  F8_E5M2,      ///< float8_e5m2: IEEE-like, has infinities
  F8_E4M3FNUZ,  ///< AMD: bias 8, 0x80 is NaN, no negative zero
  F8_E5M2FNUZ,  ///< AMD: bias 16, 0x80 is NaN, no negative zero
  F8_E8M0,      ///< OCP MX scale: 2^(e-127), 0xFF is NaN
  F4,           ///< float4_e2m1fn_x2 (two values per byte); recognised, not decoded
  F6_E2M3, F6_E3M2,  ///< MXFP6; recognised, not decoded
};

/// Size of one element in bits (4 and 6 for the packed micro-float types).
int dtype_bits(DType t);

/// True for the real floating types muspec can decode to float64.
bool dtype_is_decodable_float(DType t);

/// The safetensors spelling ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType t);

/// Parses the safetensors spelling; std::nullopt for an unknown string.
std::optional<DType> dtype_from_name(std::string_view name);

/// Parses a user-facing spelling: "f32", "float32", "bf16", "bfloat16", "f16", "half", ...
std::optional<DType> dtype_from_user_name(std::string_view name);

// ---- scalar conversions (bit patterns in native order) ----
double f16_to_double(uint16_t bits);
double bf16_to_double(uint16_t bits);
/// Decodes one byte of an 8-bit float type (F8_*); MUSPEC_ASSERTs on other types.
double f8_to_double(DType t, uint8_t bits);

/// Round-to-nearest-even encoders, used by the synthetic-data writer and tests.
uint16_t float_to_bf16(float x);
uint16_t float_to_f16(float x);

}  // namespace muspec
