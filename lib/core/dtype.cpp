#include "core/dtype.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace muspec {

namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  int bits;
  bool decodable;
};

constexpr std::array<DTypeInfo, 22> kTypes = {{
    {DType::BOOL, "BOOL", 8, false},        {DType::U8, "U8", 8, false},
    {DType::I8, "I8", 8, false},            {DType::I16, "I16", 16, false},
    {DType::U16, "U16", 16, false},         {DType::I32, "I32", 32, false},
    {DType::U32, "U32", 32, false},         {DType::I64, "I64", 64, false},
    {DType::U64, "U64", 64, false},         {DType::F16, "F16", 16, true},
    {DType::BF16, "BF16", 16, true},        {DType::F32, "F32", 32, true},
    {DType::F64, "F64", 64, true},          {DType::C64, "C64", 64, false},
    {DType::C128, "C128", 128, false},      {DType::F8_E4M3, "F8_E4M3", 8, true},
    {DType::F8_E5M2, "F8_E5M2", 8, true},   {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8, true},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8, true}, {DType::F8_E8M0, "F8_E8M0", 8, true},
    {DType::F4, "F4", 4, false},            {DType::F6_E2M3, "F6_E2M3", 6, false},
}};
// F6_E3M2 is handled separately to keep the table a round size for readability.
constexpr DTypeInfo kF6E3M2{DType::F6_E3M2, "F6_E3M2", 6, false};

const DTypeInfo& info(DType t) {
  if (t == DType::F6_E3M2) return kF6E3M2;
  for (const auto& i : kTypes)
    if (i.type == t) return i;
  MUSPEC_ASSERT(false && "unknown dtype");
  return kTypes[0];
}

/// Generic decoder for small IEEE-like formats: sign, `e` exponent bits, `m` mantissa bits.
double decode_minifloat(uint32_t bits, int e, int m, int bias) {
  const uint32_t sign = (bits >> (e + m)) & 1u;
  const uint32_t exp = (bits >> m) & ((1u << e) - 1u);
  const uint32_t man = bits & ((1u << m) - 1u);
  double v = exp == 0 ? std::ldexp(static_cast<double>(man), 1 - bias - m)
                      : std::ldexp(static_cast<double>(man | (1u << m)), static_cast<int>(exp) - bias - m);
  return sign ? -v : v;
}

std::array<double, 256> make_f8_table(DType t) {
  std::array<double, 256> table{};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (uint32_t b = 0; b < 256; ++b) {
    switch (t) {
      case DType::F8_E4M3:  // fn: only S.1111.111 is NaN, no infinities
        table[b] = (b & 0x7f) == 0x7f ? nan : decode_minifloat(b, 4, 3, 7);
        break;
      case DType::F8_E5M2:
        if (((b >> 2) & 0x1f) == 0x1f)
          table[b] = (b & 3) ? nan : ((b & 0x80) ? -inf : inf);
        else
          table[b] = decode_minifloat(b, 5, 2, 15);
        break;
      case DType::F8_E4M3FNUZ:
        table[b] = b == 0x80 ? nan : decode_minifloat(b, 4, 3, 8);
        break;
      case DType::F8_E5M2FNUZ:
        table[b] = b == 0x80 ? nan : decode_minifloat(b, 5, 2, 16);
        break;
      case DType::F8_E8M0:
        table[b] = b == 0xff ? nan : std::ldexp(1.0, static_cast<int>(b) - 127);
        break;
      default:
        MUSPEC_ASSERT(false && "not an fp8 type");
    }
  }
  return table;
}

}  // namespace

int dtype_bits(DType t) { return info(t).bits; }
bool dtype_is_decodable_float(DType t) { return info(t).decodable; }
std::string_view dtype_name(DType t) { return info(t).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  if (name == kF6E3M2.name) return DType::F6_E3M2;
  for (const auto& i : kTypes)
    if (i.name == name) return i.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_user_name(std::string_view name) {
  struct Alias { std::string_view alias; DType type; };
  static constexpr Alias kAliases[] = {
      {"f64", DType::F64}, {"float64", DType::F64}, {"double", DType::F64},
      {"f32", DType::F32}, {"float32", DType::F32}, {"float", DType::F32},
      {"f16", DType::F16}, {"float16", DType::F16}, {"half", DType::F16},
      {"bf16", DType::BF16}, {"bfloat16", DType::BF16},
      {"f8_e4m3", DType::F8_E4M3}, {"float8_e4m3fn", DType::F8_E4M3},
      {"f8_e5m2", DType::F8_E5M2}, {"float8_e5m2", DType::F8_E5M2},
  };
  for (const auto& a : kAliases)
    if (a.alias == name) return a.type;
  return dtype_from_name(name);
}

double f16_to_double(uint16_t bits) {
  const uint32_t exp = (bits >> 10) & 0x1f;
  if (exp == 0x1f) {
    if (bits & 0x3ff) return std::numeric_limits<double>::quiet_NaN();
    return (bits & 0x8000) ? -std::numeric_limits<double>::infinity()
                           : std::numeric_limits<double>::infinity();
  }
  return decode_minifloat(bits, 5, 10, 15);
}

double bf16_to_double(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

double f8_to_double(DType t, uint8_t bits) {
  static const auto e4m3 = make_f8_table(DType::F8_E4M3);
  static const auto e5m2 = make_f8_table(DType::F8_E5M2);
  static const auto e4m3fnuz = make_f8_table(DType::F8_E4M3FNUZ);
  static const auto e5m2fnuz = make_f8_table(DType::F8_E5M2FNUZ);
  static const auto e8m0 = make_f8_table(DType::F8_E8M0);
  switch (t) {
    case DType::F8_E4M3: return e4m3[bits];
    case DType::F8_E5M2: return e5m2[bits];
    case DType::F8_E4M3FNUZ: return e4m3fnuz[bits];
    case DType::F8_E5M2FNUZ: return e5m2fnuz[bits];
    case DType::F8_E8M0: return e8m0[bits];
    default: MUSPEC_ASSERT(false && "not an fp8 type");
  }
  return 0.0;
}

uint16_t float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

uint16_t float_to_f16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00;                  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00;                 // overflow (>= 65520) -> inf
  if (abs < 0x38800000u) {                                      // subnormal or zero in f16
    if (abs < 0x33000000u) return sign;                         // rounds to zero
    const int shift = 126 - static_cast<int>(abs >> 23);        // 14..24
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t half_ulp = 1u << (shift - 1 + 0);
    uint32_t v = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    if (rem > half_ulp || (rem == half_ulp && (v & 1u))) ++v;
    return sign | static_cast<uint16_t>(v);
  }
  uint32_t v = abs - 0x38000000u;                               // rebias 127 -> 15
  const uint32_t rem = v & 0x1fffu;
  v >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) ++v;
  return sign | static_cast<uint16_t>(v);
}

}  // namespace muspec
