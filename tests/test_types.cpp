// Scalar conversions of dyt/types.hpp against a reference written independently
// of them: decoding from the sign/exponent/mantissa fields with std::ldexp, and
// rounding in double arithmetic (nearest representable value, ties to the even
// mantissa), compared by value rather than by bit pattern.
#include <doctest/doctest.h>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <dyt/types.hpp>

namespace {

struct layout {
  const char* name;
  int exp_bits;
  int frac_bits;
  int bias;
};
constexpr layout kBf16{"bf16", 8, 7, 127};
constexpr layout kHalf{"half", 5, 10, 15};

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

int exp_max(const layout& l) { return (1 << l.exp_bits) - 1; }
std::uint16_t inf_bits(const layout& l) { return static_cast<std::uint16_t>(exp_max(l) << l.frac_bits); }
bool is_nan_bits(std::uint16_t b, const layout& l) { return (b & 0x7fff) > inf_bits(l); }

double ref_decode(std::uint16_t b, const layout& l) {
  const bool neg = (b >> 15) != 0;
  const int e = (b >> l.frac_bits) & exp_max(l);
  const int m = b & ((1 << l.frac_bits) - 1);
  double v;
  if (e == exp_max(l))
    v = m != 0 ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (e == 0)
    v = std::ldexp(static_cast<double>(m), 1 - l.bias - l.frac_bits);
  else
    v = std::ldexp(static_cast<double>(m + (1 << l.frac_bits)), e - l.bias - l.frac_bits);
  return std::copysign(v, neg ? -1.0 : 1.0);
}

// Nearest value of the format, ties to even, with IEEE overflow: round as if the
// exponent were unbounded, then anything above the largest finite value is Inf.
double ref_round(double x, const layout& l) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const double ax = std::fabs(x);
  int e;
  std::frexp(ax, &e);  // ax = f * 2^e, f in [0.5, 1): leading bit has weight 2^(e-1)
  const int emin = 1 - l.bias;
  const int lead = std::max(e - 1, emin);
  const double quantum = std::ldexp(1.0, lead - l.frac_bits);
  const double n = ax / quantum;  // exact: a power-of-two scaling
  double k = std::floor(n);
  const double rem = n - k;
  if (rem > 0.5 || (rem == 0.5 && std::fmod(k, 2.0) == 1.0)) k += 1.0;
  const double maxv = std::ldexp(2.0 - std::ldexp(1.0, -l.frac_bits), exp_max(l) - 1 - l.bias);
  double r = k * quantum;
  if (r > maxv) r = std::numeric_limits<double>::infinity();
  return std::copysign(r, x);
}

// The midpoint between pattern k and k + 1 (same sign, k finite). When k + 1 is
// Inf, the upper neighbour is the value the next exponent would have had, so the
// midpoint is the overflow threshold: largest finite + half an ulp.
double ref_midpoint(std::uint16_t k, const layout& l) {
  const double lo = ref_decode(k, l);
  double hi = ref_decode(static_cast<std::uint16_t>(k + 1), l);
  if (std::isinf(hi)) hi = std::copysign(std::ldexp(1.0, exp_max(l) - l.bias), hi);
  return (lo + hi) / 2.0;
}

std::uint16_t to_bits(float f, const layout& l) {
  return l.frac_bits == 7 ? dyt::detail::float_to_bf16_bits(f) : dyt::detail::float_to_half_bits(f);
}
float from_bits(std::uint16_t b, const layout& l) {
  return l.frac_bits == 7 ? dyt::detail::bf16_bits_to_float(b) : dyt::detail::half_bits_to_float(b);
}

// Whether rounding f gave the reference value (compared as values, with the sign
// of zero), or for a NaN input a NaN of the same sign.
bool rounds_right(float f, std::uint16_t got, const layout& l) {
  if (std::isnan(f)) return is_nan_bits(got, l) && (got >> 15) == (bits_of(f) >> 31);
  if (is_nan_bits(got, l)) return false;
  const double want = ref_round(static_cast<double>(f), l);
  const double have = ref_decode(got, l);
  return want == have && std::signbit(want) == std::signbit(have);
}

const layout* const kLayouts[] = {&kBf16, &kHalf};

}  // namespace

TEST_CASE("traits: formats, compute types, sizes") {
  using dyt::format;
  static_assert(dyt::scalar_traits<float>::fmt == format::f32, "");
  static_assert(dyt::scalar_traits<double>::fmt == format::f64, "");
  static_assert(dyt::scalar_traits<dyt::bfloat16>::fmt == format::bf16, "");
  static_assert(dyt::scalar_traits<dyt::half>::fmt == format::f16, "");
  static_assert(dyt::scalar_traits<Eigen::bfloat16>::fmt == format::bf16, "");
  static_assert(dyt::scalar_traits<Eigen::half>::fmt == format::f16, "");
  static_assert(std::is_same<dyt::compute_t<float>, float>::value, "");
  static_assert(std::is_same<dyt::compute_t<double>, double>::value, "");
  static_assert(std::is_same<dyt::compute_t<dyt::bfloat16>, float>::value, "");
  static_assert(std::is_same<dyt::compute_t<dyt::half>, float>::value, "");
  static_assert(std::is_same<dyt::compute_t<Eigen::half>, float>::value, "");
  static_assert(std::is_same<dyt::scalar_traits<dyt::half>::storage_type, dyt::half>::value, "");
  static_assert(dyt::is_16bit_v<dyt::bfloat16> && dyt::is_16bit_v<dyt::half> &&
                    dyt::is_16bit_v<Eigen::bfloat16> && dyt::is_16bit_v<Eigen::half>,
                "");
  static_assert(!dyt::is_16bit_v<float> && !dyt::is_16bit_v<double>, "");
  static_assert(std::is_trivial<dyt::bfloat16>::value && std::is_trivial<dyt::half>::value, "");
  static_assert(std::is_standard_layout<dyt::bfloat16>::value && std::is_standard_layout<dyt::half>::value, "");
  static_assert(!std::is_convertible<float, dyt::bfloat16>::value, "float -> bfloat16 is explicit");
  static_assert(!std::is_convertible<dyt::half, float>::value, "half -> float is explicit");
  static_assert(dyt::bfloat16::from_bits(0x3f80).bits == 0x3f80, "from_bits is constexpr");
  static_assert(dyt::half::from_bits(0x3c00).bits == 0x3c00, "from_bits is constexpr");

  CHECK(dyt::scalar_traits<float>::load(1.5f) == 1.5f);
  CHECK(dyt::scalar_traits<double>::store(0.1) == 0.1);
  CHECK(static_cast<float>(dyt::bfloat16(1.0f)) == 1.0f);
  CHECK(dyt::bfloat16(1.0f).bits == 0x3f80);
  CHECK(dyt::half(1.0f).bits == 0x3c00);
  CHECK(static_cast<float>(dyt::half::from_bits(0xc000)) == -2.0f);
  CHECK(dyt::scalar_traits<dyt::half>::store(65504.0f).bits == 0x7bff);
  CHECK(dyt::scalar_traits<dyt::bfloat16>::load(dyt::bfloat16::from_bits(0xc0a0)) == -5.0f);
}

TEST_CASE("16-bit -> float: all 65536 patterns of both formats") {
  for (const layout* l : kLayouts) {
    const std::string name = l->name;
    CAPTURE(name);
    int bad = 0;
    std::uint32_t first_bad = 0;
    for (std::uint32_t i = 0; i < 65536; ++i) {
      const auto b = static_cast<std::uint16_t>(i);
      const float got = from_bits(b, *l);
      const double want = ref_decode(b, *l);
      bool ok;
      if (std::isnan(want)) {
        // The sign survives, and a half NaN comes back quiet (as F16C does it);
        // bf16 widening is a pure shift that keeps every bit.
        ok = std::isnan(got) && std::signbit(got) == ((b >> 15) != 0);
        if (l == &kBf16) ok = ok && bits_of(got) == i << 16;
        if (l == &kHalf) ok = ok && (bits_of(got) & 0x00400000u) != 0 &&
                             ((bits_of(got) >> 13) & 0x1ffu) == (b & 0x1ffu);
      } else {
        ok = static_cast<double>(got) == want && std::signbit(got) == std::signbit(want);
      }
      if (!ok && bad++ == 0) first_bad = i;
    }
    CAPTURE(first_bad);
    CHECK(bad == 0);
  }
  // the wrappers go through the same functions
  CHECK(static_cast<float>(dyt::half::from_bits(0x0001)) == std::ldexp(1.0f, -24));
  CHECK(static_cast<float>(dyt::half::from_bits(0x03ff)) == std::ldexp(1023.0f, -24));
  CHECK(static_cast<float>(dyt::bfloat16::from_bits(0x0001)) == std::ldexp(1.0f, -133));
  CHECK(std::isinf(static_cast<float>(dyt::half::from_bits(0xfc00))));
}

TEST_CASE("float -> 16-bit: random floats of every magnitude") {
  std::mt19937 rng(12345);
  for (const layout* l : kLayouts) {
    const std::string name = l->name;
    CAPTURE(name);
    int bad = 0;
    std::uint32_t first_bad = 0;
    // Uniform bit patterns give every exponent (and so every range: zero,
    // float subnormal, 16-bit subnormal, normal, overflow, NaN) equal weight.
    for (int i = 0; i < 4000000; ++i) {
      const std::uint32_t u = rng();
      const float f = float_of(u);
      if (!rounds_right(f, to_bits(f, *l), *l) && bad++ == 0) first_bad = u;
    }
    // and a denser sweep of the magnitudes around the 16-bit format's range
    std::uniform_int_distribution<int> ex(-40, 20);
    for (int i = 0; i < 2000000; ++i) {
      const std::uint32_t m = rng() & 0x807fffffu;
      const std::uint32_t u = m | (static_cast<std::uint32_t>(127 + ex(rng)) << 23);
      const float f = float_of(u);
      if (!rounds_right(f, to_bits(f, *l), *l) && bad++ == 0) first_bad = u;
    }
    CAPTURE(first_bad);
    CHECK(bad == 0);
  }
}

TEST_CASE("float -> 16-bit: every tie between neighbours goes to even, and neighbours of ties") {
  for (const layout* l : kLayouts) {
    const std::string name = l->name;
    CAPTURE(name);
    int bad = 0;
    std::uint32_t first_bad = 0;
    const std::uint16_t inf = inf_bits(*l);
    // k and k+1 are neighbours of one sign for every finite k; k+1 == inf is the
    // overflow boundary, whose tie must give Inf (the largest finite mantissa is odd).
    for (std::uint32_t s = 0; s < 2; ++s) {
      for (std::uint32_t k = 0; k < inf; ++k) {
        const auto lo = static_cast<std::uint16_t>(k | (s << 15));
        const auto hi = static_cast<std::uint16_t>((k + 1) | (s << 15));
        const double mid = ref_midpoint(lo, *l);
        const float fm = static_cast<float>(mid);
        if (static_cast<double>(fm) != mid && bad++ == 0) first_bad = bits_of(fm);  // every tie is a float
        const std::uint16_t even = (k & 1u) ? hi : lo;
        const float above = std::nextafter(fm, s ? -INFINITY : INFINITY);
        const float below = std::nextafter(fm, 0.0f);
        const bool ok = to_bits(fm, *l) == even && to_bits(above, *l) == hi && to_bits(below, *l) == lo &&
                        rounds_right(fm, to_bits(fm, *l), *l) && rounds_right(above, to_bits(above, *l), *l) &&
                        rounds_right(below, to_bits(below, *l), *l);
        if (!ok && bad++ == 0) first_bad = bits_of(fm);
      }
    }
    CAPTURE(first_bad);
    CHECK(bad == 0);
  }
  // the named boundaries
  CHECK(dyt::detail::float_to_half_bits(65520.0f) == 0x7c00);
  CHECK(dyt::detail::float_to_half_bits(-65520.0f) == 0xfc00);
  CHECK(dyt::detail::float_to_half_bits(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(dyt::detail::float_to_half_bits(65504.0f) == 0x7bff);
  CHECK(dyt::detail::float_to_bf16_bits(float_of(0x7f7f8000u)) == 0x7f80);  // bf16 max-finite tie
  CHECK(dyt::detail::float_to_bf16_bits(float_of(0x7f7f7fffu)) == 0x7f7f);
  CHECK(dyt::detail::float_to_bf16_bits(float_of(0x7f7fffffu)) == 0x7f80);  // FLT_MAX
  CHECK(dyt::detail::float_to_half_bits(std::ldexp(1.0f, -25)) == 0x0000);  // tie between 0 and the min subnormal
  CHECK(dyt::detail::float_to_half_bits(std::ldexp(3.0f, -25)) == 0x0002);  // tie between 1 and 2 subnormal units
  CHECK(dyt::detail::float_to_half_bits(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)) == 0x0400);
  CHECK(dyt::detail::float_to_half_bits(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(dyt::detail::float_to_half_bits(-std::numeric_limits<float>::denorm_min()) == 0x8000);
  CHECK(dyt::detail::float_to_bf16_bits(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(dyt::detail::float_to_bf16_bits(float_of(0x00008000u)) == 0x0000);  // subnormal tie to even
  CHECK(dyt::detail::float_to_bf16_bits(float_of(0x00018000u)) == 0x0002);
}

TEST_CASE("float -> 16-bit: specials") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(dyt::detail::float_to_bf16_bits(inf) == 0x7f80);
  CHECK(dyt::detail::float_to_bf16_bits(-inf) == 0xff80);
  CHECK(dyt::detail::float_to_half_bits(inf) == 0x7c00);
  CHECK(dyt::detail::float_to_half_bits(-inf) == 0xfc00);
  CHECK(dyt::detail::float_to_bf16_bits(0.0f) == 0x0000);
  CHECK(dyt::detail::float_to_bf16_bits(-0.0f) == 0x8000);
  CHECK(dyt::detail::float_to_half_bits(0.0f) == 0x0000);
  CHECK(dyt::detail::float_to_half_bits(-0.0f) == 0x8000);

  // Every float NaN, both signs, quiet and signalling, every payload: the result
  // is a NaN of the same sign with the quiet bit set and the top payload bits
  // kept (the documented policy; the hardware conversions do the same).
  for (const layout* l : kLayouts) {
    const std::string name = l->name;
    CAPTURE(name);
    int bad = 0;
    std::uint32_t first_bad = 0;
    const int drop = 23 - l->frac_bits;
    const std::uint32_t quiet = 1u << (l->frac_bits - 1);
    for (std::uint32_t s = 0; s < 2; ++s) {
      for (std::uint32_t m = 1; m < (1u << 23); ++m) {
        const std::uint32_t u = (s << 31) | 0x7f800000u | m;
        const std::uint16_t got = to_bits(float_of(u), *l);
        const std::uint16_t want =
            static_cast<std::uint16_t>((s << 15) | inf_bits(*l) | quiet | (m >> drop));
        if (got != want && bad++ == 0) first_bad = u;
      }
    }
    CAPTURE(first_bad);
    CHECK(bad == 0);
  }
}

TEST_CASE("16-bit -> float -> 16-bit is the identity on all non-NaN patterns") {
  for (const layout* l : kLayouts) {
    const std::string name = l->name;
    CAPTURE(name);
    int bad = 0;
    for (std::uint32_t i = 0; i < 65536; ++i) {
      const auto b = static_cast<std::uint16_t>(i);
      if (is_nan_bits(b, *l)) {
        // NaNs stay NaN with their sign and payload (a half sNaN comes back quiet)
        const std::uint16_t back = to_bits(from_bits(b, *l), *l);
        const std::uint16_t quiet = static_cast<std::uint16_t>(1u << (l->frac_bits - 1));
        if (back != (b | quiet)) ++bad;
        continue;
      }
      if (to_bits(from_bits(b, *l), *l) != b) ++bad;
    }
    CHECK(bad == 0);
  }
  // and through the wrapper types and scalar_traits
  int bad = 0;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    if (!is_nan_bits(b, kBf16) &&
        dyt::bfloat16(static_cast<float>(dyt::bfloat16::from_bits(b))).bits != b)
      ++bad;
    if (!is_nan_bits(b, kHalf) &&
        dyt::scalar_traits<dyt::half>::store(dyt::scalar_traits<dyt::half>::load(dyt::half::from_bits(b))).bits != b)
      ++bad;
  }
  CHECK(bad == 0);
}

namespace {
template <class E>
std::uint16_t eigen_bits(E v) {
  std::uint16_t b;
  std::memcpy(&b, &v, 2);
  return b;
}
template <class E>
E eigen_from_bits(std::uint16_t b) {
  E v;
  std::memcpy(static_cast<void*>(&v), &b, 2);
  return v;
}

// Eigen's own conversions against scalar_traits<E>, both directions. NaNs are
// compared by class and sign only: Eigen's float->bfloat16 makes every NaN the
// canonical 0x7fc0/0xffc0, and its half conversions differ with and without F16C.
template <class E>
void check_eigen_interop(const layout& l) {
  using traits = dyt::scalar_traits<E>;
  static_assert(std::is_same<typename traits::storage_type, E>::value, "");
  int bad = 0;
  std::uint32_t first_bad = 0;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    const E e = eigen_from_bits<E>(b);
    const float mine = traits::load(e);
    const float theirs = static_cast<float>(e);
    const bool ok = is_nan_bits(b, l) ? (std::isnan(mine) && std::isnan(theirs) &&
                                         std::signbit(mine) == std::signbit(theirs))
                                      : bits_of(mine) == bits_of(theirs);
    if (!ok && bad++ == 0) first_bad = i;
  }
  std::mt19937 rng(777);
  std::vector<float> samples;
  for (int i = 0; i < 1000000; ++i) samples.push_back(float_of(rng()));
  for (std::uint32_t k = 0; k < inf_bits(l); ++k) {  // the ties
    const auto lo = static_cast<std::uint16_t>(k);
    const double mid = ref_midpoint(lo, l);
    samples.push_back(static_cast<float>(mid));
    samples.push_back(-static_cast<float>(mid));
  }
  for (float f : samples) {
    const std::uint16_t mine = eigen_bits(traits::store(f));
    const std::uint16_t theirs = eigen_bits(E(f));
    const bool ok = std::isnan(f) ? is_nan_bits(mine, l) && is_nan_bits(theirs, l) && (mine >> 15) == (theirs >> 15)
                                  : mine == theirs && mine == to_bits(f, l);
    if (!ok && bad++ == 0) first_bad = bits_of(f);
  }
  CAPTURE(first_bad);
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("interop: Eigen::bfloat16 and Eigen::half through scalar_traits") {
  static_assert(sizeof(Eigen::bfloat16) == 2 && sizeof(Eigen::half) == 2, "");
  check_eigen_interop<Eigen::bfloat16>(kBf16);
  check_eigen_interop<Eigen::half>(kHalf);
  // spot values through the Eigen types' own arithmetic
  CHECK(dyt::scalar_traits<Eigen::half>::load(Eigen::half(0.5f) + Eigen::half(0.25f)) == 0.75f);
  CHECK(eigen_bits(dyt::scalar_traits<Eigen::bfloat16>::store(3.0f)) == eigen_bits(Eigen::bfloat16(3.0f)));
}

// Every float, both formats, against the reference: several minutes, so off by
// default; run with --no-skip (e.g. -tc="*exhaustive*" --no-skip).
TEST_CASE("float -> 16-bit: exhaustive over all 2^32 floats" * doctest::skip()) {
  for (const layout* l : kLayouts) {
    const std::string name = l->name;
    CAPTURE(name);
    std::uint64_t bad = 0;
    std::uint32_t first_bad = 0;
    std::uint32_t u = 0;
    do {
      const float f = float_of(u);
      if (!rounds_right(f, to_bits(f, *l), *l) && bad++ == 0) first_bad = u;
    } while (++u != 0);
    CAPTURE(first_bad);
    CHECK(bad == 0);
  }
}
