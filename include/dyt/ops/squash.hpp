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
struct erf_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    return lanes<V>::erf(u);
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At&, const V& u) {
    using S = typename lanes<V>::scalar_type;
    const V minus_u2 = u * (S(0) - u);
    return {lanes<V>::erf(u), V(lanes<V>::exp(minus_u2) * S(1.1283791670955126))};  // 2/sqrt(pi)
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

struct isru_squash {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V value(const V& u) {
    const V uc = clamped(u);
    return quotient(uc, root(uc));
  }
  template <class At, class V>
  DYT_HOST_DEVICE DYT_INLINE static squashed<V> value_and_slope(const At& at, const V& u) {
    const V uc = clamped(u);
    const V q = root(uc);
    const V r = lanes<V>::div(V(at.splat(1)), q);
    return {quotient(uc, q), V(r * r * r)};
  }

 private:
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V clamped(const V& u) {
    using S = typename lanes<V>::scalar_type;
    return lanes<V>::clamp(u, -isru_far<S>::value, isru_far<S>::value);
  }
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

}  // namespace ops
}  // namespace dyt
