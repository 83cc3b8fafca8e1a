// dyt/types.hpp: storage types, their formats and the scalar load/store rules.
//
// Every layer reads its storage type T through scalar_traits<T>::load into a
// compute type (float, or double for double storage) and writes back through
// scalar_traits<T>::store, which rounds exactly once, to nearest even. The CPU
// vector path (cpu/convert.hpp) is tested to agree with these functions bit for
// bit, NaN payloads included, so a row's scalar tail and its vector body can
// never disagree.
//
// Foreign 16-bit types (Eigen::bfloat16, std::bfloat16_t, a user's own) need no
// wrapper: a format_of<T> specialization is enough, since load/store only copy
// the two bytes of T and never call its operators.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "config.hpp"

#if defined(__STDCPP_BFLOAT16_T__) || defined(__STDCPP_FLOAT16_T__)
#if defined(__has_include)
#if __has_include(<stdfloat>)
#include <stdfloat>
#define DYT_HAS_STDFLOAT 1
#endif
#endif
#endif
#ifndef DYT_HAS_STDFLOAT
#define DYT_HAS_STDFLOAT 0
#endif

// Declared, not included: Eigen is optional, and its two 16-bit structs hold a
// single uint16 each (Eigen 3.3 and 3.4), so scalar_traits can move their bits
// without seeing their definitions until a user instantiates it.
namespace Eigen {
struct bfloat16;
struct half;
}  // namespace Eigen

namespace dyt {

namespace detail {

DYT_HOST_DEVICE DYT_INLINE std::uint32_t float_as_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

DYT_HOST_DEVICE DYT_INLINE float bits_as_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// bfloat16 is the top half of a float, so widening is exact and needs no case
// analysis; a signalling NaN stays signalling, exactly as the vector shift does.
DYT_HOST_DEVICE DYT_INLINE float bf16_bits_to_float(std::uint16_t h) {
  return bits_as_float(static_cast<std::uint32_t>(h) << 16);
}

// Round to nearest even on the raw bits: adding 0x7fff plus the lowest kept bit
// carries into the kept half exactly when the dropped half is above the midpoint,
// or on it with an odd kept half. A carry out of the largest exponent lands on
// the Inf pattern, which is IEEE overflow under round-to-nearest. NaNs take the
// other arm because the carry could turn them into Inf: they keep their sign and
// top payload bits and get the quiet bit, which is what AVX512-BF16 and Arm's
// BFCVT produce as well.
DYT_HOST_DEVICE DYT_INLINE std::uint16_t float_to_bf16_bits(float f) {
  const std::uint32_t u = float_as_bits(f);
  const std::uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const std::uint32_t quiet_nan = (u >> 16) | 0x0040u;
  return static_cast<std::uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

// Rebias the exponent by moving the 15 magnitude bits into float position.
// Subnormal halves (exponent 0) are built as the normal float 2^-14 * 1.m and
// then 2^-14 is subtracted: every operand is a normal float, so the result is
// exact and unaffected by the rounding mode and by flush-to-zero or
// denormals-are-zero. A NaN gets the quiet bit, as F16C's vcvtph2ps and Arm's
// fcvtl set it, so this and the vector load in cpu/convert.hpp agree bit for bit.
DYT_HOST_DEVICE DYT_INLINE float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = (static_cast<std::uint32_t>(h) & 0x8000u) << 16;
  const std::uint32_t em = (static_cast<std::uint32_t>(h) & 0x7fffu) << 13;
  const std::uint32_t exp = em & 0x0f800000u;
  std::uint32_t o = em + 0x38000000u;  // + (127 - 15) << 23
  // Inf/NaN: the exponent must end at 255, not 15 + 112; the quiet bit is set
  // only if the mantissa is nonzero (a NaN, not Inf).
  const std::uint32_t quiet = (((em & 0x007fe000u) + 0x007fffffu) >> 1) & 0x00400000u;
  o = exp == 0x0f800000u ? (o + 0x38000000u) | quiet : o;
  // The mask: under round-toward-negative, 2^-14 - 2^-14 is -0.
  const std::uint32_t sub =
      float_as_bits(bits_as_float(o + 0x00800000u) - bits_as_float(0x38800000u)) & 0x7fffffffu;
  o = exp == 0 ? sub : o;
  return bits_as_float(o | sign);
}

// Round to nearest even, handled by magnitude range so each arm is a few integer
// operations and the choice compiles to selects:
//  - normal results: rebias and round like bf16 above, on 13 dropped bits; a
//    carry out of the mantissa correctly bumps the exponent;
//  - subnormal results: shift the mantissa (with its implicit bit) right by
//    126 - exponent, clamped to [14, 25]: 25 already sends every smaller float,
//    float subnormals included, to zero, and the clamp keeps the shift defined;
//  - |f| >= 65520, the midpoint between 65504 and 2^16, rounds to Inf (65504 has
//    an odd mantissa, so the tie goes up);
//  - NaN keeps its sign and top 10 payload bits and gets the quiet bit, which
//    is what F16C's vcvtps2ph and Arm's fcvtn produce.
// Integer-only, so the result does not depend on the FP rounding mode or on
// flush-to-zero settings.
DYT_HOST_DEVICE DYT_INLINE std::uint16_t float_to_half_bits(float f) {
  const std::uint32_t u = float_as_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t a = u & 0x7fffffffu;

  const std::uint32_t normal = (a - 0x38000000u + 0x0fffu + ((a >> 13) & 1u)) >> 13;

  int shift = 126 - static_cast<int>(a >> 23);
  shift = shift < 14 ? 14 : (shift > 25 ? 25 : shift);
  const std::uint32_t mant = (a & 0x007fffffu) | 0x00800000u;
  const std::uint32_t sub =
      (mant + ((1u << (shift - 1)) - 1u) + ((mant >> shift) & 1u)) >> shift;

  std::uint32_t r = a < 0x38800000u ? sub : normal;
  r = a >= 0x477ff000u ? 0x7c00u : r;
  r = a > 0x7f800000u ? (0x7e00u | ((a >> 13) & 0x03ffu)) : r;
  return static_cast<std::uint16_t>(r | sign);
}


// OCP FP8 E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no
// infinities, NaN = S.1111.111, largest finite 448 = S.1111.110, smallest
// subnormal 2^-9. Widening is exact: the normal codes rebias like half's;
// the subnormal ones are m * 2^-9, m < 8, a product of two exactly
// representable floats that is a normal float, so no rounding mode or
// flush-to-zero setting can change it. NaN widens to the quiet float NaN
// with the code's sign.
DYT_HOST_DEVICE DYT_INLINE float e4m3_bits_to_float(std::uint8_t b) {
  const std::uint32_t sign = (static_cast<std::uint32_t>(b) & 0x80u) << 24;
  const std::uint32_t em = static_cast<std::uint32_t>(b) & 0x7fu;
  if (em == 0x7fu) return bits_as_float(sign | 0x7fc00000u);
  if (em < 0x08u) return bits_as_float(sign | float_as_bits(static_cast<float>(em) * 0x1p-9f));
  return bits_as_float(sign | ((em + (120u << 3)) << 20));  // exponent + (127 - 7)
}

// Narrowing to E4M3 with round to nearest even and saturation to +-448
// ("satfinite", what CUDA's __nv_cvt_float_to_fp8(v, __NV_SATFINITE,
// __NV_E4M3) does): a value beyond the format, infinities included, becomes
// +-448 rather than NaN, since E4M3FN has no infinity to overflow to. NaN
// stays NaN (S.1111.111). Written once for float and double sources, on the
// raw bits, like float_to_half_bits: integer-only, so independent of the FP
// rounding mode and of flush-to-zero. Bits: the source's bit pattern as an
// unsigned integer; Mant: its stored mantissa bits; Bias: its exponent bias.
//  - normal results (|v| >= 2^-6): rebias and round on the Mant - 3 dropped
//    bits, a carry out of the mantissa bumping the exponent (up to 448 at
//    most: every |v| >= 448 took the saturating arm);
//  - subnormal results: the significand with its implicit bit, shifted right
//    so that one unit is 2^-9, rounded to even; a shift clamped to
//    Mant + 2 sends everything smaller (source subnormals included) to zero,
//    and the lower clamp keeps the shift defined on the other arms' inputs.
template <class Bits, int Mant, int Bias>
DYT_HOST_DEVICE DYT_INLINE std::uint8_t to_e4m3_bits(Bits u) {
  constexpr int width = int(sizeof(Bits)) * 8;
  const Bits one = 1;
  const Bits magnitude_mask = (one << (width - 1)) - one;
  const Bits a = u & magnitude_mask;
  const std::uint8_t sign = static_cast<std::uint8_t>((u >> (width - 8)) & 0x80u);
  const Bits exp_all_ones = magnitude_mask & ~((one << Mant) - one);  // the infinity pattern
  const Bits max_finite = (Bits(Bias + 8) << Mant) | (Bits(6) << (Mant - 3));  // 448 = 2^8 * 1.75
  const Bits min_normal = Bits(Bias - 6) << Mant;                             // 2^-6
  constexpr int dropped = Mant - 3;
  std::uint32_t r;
  if (a > exp_all_ones) {
    r = 0x7fu;
  } else if (a >= max_finite) {
    r = 0x7eu;
  } else if (a >= min_normal) {
    const Bits rebias = Bits(Bias - 7) << Mant;
    r = static_cast<std::uint32_t>((a - rebias + ((one << (dropped - 1)) - one) + ((a >> dropped) & one)) >> dropped);
  } else {
    // |v| = significand * 2^(e - Bias - Mant); in units of 2^-9 that is
    // significand >> (Bias + Mant - 9 - e).
    int shift = Bias + Mant - 9 - static_cast<int>(a >> Mant);
    shift = shift < dropped + 1 ? dropped + 1 : (shift > Mant + 2 ? Mant + 2 : shift);
    const Bits significand = (a & ((one << Mant) - one)) | (one << Mant);
    r = static_cast<std::uint32_t>((significand + ((one << (shift - 1)) - one) + ((significand >> shift) & one)) >> shift);
  }
  return static_cast<std::uint8_t>(r | sign);
}

DYT_HOST_DEVICE DYT_INLINE std::uint8_t float_to_e4m3_bits(float f) {
  return to_e4m3_bits<std::uint32_t, 23, 127>(float_as_bits(f));
}

// From double directly, not through float: two roundings could differ from
// one at a tie of the narrower format.
DYT_HOST_DEVICE DYT_INLINE std::uint8_t double_to_e4m3_bits(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return to_e4m3_bits<std::uint64_t, 52, 1023>(u);
}
}  // namespace detail

// Brain float: 1 sign, 8 exponent, 7 mantissa bits. A plain bit container, so
// arrays of it are trivially copyable and uninitialized like float arrays; all
// arithmetic is meant to happen in float.
struct bfloat16 {
  std::uint16_t bits;

  bfloat16() = default;
  DYT_HOST_DEVICE explicit bfloat16(float f) : bits(detail::float_to_bf16_bits(f)) {}
  DYT_HOST_DEVICE explicit operator float() const { return detail::bf16_bits_to_float(bits); }
  DYT_HOST_DEVICE static constexpr bfloat16 from_bits(std::uint16_t b) {
    bfloat16 r{};
    r.bits = b;
    return r;
  }
};

// IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits.
struct half {
  std::uint16_t bits;

  half() = default;
  DYT_HOST_DEVICE explicit half(float f) : bits(detail::float_to_half_bits(f)) {}
  DYT_HOST_DEVICE explicit operator float() const { return detail::half_bits_to_float(bits); }
  DYT_HOST_DEVICE static constexpr half from_bits(std::uint16_t b) {
    half r{};
    r.bits = b;
    return r;
  }
};

// OCP FP8 E4M3FN (see detail::float_to_e4m3_bits): an output format of the
// quantized forward (ops/quantize.hpp), not a storage type the layers read.
struct float8_e4m3 {
  std::uint8_t bits;

  float8_e4m3() = default;
  DYT_HOST_DEVICE explicit float8_e4m3(float f) : bits(detail::float_to_e4m3_bits(f)) {}
  DYT_HOST_DEVICE explicit float8_e4m3(double d) : bits(detail::double_to_e4m3_bits(d)) {}
  DYT_HOST_DEVICE explicit operator float() const { return detail::e4m3_bits_to_float(bits); }
  DYT_HOST_DEVICE static constexpr float8_e4m3 from_bits(std::uint8_t b) {
    float8_e4m3 r{};
    r.bits = b;
    return r;
  }
};

static_assert(sizeof(float8_e4m3) == 1 && std::is_trivially_copyable<float8_e4m3>::value &&
                  std::is_trivially_default_constructible<float8_e4m3>::value,
              "dyt::float8_e4m3 must be a bare 8-bit container");
static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable<bfloat16>::value &&
                  std::is_trivially_default_constructible<bfloat16>::value,
              "dyt::bfloat16 must be a bare 16-bit container");
static_assert(sizeof(half) == 2 && std::is_trivially_copyable<half>::value &&
                  std::is_trivially_default_constructible<half>::value,
              "dyt::half must be a bare 16-bit container");

enum class format { f32, f64, bf16, f16 };

// The storage format of T. Left undefined for unknown types so that using one is
// a compile error; specialize it (Enable allows SFINAE) for a type of your own
// that has the same bits as one of the formats.
template <class T, class Enable = void>
struct format_of;

template <>
struct format_of<float> : std::integral_constant<format, format::f32> {};
template <>
struct format_of<double> : std::integral_constant<format, format::f64> {};
template <>
struct format_of<bfloat16> : std::integral_constant<format, format::bf16> {};
template <>
struct format_of<half> : std::integral_constant<format, format::f16> {};
template <>
struct format_of<Eigen::bfloat16> : std::integral_constant<format, format::bf16> {};
template <>
struct format_of<Eigen::half> : std::integral_constant<format, format::f16> {};
#if DYT_HAS_STDFLOAT && defined(__STDCPP_BFLOAT16_T__)
template <>
struct format_of<std::bfloat16_t> : std::integral_constant<format, format::bf16> {};
#endif
#if DYT_HAS_STDFLOAT && defined(__STDCPP_FLOAT16_T__)
template <>
struct format_of<std::float16_t> : std::integral_constant<format, format::f16> {};
#endif

template <class T>
struct scalar_traits {
  static constexpr format fmt = format_of<T>::value;
  using storage_type = T;
  using compute_type = std::conditional_t<fmt == format::f64, double, float>;

  static_assert(sizeof(T) == ((fmt == format::f64) ? 8 : (fmt == format::f32) ? 4 : 2),
                "format_of<T> names a format whose size differs from sizeof(T)");
  static_assert(std::is_trivially_copyable<T>::value,
                "storage types are moved as raw bytes and must be trivially copyable");

  // memcpy, not a cast: it works for any type with the format's bits (and compiles
  // to a plain register move), where a cast would need T's own conversion operator.
  DYT_HOST_DEVICE DYT_INLINE static compute_type load(const T& v) {
    if constexpr (fmt == format::bf16 || fmt == format::f16) {
      std::uint16_t b;
      std::memcpy(&b, &v, sizeof b);
      if constexpr (fmt == format::bf16) return detail::bf16_bits_to_float(b);
      else return detail::half_bits_to_float(b);
    } else {
      compute_type c;
      std::memcpy(&c, &v, sizeof c);
      return c;
    }
  }

  DYT_HOST_DEVICE DYT_INLINE static T store(compute_type c) {
    T out;
    if constexpr (fmt == format::bf16 || fmt == format::f16) {
      std::uint16_t b;
      if constexpr (fmt == format::bf16) b = detail::float_to_bf16_bits(c);
      else b = detail::float_to_half_bits(c);
      // void*: T may have a non-trivial default constructor (Eigen's types zero
      // themselves), which -Wclass-memaccess objects to; being trivially
      // copyable is what makes the byte copy valid.
      std::memcpy(static_cast<void*>(&out), &b, sizeof b);
    } else {
      std::memcpy(static_cast<void*>(&out), &c, sizeof out);
    }
    return out;
  }
};

template <class T>
using compute_t = typename scalar_traits<T>::compute_type;

template <class T>
constexpr bool is_16bit_v = format_of<T>::value == format::bf16 || format_of<T>::value == format::f16;

}  // namespace dyt
