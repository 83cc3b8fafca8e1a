// tests/quantize_truth.hpp: the quantized formats' truth, for the CPU and
// CUDA quantized-output tests: each E4M3 code's value from the format's
// definition, the nearest code by search, half a step of each format.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include <dyt/types.hpp>

namespace dyt_test {

// The value of an E4M3 code, straight from the format's definition.
inline double e4m3_value(std::uint8_t c) {
  const int e = (c >> 3) & 15, m = c & 7;
  if ((c & 0x7f) == 0x7f) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return (c & 0x80) ? -mag : mag;
}

// Nearest E4M3 code by search, ties to the even code, saturating: the truth
// for the conversions.
inline std::uint8_t e4m3_nearest(double v) {
  if (std::isnan(v)) return 0x7f;
  const std::uint8_t sign = std::signbit(v) ? 0x80 : 0;
  const double a = std::fabs(v);
  if (a >= 448) return std::uint8_t(sign | 0x7e);
  std::uint8_t best = 0;
  for (std::uint8_t c = 1; c <= 0x7e; ++c) {
    const double d = std::fabs(e4m3_value(c) - a), db = std::fabs(e4m3_value(best) - a);
    if (d < db || (d == db && (c & 1) == 0)) best = c;
  }
  return std::uint8_t(sign | best);
}

inline double e4m3_half_ulp(double v) {
  const double a = std::fabs(v);
  const int e = a > 0 ? std::max(std::ilogb(a), -6) : -6;
  return std::ldexp(1.0, e - 4);
}

template <class Q>
inline double half_step(double v) {
  if constexpr (std::is_same<Q, std::int8_t>::value) return 0.5 + 0 * v;
  else return e4m3_half_ulp(std::min(std::fabs(v), 448.0));
}

template <class Q>
inline double code_value(Q q) {
  if constexpr (std::is_same<Q, std::int8_t>::value) return double(q);
  else return e4m3_value(q.bits);
}

template <class Q>
std::string q_name() {
  return std::is_same<Q, std::int8_t>::value ? "int8" : "e4m3";
}

}  // namespace dyt_test
