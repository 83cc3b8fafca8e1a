// dyt/cpu/simd.hpp: xsimd glue for the CPU backend.
//
// Covers the API differences between xsimd 8.1 (Debian 12) and later versions:
// hadd was renamed reduce_add in 9.0; bitwise_cast took a batch type up to
// 10.x and takes an element type since 11.0; the portable architecture tag
// `generic` was renamed `common` in 14.0. Everything else in dyt goes through
// these wrappers. Tested against 8.1, 10.0, 11.0 and 14.1 (README.md).
#pragma once

#include "../config.hpp"

#if DYT_USE_XSIMD

#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#if XSIMD_WITH_SSE2
#include <immintrin.h>
#endif

#include "../ops/lanes.hpp"

namespace dyt {
namespace simd {

template <class T>
using batch = xsimd::batch<T>;  // the widest instruction set the build targets

// The tag of code that works on every architecture, the fallback of tag dispatch.
#if XSIMD_VERSION_MAJOR >= 14
using portable_arch = xsimd::common;
#else
using portable_arch = xsimd::generic;
#endif

template <class T>
constexpr int width = static_cast<int>(batch<T>::size);

template <class T, class A>
DYT_INLINE T reduce_add(const xsimd::batch<T, A>& v) {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_add(v);
#else
  return xsimd::hadd(v);
#endif
}

// Reinterprets the bits of a batch as a batch of To of the same width in bytes.
template <class To, class From, class A>
DYT_INLINE xsimd::batch<To, A> bit_cast(const xsimd::batch<From, A>& v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast keeps the lane size");
#if XSIMD_VERSION_MAJOR >= 11
  return xsimd::bitwise_cast<To>(v);
#else
  return xsimd::bitwise_cast<xsimd::batch<To, A>>(v);
#endif
}

}  // namespace simd

template <class T, class A>
struct lanes<xsimd::batch<T, A>> {
  using V = xsimd::batch<T, A>;
  using scalar_type = T;
  static constexpr int width = static_cast<int>(V::size);

  // A NaN input must stay NaN. x86's min and max return their second operand
  // when either is NaN, so min(hi, max(lo, x)) keeps it, in two instructions
  // instead of four. Called through the intrinsics: xsimd::max swapped its
  // operands between 8.1 and 14. Elsewhere two compares and two selects.
  DYT_INLINE static V clamp(const V& x, T lo, T hi) {
    [[maybe_unused]] constexpr bool f32 = std::is_same<T, float>::value, f64 = std::is_same<T, double>::value;
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of<xsimd::avx512f, A>::value && f32)
      return _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), x));
    else if constexpr (std::is_base_of<xsimd::avx512f, A>::value && f64)
      return _mm512_min_pd(_mm512_set1_pd(hi), _mm512_max_pd(_mm512_set1_pd(lo), x));
    else
#endif
#if XSIMD_WITH_AVX
    if constexpr (std::is_base_of<xsimd::avx, A>::value && f32)
      return _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), x));
    else if constexpr (std::is_base_of<xsimd::avx, A>::value && f64)
      return _mm256_min_pd(_mm256_set1_pd(hi), _mm256_max_pd(_mm256_set1_pd(lo), x));
    else
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of<xsimd::sse2, A>::value && f32)
      return _mm_min_ps(_mm_set1_ps(hi), _mm_max_ps(_mm_set1_ps(lo), x));
    else if constexpr (std::is_base_of<xsimd::sse2, A>::value && f64)
      return _mm_min_pd(_mm_set1_pd(hi), _mm_max_pd(_mm_set1_pd(lo), x));
    else
#endif
      return xsimd::select(x < V(lo), V(lo), xsimd::select(x > V(hi), V(hi), x));
  }

  // Correctly rounded division. xsimd 8.1 has no AArch64 override for float
  // batches and divides by a reciprocal estimate and two Newton steps (wrong
  // in the last bits for ~40% of quotients), so a vector body would disagree
  // with its scalar tail; AArch64 has a real divide instruction.
  DYT_INLINE static V div(const V& a, const V& b) {
#if defined(__aarch64__)
    if constexpr (std::is_same<T, float>::value && std::is_same<typename V::register_type, float32x4_t>::value)
      return V(vdivq_f32(a, b));
#endif
    return a / b;
  }

  // a / b where b > 0, else 0 (ops/quantize.hpp's static scale of a channel).
  DYT_INLINE static V divide_or_zero(const V& a, const V& b) { return xsimd::select(b > V(T(0)), div(a, b), V(T(0))); }

  // xsimd's vector tanh: about 1.3 ulp in float (measured in tests/test_tanh.cpp).
  DYT_INLINE static V tanh(const V& x) { return finite_argument(x, T(-20), T(20), [](const V& a) { return xsimd::tanh(a); }); }

  // xsimd's vector erf, for Derf: within 2.43 float ulp and 24.5 double ulp
  // (xsimd 8.1 and 14.1 alike; docs/pointwise.md). Double lanes get |x| <= 6,
  // where erf is already +-1 in double: beyond it xsimd 8.1 returns NaN
  // (erf(1e300)), and its exp has the undefined conversion described below.
  DYT_INLINE static V erf(const V& x) { return finite_argument(x, T(-6), T(6), [](const V& a) { return xsimd::erf(a); }); }

  // xsimd's vector exp, for erf's slope exp(-u^2). Double lanes: clamped to
  // the range where exp is neither 0 nor Inf in double, which it then gives.
  DYT_INLINE static V exp(const V& x) { return finite_argument(x, T(-746), T(710), [](const V& a) { return xsimd::exp(a); }); }

  // Correctly rounded, as IEEE requires of every square root instruction.
  DYT_INLINE static V sqrt(const V& x) { return xsimd::sqrt(x); }

 private:
  // f(x) for xsimd's exp-based functions. Double lanes: xsimd's exp converts
  // every lane's exponent to int64 before it selects the overflow result,
  // through a scalar cast that is undefined behaviour for NaN and for |x|
  // beyond ~6e18 (found by fuzz/fuzz_dyt under UBSan;
  // tests/test_fuzz_regressions.cpp). So f gets x clamped to [lo, hi], where
  // f has already reached its limit, with NaN lanes replaced by 0 and put
  // back after. Float lanes convert with native instructions and need neither.
  template <class F>
  DYT_INLINE static V finite_argument(const V& x, T lo, T hi, F f) {
    if constexpr (std::is_same<T, double>::value) {
      const auto is_number = x == x;
      const V y = f(clamp(xsimd::select(is_number, x, V(T(0))), lo, hi));
      return xsimd::select(is_number, y, x);
    } else {
      return f(x);
    }
  }
};

}  // namespace dyt

#endif  // DYT_USE_XSIMD
