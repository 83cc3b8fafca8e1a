// dyt/ops/pointwise.hpp: the math of the point-wise layers, written once for
// every squashing function f (ops/squash.hpp) and every backend:
//
//   y = gamma * f(u) + beta,   u = alpha * x          (DyT: tanh, DyISRU: isru)
//                              u = alpha * x + shift  (Derf: erf)
//
// Backward, with t = f(u) and g = dy * gamma * f'(u):
//   dx = alpha * g,   dalpha = sum over all elements of x * g,
//   dshift = sum over all elements of g (with a shift only),
//   dgamma[j] = sum over rows of dy * t,   dbeta[j] = sum over rows of dy.
// f'(u) is formed in the compute type (ops/squash.hpp says how for each f).
// No statistics are needed: x alone is enough for backward.
//
// Whether u has a shift is decided by the type of the argument map the caller
// passes: a plain scalar alpha (u = alpha x, exactly one multiply: DyT's bits
// do not depend on there being a shifted variant), or scale_shift<C>.
#pragma once

#include "affine.hpp"
#include "lanes.hpp"
#include "quantize.hpp"
#include "squash.hpp"

namespace dyt {
namespace ops {

// u = alpha * x + shift (Derf).
template <class C>
struct scale_shift {
  C alpha;
  C shift;
};

template <class V, class C>
DYT_HOST_DEVICE DYT_INLINE V argument(const V& x, C alpha) {
  return V(x * alpha);
}
template <class V, class C>
DYT_HOST_DEVICE DYT_INLINE V argument(const V& x, const scale_shift<C>& map) {
  return V(V(x * map.alpha) + map.shift);
}

template <class C>
DYT_HOST_DEVICE DYT_INLINE C scale_of(C alpha) {
  return alpha;
}
template <class C>
DYT_HOST_DEVICE DYT_INLINE C scale_of(const scale_shift<C>& map) {
  return map.alpha;
}

// The compute type of an argument map, whether it has a shift, and what a
// backward row returns: dalpha's share, and with a shift dshift's after it.
template <class Map>
struct map_traits {
  using compute_type = Map;
  using row_sums = Map;
  static constexpr bool has_shift = false;
};
template <class C>
struct map_traits<scale_shift<C>> {
  using compute_type = C;
  using row_sums = sum_pair<C>;
  static constexpr bool has_shift = true;
};

template <class Squash>
struct pointwise_math {
  // The element-wise map f(u(x)), for a single value or a vector of lanes.
  template <class V, class Map>
  DYT_HOST_DEVICE DYT_INLINE static V squash(const V& x, const Map& map) {
    return Squash::value(argument(x, map));
  }

  // gamma and beta may be null. Their type P is deduced apart from T (the math only loads
  // them); every caller passes T today. y: a T*, or a quantized destination (see emit).
  template <class Engine, class T, class Y, class P, class Map>
  DYT_HOST_DEVICE static void forward_row(const Engine& eng, const Map& map, const T* x, Y y, const P* gamma,
                                          const P* beta) {
    emit(eng, y, [&](const auto& at) { return affine(at, squash(at.load(x), map), gamma, beta); });
  }

  // Writes dx, adds this row's dy * t to dgamma_acc and dy to dbeta_acc (either
  // may be null) and returns this row's share of dalpha, sum x * g: a C, or
  // with a shift a sum_pair<C> {dalpha's share, dshift's share (sum g)}.
  // Each column is read before it is written, so dx may alias x or dy. dx is
  // a T* or an ops::plus<T> (see store_dx). The return type is spelled out:
  // nvcc would deduce it in a host context, where a device-only engine's sum
  // cannot be called.
  template <class Engine, class T, class DX, class P, class Map>
  DYT_HOST_DEVICE static typename map_traits<Map>::row_sums backward_row(
      const Engine& eng, const Map& map, const T* x, const T* dy, DX dx, const P* gamma,
      typename map_traits<Map>::compute_type* dgamma_acc, typename map_traits<Map>::compute_type* dbeta_acc) {
    // One position of the row: the stores, then {x * g, g} for the row sums.
    auto column = [&](const auto& at) {
      using V = decltype(at.load(x));
      const V xv = at.load(x);
      const V dyv = at.load(dy);
      const squashed<V> f = Squash::value_and_slope(at, argument(xv, map));
      const V dy_gamma = gamma ? V(dyv * at.load(gamma)) : dyv;
      const V g = dy_gamma * f.slope;
      if (dgamma_acc) at.store(dgamma_acc, V(at.load(dgamma_acc) + dyv * f.value));
      if (dbeta_acc) at.store(dbeta_acc, V(at.load(dbeta_acc) + dyv));
      store_dx(at, dx, V(g * scale_of(map)));
      return sum_pair<V>{V(xv * g), g};
    };
    if constexpr (map_traits<Map>::has_shift)
      return eng.sum2(column);
    else
      return eng.sum([&](const auto& at) { return column(at).first; });
  }
};

}  // namespace ops
}  // namespace dyt
