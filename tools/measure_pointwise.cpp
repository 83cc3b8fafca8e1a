// Measures the float error of the squashing functions of Derf and DyISRU
// (include/dyt/ops/squash.hpp) as the CPU backend runs them: value and slope,
// on xsimd batches (the vector body) and on scalars (the tail and the
// cpu_scalar backend), against the same formulas in long double, in ulp of
// the exact result. Every non-negative float below the point where the value
// is 1 in float (both functions are odd, their slopes even), so the maxima in
// docs/pointwise.md are exact for this build.
//
//   g++ -O2 -march=native -std=c++17 -Iinclude tools/measure_pointwise.cpp -o measure_pointwise
//   ./measure_pointwise            (add -I<xsimd>/include to measure another xsimd)
#include <dyt/dyt.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

// Spacing of floats at the exact value v (the subnormal spacing below the normal range).
double ulp_of(long double v) {
  int e = v == 0 ? -126 : std::ilogb(double(fabsl(v)));
  if (e < -126) e = -126;
  return std::ldexp(1.0, e - 23);
}

struct worst {
  double ulps = 0;
  float at = 0;
  void note(float got, long double exact, float x) {
    const double e = double(fabsl(got - exact)) / ulp_of(exact);
    if (e > ulps) {
      ulps = e;
      at = x;
    }
  }
};

struct splat_at {
  static float splat(float c) { return c; }
};

template <class V>
struct batch_at {
  static V splat(float c) { return V(c); }
};

template <class Squash>
void measure(const char* name, float last, long double (*f)(long double), long double (*df)(long double)) {
  worst value_vec, slope_vec, value_scalar, slope_scalar;
#if DYT_USE_XSIMD
  using V = dyt::simd::batch<float>;
  constexpr int w = dyt::simd::width<float>;
#else
  constexpr int w = 1;
#endif
  std::uint32_t last_bits;
  std::memcpy(&last_bits, &last, 4);
  float in[w], value[w], slope[w];
  for (std::uint32_t b = 0; b <= last_bits; b += w) {
    for (int i = 0; i < w; ++i) {
      const std::uint32_t bits = b + std::uint32_t(i);
      std::memcpy(&in[i], &bits, 4);
    }
#if DYT_USE_XSIMD
    const auto vs = Squash::value_and_slope(batch_at<V>{}, V::load_unaligned(in));
    vs.value.store_unaligned(value);
    vs.slope.store_unaligned(slope);
#endif
    for (int i = 0; i < w; ++i) {
      const long double x = in[i];
      const long double fx = f(x), dfx = df(x);
#if DYT_USE_XSIMD
      value_vec.note(value[i], fx, in[i]);
      slope_vec.note(slope[i], dfx, in[i]);
#endif
      const auto s = Squash::value_and_slope(splat_at{}, in[i]);
      value_scalar.note(s.value, fx, in[i]);
      slope_scalar.note(s.slope, dfx, in[i]);
    }
  }
  std::printf("%-5s value: vector %.3f ulp (at %a), scalar %.3f ulp (at %a)\n", name, value_vec.ulps,
              double(value_vec.at), value_scalar.ulps, double(value_scalar.at));
  std::printf("%-5s slope: vector %.3f ulp (at %a), scalar %.3f ulp (at %a)\n", name, slope_vec.ulps,
              double(slope_vec.at), slope_scalar.ulps, double(slope_scalar.at));
}

long double erf_l(long double x) { return erfl(x); }
long double derf_l(long double x) { return 1.1283791670955126568L * expl(-x * x); }
long double isru_l(long double x) { return x / sqrtl(1 + x * x); }
long double disru_l(long double x) { return 1 / ((1 + x * x) * sqrtl(1 + x * x)); }

}  // namespace

int main() {
#if DYT_USE_XSIMD
  std::printf("xsimd %d.%d, %d float lanes\n", XSIMD_VERSION_MAJOR, XSIMD_VERSION_MINOR, dyt::simd::width<float>);
#endif
  // erf is 1 in float from 3.92. Its slope exp(-x^2) inherits x^2 times the
  // rounding of x^2: the error grows as x^2 / 2 ulp beyond, where it is tiny.
  measure<dyt::ops::erf_squash>("erf", 4.0f, erf_l, derf_l);
  // isru rounds to 1 from 2^12; its slope r^3 is measured to 2^20 (2^-60).
  measure<dyt::ops::isru_squash>("isru", 0x1p20f, isru_l, disru_l);
}
