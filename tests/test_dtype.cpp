// Decoders and encoders of storage dtypes, against independent oracles: the compiler's own
// _Float16 conversions, a bf16 rounding written from its definition, and published fp8 values.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"

using namespace muspec;

TEST_CASE("every float16 bit pattern decodes like the compiler's _Float16", "[dtype]") {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    const double want = static_cast<double>(h);
    const double got = f16_to_double(bits);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
    } else {
      INFO("bits 0x" << std::hex << b);
      REQUIRE(got == want);
    }
  }
}

TEST_CASE("float -> float16 rounds like the compiler (round to nearest even)", "[dtype]") {
  // Sweep float bit patterns with a stride that visits every exponent and many mantissas,
  // including subnormal halves, overflow and ties.
  for (uint64_t u = 0; u < 0x100000000ULL; u += 0x1003) {
    const uint32_t bits = static_cast<uint32_t>(u);
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    INFO("float bits 0x" << std::hex << bits);
    REQUIRE(float_to_f16(f) == want);
  }
}

namespace {
/// bf16 rounding from its definition: the two neighbouring bf16 values, nearest wins, ties to
/// the one with an even last mantissa bit.
uint16_t bf16_by_definition(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double dlo = bf16_to_double(lo), dhi = bf16_to_double(hi);
  const double x = f;
  const double elo = std::fabs(x - dlo), ehi = std::fabs(x - dhi);  // finite: inputs stay below 0x7f7f0000
  if (elo < ehi) return lo;
  if (ehi < elo) return hi;
  return (lo & 1) ? hi : lo;
}
}  // namespace

TEST_CASE("float -> bfloat16 rounds to nearest even", "[dtype]") {
  for (uint64_t u = 0; u < 0x7f7f0000ULL; u += 0x3001) {
    const uint32_t bits = static_cast<uint32_t>(u);
    float f;
    std::memcpy(&f, &bits, 4);
    INFO("float bits 0x" << std::hex << bits);
    REQUIRE(float_to_bf16(f) == bf16_by_definition(f));
    REQUIRE(float_to_bf16(-f) == (bf16_by_definition(f) | 0x8000));
  }
  REQUIRE(std::isnan(bf16_to_double(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("fp8 decoders match the OCP FP8 specification's landmark values", "[dtype]") {
  // OCP 8-bit Floating Point Specification (OFP8) rev. 1.0, table of special values.
  CHECK(f8_to_double(DType::F8_E4M3, 0x38) == 1.0);
  CHECK(f8_to_double(DType::F8_E4M3, 0x7E) == 448.0);          // max normal
  CHECK(f8_to_double(DType::F8_E4M3, 0x08) == std::ldexp(1.0, -6));   // min normal
  CHECK(f8_to_double(DType::F8_E4M3, 0x01) == std::ldexp(1.0, -9));   // min subnormal
  CHECK(f8_to_double(DType::F8_E4M3, 0xB8) == -1.0);
  CHECK(std::isnan(f8_to_double(DType::F8_E4M3, 0x7F)));
  CHECK(std::isnan(f8_to_double(DType::F8_E4M3, 0xFF)));
  CHECK(f8_to_double(DType::F8_E4M3, 0x78) == 256.0);          // 0.1111.000: no infinity in fn
  CHECK(f8_to_double(DType::F8_E5M2, 0x3C) == 1.0);
  CHECK(f8_to_double(DType::F8_E5M2, 0x7B) == 57344.0);        // max normal
  CHECK(f8_to_double(DType::F8_E5M2, 0x04) == std::ldexp(1.0, -14));
  CHECK(f8_to_double(DType::F8_E5M2, 0x01) == std::ldexp(1.0, -16));
  CHECK(std::isinf(f8_to_double(DType::F8_E5M2, 0x7C)));
  CHECK(f8_to_double(DType::F8_E5M2, 0xFC) == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(f8_to_double(DType::F8_E5M2, 0x7D)));
  // e5m2 is the top byte of an IEEE half: every pattern must agree with the f16 decoder.
  for (int b = 0; b < 256; ++b) {
    const double h = f16_to_double(static_cast<uint16_t>(b << 8)), e = f8_to_double(DType::F8_E5M2, static_cast<uint8_t>(b));
    CHECK((std::isnan(h) ? std::isnan(e) : h == e));
  }
  // FNUZ variants (AMD): 0x80 is the only NaN, bias one larger than the OCP types.
  CHECK(std::isnan(f8_to_double(DType::F8_E4M3FNUZ, 0x80)));
  CHECK(f8_to_double(DType::F8_E4M3FNUZ, 0x7F) == 240.0);
  CHECK(f8_to_double(DType::F8_E5M2FNUZ, 0x7F) == 57344.0);
  CHECK(f8_to_double(DType::F8_E8M0, 127) == 1.0);
  CHECK(std::isnan(f8_to_double(DType::F8_E8M0, 0xFF)));
}

TEST_CASE("dtype names round-trip and sizes match the safetensors table", "[dtype]") {
  struct Row { const char* name; int bits; };
  const Row table[] = {{"BOOL", 8}, {"U8", 8}, {"I8", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16}, {"BF16", 16},
                       {"I32", 32}, {"U32", 32}, {"F32", 32}, {"F64", 64}, {"I64", 64}, {"U64", 64}, {"C64", 64},
                       {"F8_E4M3", 8}, {"F8_E5M2", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"F8_E8M0", 8},
                       {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}};
  for (const auto& r : table) {
    const auto t = dtype_from_name(r.name);
    REQUIRE(t.has_value());
    CHECK(dtype_bits(*t) == r.bits);
    CHECK(dtype_name(*t) == r.name);
  }
  CHECK_FALSE(dtype_from_name("F128").has_value());
  CHECK(dtype_from_user_name("bfloat16") == DType::BF16);
  CHECK(dtype_is_decodable_float(DType::F8_E4M3));
  CHECK_FALSE(dtype_is_decodable_float(DType::I64));
}
