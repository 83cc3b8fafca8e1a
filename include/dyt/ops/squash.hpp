// dyt/ops/squash.hpp: the squashing functions of the point-wise layers
// (ops/pointwise.hpp): tanh (DyT), erf (Derf) and the inverse square root
// unit u / sqrt(1 + u^2) (DyISRU).
//
// A squash is a type with, for every lanes type V (float, double, xsimd
// batches, CUDA lanes) and the position `at` of a row engine:
//   static V value(const V& u)                        f(u), for forward;
//   static squashed<V> value_and_slope(const At& at, const V& u)
//                                                     f(u) and f'(u), for backward.
// The pair is one call so that a squash may share work between the two
// (ISRU's square root); tanh's slope is formed from t = tanh(u) alone. `at`
// only broadcasts constants (at.splat), which some lanes types cannot be
// constructed from directly. Everything goes through lanes<V>, so a squash
// runs on every backend, the device included.
#pragma once

#include "lanes.hpp"

namespace dyt {
namespace ops {

template <class V>
struct squashed {
  V value;  // f(u)
  V slope;  // f'(u)
};

// tanh through a tanh policy (ops/tanh.hpp). f' = 1 - t^2, formed as
// (1 - t)(1 + t): relative accuracy where t is near +-1.
template <class Tanh>
struct tanh_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    return Tanh::apply(u);
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At& at, const V& u) {
    const V t = Tanh::apply(u);
    return {t, V((at.splat(1) - t) * (at.splat(1) + t))};
  }
};

// erf through lanes<V>::erf (std::erf, xsimd::erf, CUDA's erff).
// f' = 2/sqrt(pi) exp(-u^2): 0 once u^2 passes exp's underflow (Inf
// included), NaN for NaN. u * (0 - u) is -(u^2) exactly, written without a
// unary minus, which not every lanes type has.
// Fast: through lanes<V>::exp_fast (erf_tanh_squash's slope).
template <bool Fast = false, class V>
DYT_HOST_DEVICE DYT_INLINE V erf_slope(const V& u) {
  using S = typename lanes<V>::scalar_type;
  const V minus_u2 = u * (S(0) - u);
  const S two_over_sqrt_pi = S(1.1283791670955126);
  if constexpr (Fast) return V(lanes<V>::exp_fast(minus_u2) * two_over_sqrt_pi);
  else return V(lanes<V>::exp(minus_u2) * two_over_sqrt_pi);
}

struct erf_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    return lanes<V>::erf(u);
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At&, const V& u) {
    return {lanes<V>::erf(u), erf_slope(u)};
  }
};

// erf as tanh(u P(u^2)) through a tanh policy, for rows whose storage hides
// the error: the device runs it for 16-bit rows with tanh.approx.f32 (cuda/
// layers.cuh, device_squash), where erff costs the kernels 1.5x DyT's time.
// tools/fit_erf.py derives P (degree 4, weighted minimax of erf's relative
// error on [0, 3.92]): within 3.8e-6 relative of erf (64 float u, evaluated
// in float with fused multiply-adds) before the policy's own error, which on
// the device is 2^-10.987 (a quarter of a bf16 ulp). u is clamped to +-3.92,
// where erf is 1 to within 5.2e-8 (Inf gives +-1; a NaN stays NaN); u P(u^2)
// rises on [0, 3.92], to 11.6, where tanh is 1 in float. The slope is erf's
// own, 2/sqrt(pi) exp(-u^2), through lanes<V>::exp_fast (CUDA's __expf:
// 2 + 1.173 u^2 ulp, 1.3e-5 relative at most while exp(-u^2) is a normal
// float; beyond |u| = 9.3, where it is not, it flushes to 0;
// tests/pointwise_truth.hpp bounds it).
template <class Tanh>
struct erf_tanh_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    using S = typename lanes<V>::scalar_type;
    const V uc = lanes<V>::clamp(u, S(-3.92), S(3.92));
    const V s = uc * uc;
    V p = V(s * S(0x1.2997a4p-15) + S(-0x1.d43d54p-12));  // Horner, constants as tools/fit_erf.py prints them
    p = V(p * s + S(-0x1.ab2c2ap-12));
    p = V(p * s + S(0x1.a5479p-4));
    p = V(p * s + S(0x1.20dd3p+0));
    return Tanh::apply(V(uc * p));
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At&, const V& u) {
    return {value(u), erf_slope<true>(u)};
  }
};

// The inverse square root unit, f(u) = u / sqrt(1 + u^2), f'(u) = r^3 with
// r = 1 / sqrt(1 + u^2).
//
// |u| is first clamped to isru_far<S>: there u^2 is still finite (so a huge
// or infinite u does not give Inf / Inf = NaN), f(far) rounds to exactly +-1
// (u^2 + 1 rounds to u^2, a power of two whose root is exact) and f'(far) =
// far^-3 rounds to 0, which is what f and f' round to for every |u| beyond.
// So f is +-1 and f' is 0 from there to Inf, and a NaN stays NaN (clamp
// keeps it). The quotient is clamped to [-1, 1] as well: for |u| between
// ~2^12 and far its three roundings can leave it one ulp above 1.
template <class S>
struct isru_far;
template <>
struct isru_far<float> {
  static constexpr float value = 0x1p51f;  // (2^51)^2 = 2^102 < FLT_MAX; 2^-153 rounds to 0
};
template <>
struct isru_far<double> {
  static constexpr double value = 0x1p360;  // (2^360)^2 = 2^720 < DBL_MAX; 2^-1080 rounds to 0
};

// |u| clamped to isru_far: what both forms of ISRU below square.
template <class V>
DYT_HOST_DEVICE DYT_INLINE V isru_clamped(const V& u) {
  using S = typename lanes<V>::scalar_type;
  return lanes<V>::clamp(u, -isru_far<S>::value, isru_far<S>::value);
}

struct isru_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    const V uc = isru_clamped(u);
    return quotient(uc, root(uc));
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At& at, const V& u) {
    const V uc = isru_clamped(u);
    const V q = root(uc);
    const V r = lanes<V>::div(V(at.splat(1)), q);
    return {quotient(uc, q), V(r * r * r)};
  }

 private:
  // sqrt(1 + u^2)
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V root(const V& uc) {
    using S = typename lanes<V>::scalar_type;
    return lanes<V>::sqrt(V(uc * uc + S(1)));
  }
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V quotient(const V& uc, const V& q) {
    using S = typename lanes<V>::scalar_type;
    return lanes<V>::clamp(lanes<V>::div(uc, q), S(-1), S(1));
  }
};

// The same function through the reciprocal square root: r = rsqrt(1 + u^2),
// f = u r, f' = r^3, with the same clamps (u r, too, can land an ulp above
// 1). For lanes whose rsqrt is one cheap instruction, where the storage type
// hides its error: the device runs it for 16-bit rows (CUDA's rsqrtf, within
// 2 float ulp, 1/64 of a bf16 half-ulp), in place of a correctly rounded
// square root and division, which cost the 16-bit kernels 1.5x DyT's time
// (cuda/layers.cuh, device_squash; tests/pointwise_truth.hpp bounds it).
struct isru_rsqrt_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    const V uc = isru_clamped(u);
    return product(uc, inverse_root(uc));
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At&, const V& u) {
    const V uc = isru_clamped(u);
    const V r = inverse_root(uc);
    return {product(uc, r), V(r * r * r)};
  }

 private:
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V inverse_root(const V& uc) {
    using S = typename lanes<V>::scalar_type;
    return lanes<V>::rsqrt(V(uc * uc + S(1)));
  }
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V product(const V& uc, const V& r) {
    using S = typename lanes<V>::scalar_type;
    return lanes<V>::clamp(V(uc * r), S(-1), S(1));
  }
};

}  // namespace ops
}  // namespace dyt
