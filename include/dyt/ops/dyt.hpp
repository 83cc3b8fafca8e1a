// dyt/ops/dyt.hpp: the math of Dynamic Tanh, written once for every backend.
//
//   y = gamma * tanh(alpha * x) + beta         (gamma and beta each optional)
//
// Backward, with t = tanh(alpha x) and g = dy * gamma * (1 - t^2):
//   dx = alpha * g,   dalpha = sum over all elements of x * g,
//   dgamma[j] = sum over rows of dy * t,   dbeta[j] = sum over rows of dy.
// 1 - t^2 is formed as (1 - t)(1 + t): it keeps relative accuracy where t is
// near +-1, and it is formed in the compute type (in bf16 it would be 0 for
// |alpha x| > 3.4). No statistics are needed: x alone is enough for backward.
#pragma once

#include "affine.hpp"
#include "lanes.hpp"

namespace dyt {
namespace ops {

template <class Tanh>
struct dyt_math {
  // The element-wise map, for a single value or a vector of lanes.
  template <class V, class C>
  DYT_HOST_DEVICE DYT_INLINE static V squash(const V& x, C alpha) {
    return Tanh::apply(V(x * alpha));
  }

  // gamma and beta may be null. Their type P is deduced apart from T (the math only loads
  // them); every caller passes T today.
  template <class Engine, class T, class P, class C>
  DYT_HOST_DEVICE static void forward_row(const Engine& eng, C alpha, const T* x, T* y, const P* gamma,
                                          const P* beta) {
    eng.for_each([&](const auto& at) { at.store(y, affine(at, squash(at.load(x), alpha), gamma, beta)); });
  }

  // Writes dx, adds this row's dy * t to dgamma_acc and dy to dbeta_acc (either
  // may be null) and returns this row's share of dalpha, sum x * g.
  // Each column is read before it is written, so dx may alias x or dy. dx is
  // a T* or an ops::plus<T> (see store_dx).
  template <class Engine, class T, class DX, class P, class C>
  DYT_HOST_DEVICE static C backward_row(const Engine& eng, C alpha, const T* x, const T* dy, DX dx, const P* gamma,
                                        C* dgamma_acc, C* dbeta_acc) {
    return eng.sum([&](const auto& at) {
      auto xv = at.load(x);
      auto dyv = at.load(dy);
      auto t = squash(xv, alpha);
      auto dy_gamma = gamma ? decltype(dyv)(dyv * at.load(gamma)) : dyv;
      auto g = dy_gamma * ((at.splat(1) - t) * (at.splat(1) + t));
      if (dgamma_acc) at.store(dgamma_acc, at.load(dgamma_acc) + dyv * t);
      if (dbeta_acc) at.store(dbeta_acc, at.load(dbeta_acc) + dyv);
      store_dx(at, dx, decltype(g)(g * alpha));
      return decltype(g)(xv * g);
    });
  }
};

}  // namespace ops
}  // namespace dyt
