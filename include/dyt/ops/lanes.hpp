// dyt/ops/lanes.hpp: the vocabulary the layer math is written in.
//
// The math in ops/ is a template over a "lanes" type V: a plain float or double
// (the reference backend, the scalar tails of the CPU backend, CUDA threads) or
// an xsimd batch (the CPU backend's vector body). Arithmetic operators work on
// all of them directly; the few functions that differ (tanh, erf, exp, exp_fast, clamp, div, sqrt, rsqrt) go through
// the customization point dyt::lanes<V>, specialized for xsimd batches in
// cpu/simd.hpp. A class template, not overloads, so that a specialization
// declared after this header is still found when ops/ is instantiated.
#pragma once

#include <cmath>
#include <type_traits>

#include "../config.hpp"

namespace dyt {

template <class V, class Enable = void>
struct lanes;

template <class S>
struct lanes<S, std::enable_if_t<std::is_floating_point<S>::value>> {
  using scalar_type = S;
  static constexpr int width = 1;

  // Written with comparisons, not fmin/fmax, so a NaN input stays NaN.
  DYT_HOST_DEVICE static S clamp(S x, S lo, S hi) { return x < lo ? lo : (x > hi ? hi : x); }

  // The platform's accurate tanh: glibc's on the host, CUDA's tanhf on the device.
  DYT_HOST_DEVICE static S tanh(S x) {
#if defined(__CUDA_ARCH__)
    return ::tanh(x);
#else
    return std::tanh(x);
#endif
  }

  // erf and exp for Derf (ops/squash.hpp). On the device the float forms are
  // named, so that no double routine is reached by a float argument.
  DYT_HOST_DEVICE static S erf(S x) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same<S, float>::value) return ::erff(x);
    else return ::erf(x);
#else
    return std::erf(x);
#endif
  }

  DYT_HOST_DEVICE static S exp(S x) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same<S, float>::value) return ::expf(x);
    else return ::exp(x);
#else
    return std::exp(x);
#endif
  }

  // exp where a few ulp more are welcome for speed (ops::erf_tanh_squash's
  // slope): CUDA's __expf on the device, within 2 + 1.173 |x| ulp; exp on the host.
  DYT_HOST_DEVICE static S exp_fast(S x) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same<S, float>::value) return ::__expf(x);
    else return ::exp(x);
#else
    return std::exp(x);
#endif
  }

  DYT_HOST_DEVICE static S div(S a, S b) { return a / b; }

  DYT_HOST_DEVICE static S sqrt(S x) {
#if defined(__CUDA_ARCH__)
    return ::sqrt(x);
#else
    return std::sqrt(x);
#endif
  }

  // 1 / sqrt(x), for ops::isru_rsqrt_squash: CUDA's rsqrtf on the device
  // (within 2 ulp); correctly rounded operations on the host.
  DYT_HOST_DEVICE static S rsqrt(S x) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same<S, float>::value) return ::rsqrtf(x);
    else return ::rsqrt(x);
#else
    return S(1) / std::sqrt(x);
#endif
  }
};

namespace ops {
// Two sums taken in one sweep of a row (LayerNorm's backward needs both).
template <class V>
struct sum_pair {
  V first;
  V second;
};
// Where a backward row writes dx. A plain T* receives dx itself; plus<T> receives
// addend + dx, rounded once: the fused residual backward, where addend is the
// gradient reaching the residual stream from later layers. At each column the
// addend is read just before out is written, so out may be addend itself.
template <class T>
struct plus {
  const T* addend;
  T* out;
};

template <class At, class T, class V>
DYT_HOST_DEVICE DYT_INLINE void store_dx(const At& at, T* dx, const V& v) {
  at.store(dx, v);
}
template <class At, class T, class V>
DYT_HOST_DEVICE DYT_INLINE void store_dx(const At& at, const plus<T>& dx, const V& v) {
  at.store(dx.out, decltype(v)(at.load(dx.addend) + v));
}

}  // namespace ops

}  // namespace dyt
