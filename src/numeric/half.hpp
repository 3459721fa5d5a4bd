// Scalar FP16/BF16 <-> FP32/FP64 conversions, bit-exact, round-to-nearest-even,
// subnormals kept. The reference and the portable paths use these.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "gmmav/types.hpp"

namespace gmmav::numeric {

inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// IEEE binary16 -> float (exact).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  const std::uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return float_of(sign | 0x7F800000u | (man << 13) | (man ? 0x00400000u : 0u));  // inf / quiet nan (as F16C)
  if (exp == 0) {                                                                                 // zero / subnormal: man * 2^-24
    const float v = static_cast<float>(man) * 0x1p-24f;
    return sign ? -v : v;
  }
  return float_of(sign | ((exp + 112) << 23) | (man << 13));
}

/// bfloat16 -> float (exact: the high half of a float).
inline float bf16_to_float(std::uint16_t b) { return float_of(static_cast<std::uint32_t>(b) << 16); }

/// Rounds a double once to a binary format with `kMan` stored mantissa bits and
/// exponent range [kEmin, kEmax] (normal numbers), RNE, subnormals, overflow to inf.
template <int kMan, int kEmin, int kEmax, int kExpBits>
std::uint16_t round_double_to(double x) {
  const std::uint16_t sign = std::signbit(x) ? static_cast<std::uint16_t>(1u << 15) : 0;
  constexpr std::uint16_t kInf = static_cast<std::uint16_t>(((1u << kExpBits) - 1) << kMan);
  if (std::isnan(x)) return static_cast<std::uint16_t>(sign | kInf | (1u << (kMan - 1)));
  const double a = std::fabs(x);
  if (std::isinf(a)) return sign | kInf;
  if (a < std::ldexp(1.0, kEmin)) {                                           // subnormal range: multiples of 2^(kEmin - kMan)
    const double q = std::nearbyint(std::ldexp(a, kMan - kEmin));             // RNE in the default mode
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(q));  // q == 2^kMan gives the min normal
  }
  int e2 = 0;
  std::frexp(a, &e2);                                  // a = f * 2^e2, f in [0.5, 1)
  int E = e2 - 1;                                      // a in [2^E, 2^(E+1))
  double m = std::nearbyint(std::ldexp(a, kMan - E));  // in [2^kMan, 2^(kMan+1)]
  if (m >= std::ldexp(1.0, kMan + 1)) {
    m = std::ldexp(1.0, kMan);
    ++E;
  }
  if (E > kEmax) return sign | kInf;
  const auto biased = static_cast<std::uint32_t>(E - kEmin + 1);
  return static_cast<std::uint16_t>(sign | (biased << kMan) | (static_cast<std::uint32_t>(m) - (1u << kMan)));
}

/// double -> binary16, one RNE rounding (no double rounding through float).
inline std::uint16_t double_to_half(double x) { return round_double_to<10, -14, 15, 5>(x); }
/// double -> bfloat16, one RNE rounding.
inline std::uint16_t double_to_bf16(double x) { return round_double_to<7, -126, 127, 8>(x); }

/// float -> binary16, RNE (exact: a float is a double).
inline std::uint16_t float_to_half(float f) { return double_to_half(static_cast<double>(f)); }

/// float -> bfloat16, RNE by integer rounding of the bit pattern (carries into the exponent).
inline std::uint16_t float_to_bf16(float f) {
  const std::uint32_t u = bits_of(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // quiet nan
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/// The one place a DType picks the 16-bit format (the reference, synthetic cases, CLI and tests):
/// `bits` of type `t` as float (exact), and `x` rounded once (RNE) to type `t`.
inline float to_float(DType t, std::uint16_t bits) { return t == DType::f16 ? half_to_float(bits) : bf16_to_float(bits); }
inline std::uint16_t from_double(DType t, double x) { return t == DType::f16 ? double_to_half(x) : double_to_bf16(x); }

}  // namespace gmmav::numeric
