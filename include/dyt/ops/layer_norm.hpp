// dyt/ops/layer_norm.hpp: the math of LayerNorm, written once for every backend.
//
//   mu = mean(x),  var = mean((x - mu)^2),  r = 1 / sqrt(var + eps),
//   xh = (x - mu) * r,  y = gamma * xh + beta        (gamma and beta optional)
//
// Backward, with gh = dy * gamma:
//   dx = r * (gh - mean(gh) - xh * mean(gh * xh)),
//   dgamma[j] = sum over rows of dy * xh,   dbeta[j] = sum over rows of dy.
// The variance takes a second sweep over the row, centred on the mean: never
// E[x^2] - E[x]^2, which cancels catastrophically in float when |mu| >> sigma.
// A row of a few thousand columns stays in L1/L2 between the sweeps.
//
// Robust = true, what the CPU layers run (docs/numerics.md):
//  - a row whose variance is within what the uncentred mean's own rounding
//    error ((n + 2) u |mean|, squared) can produce takes its sweeps again
//    centred on its first value, mean = x0 + sum(x - x0) / n: that mean's error
//    is at most about n u mean|x - x0| <= n u (sqrt(n) + 1) sigma, whatever
//    |mean| is (uncentred, a constant row of 10000.3 gave y = +-gamma + beta),
//    and a row of equal values gets mean = x exactly, var = 0 and y = beta
//    exactly. Every other row keeps the plain two-pass result, bit for bit;
//  - a row whose sums overflow the compute type is rescued (rescue.hpp): its
//    moments are taken again on x * s, s = wide_scale, and rows with
//    rstd < s (a spread above 1 / s) form xh = (x s - mean s)(rstd / s),
//    which cannot overflow where x - mean can.
// Robust = false is the plain two-pass form above (the CUDA device functors').
#pragma once

#include "../types.hpp"
#include "affine.hpp"
#include "lanes.hpp"
#include "quantize.hpp"
#include "rescue.hpp"

namespace dyt {
namespace ops {

struct layer_norm_math {
  template <bool Robust = false, class Engine, class T, class C>
  DYT_HOST_DEVICE static void moments(const Engine& eng, const T* x, C eps, C& mean, C& rstd) {
    const C n = C(eng.cols);
    mean = eng.sum([&](const auto& at) { return at.load(x); }) / n;
    const C m = mean;
    const C var = eng.sum([&](const auto& at) {
      auto d = at.load(x) - m;
      return decltype(d)(d * d);
    }) / n;
    rstd = C(1) / lanes<C>::sqrt(var + eps);
    if constexpr (Robust) {
      const C t = (n + C(2)) * unit_roundoff<C>() * m;
      // rstd is 0 when var overflowed, NaN when the mean did (or when x holds
      // a NaN or an infinity, which the scaled sweeps turn into NaN again).
      if (!(rstd > C(0))) centred_moments<true>(eng, x, eps, mean, rstd);
      else if (var <= C(4) * t * t) centred_moments<false>(eng, x, eps, mean, rstd);
    }
  }

  // The two sweeps centred on x0 = x[0], of x itself or (Scaled) of x * s,
  // s = wide_scale: then mean = mean_s / s (exact), and rstd = 1 / sqrt(var + eps)
  // with var = var_s / s^2 where that is finite, else s / sqrt(var_s + eps s^2)
  // (eps s^2 may underflow only where eps is negligible next to var).
  template <bool Scaled, class Engine, class T, class C>
  DYT_HOST_DEVICE static void centred_moments(const Engine& eng, const T* x, C eps, C& mean, C& rstd) {
    const C n = C(eng.cols), s = wide_scale<C>();
    auto load = [&](const auto& at) {
      auto v = at.load(x);
      if constexpr (Scaled) v = v * s;
      return v;
    };
    C x0 = eng.first(x);
    if constexpr (Scaled) x0 = x0 * s;
    const C ms = x0 + eng.sum([&](const auto& at) {
      auto d = load(at) - x0;
      return decltype(d)(d);
    }) / n;
    const C vs = eng.sum([&](const auto& at) {
      auto d = load(at) - ms;
      return decltype(d)(d * d);
    }) / n;
    if constexpr (Scaled) {
      mean = ms / s;
      const C var = vs / s / s;
      rstd = var <= largest<C>() ? C(1) / lanes<C>::sqrt(var + eps) : s / lanes<C>::sqrt(vs + eps * s * s);
    } else {
      mean = ms;
      rstd = C(1) / lanes<C>::sqrt(vs + eps);
    }
  }

  // Writes y and, where the pointers are given, this row's mean and rstd.
  // y: a T*, or a quantized destination (ops/quantize.hpp's emit).
  template <bool Robust = false, class Engine, class T, class Y, class P, class C>
  DYT_HOST_DEVICE static void forward_row(const Engine& eng, const T* x, Y y, const P* gamma, const P* beta, C eps,
                                          C* mean_out, C* rstd_out) {
    C mean, rstd;
    moments<Robust>(eng, x, eps, mean, rstd);
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
    if constexpr (Robust) {
      if (!(rstd >= wide_scale<C>())) {  // a spread above 1 / s, or a NaN row
        const C s = wide_scale<C>(), ms = mean * s, rs = rstd / s;
        emit(eng, y, [&](const auto& at) { return affine(at, (at.load(x) * s - ms) * rs, gamma, beta); });
        return;
      }
    }
    emit(eng, y, [&](const auto& at) { return affine(at, (at.load(x) - mean) * rstd, gamma, beta); });
  }

  // Writes dx and adds this row's dy * xh to dgamma_acc and dy to dbeta_acc
  // (either may be null). dx may alias x or dy: the sweep that writes dx reads
  // each column first. dx is a T* or an ops::plus<T> (see store_dx).
  template <bool Robust = false, class Engine, class T, class DX, class P, class C>
  DYT_HOST_DEVICE static void backward_row(const Engine& eng, const T* x, const T* dy, DX dx, const P* gamma, C mean,
                                           C rstd, C* dgamma_acc, C* dbeta_acc) {
    if constexpr (Robust) {
      if (!(rstd >= wide_scale<C>())) return wide_backward_row(eng, x, dy, dx, gamma, mean, rstd, dgamma_acc, dbeta_acc);
    }
    const C n = C(eng.cols);
    const sum_pair<C> sums = eng.sum2([&](const auto& at) {
      auto xh = (at.load(x) - mean) * rstd;
      auto gh = at.load(dy) * gain(at, gamma, gamma_form::plain);
      return sum_pair<decltype(gh)>{gh, gh * xh};
    });
    const C mean_gh = sums.first / n;
    const C mean_gh_xh = sums.second / n;
    eng.for_each([&](const auto& at) {
      auto xh = (at.load(x) - mean) * rstd;
      auto dyv = at.load(dy);
      auto gh = dyv * gain(at, gamma, gamma_form::plain);
      if (dgamma_acc) at.store(dgamma_acc, at.load(dgamma_acc) + dyv * xh);
      if (dbeta_acc) at.store(dbeta_acc, at.load(dbeta_acc) + dyv);
      store_dx(at, dx, decltype(gh)((gh - mean_gh - xh * mean_gh_xh) * rstd));
    });
  }

  // backward_row for a row whose spread is above 1 / s: xh = (x s - mean s)(rstd / s).
  template <class Engine, class T, class DX, class P, class C>
  DYT_HOST_DEVICE static void wide_backward_row(const Engine& eng, const T* x, const T* dy, DX dx, const P* gamma,
                                                C mean, C rstd, C* dgamma_acc, C* dbeta_acc) {
    const C n = C(eng.cols), s = wide_scale<C>(), ms = mean * s, rs = rstd / s;
    const sum_pair<C> sums = eng.sum2([&](const auto& at) {
      auto xh = (at.load(x) * s - ms) * rs;
      auto gh = at.load(dy) * gain(at, gamma, gamma_form::plain);
      return sum_pair<decltype(gh)>{gh, gh * xh};
    });
    const C mean_gh = sums.first / n;
    const C mean_gh_xh = sums.second / n;
    eng.for_each([&](const auto& at) {
      auto xh = (at.load(x) * s - ms) * rs;
      auto dyv = at.load(dy);
      auto gh = dyv * gain(at, gamma, gamma_form::plain);
      if (dgamma_acc) at.store(dgamma_acc, at.load(dgamma_acc) + dyv * xh);
      if (dbeta_acc) at.store(dbeta_acc, at.load(dbeta_acc) + dyv);
      store_dx(at, dx, decltype(gh)((gh - mean_gh - xh * mean_gh_xh) * rstd));
    });
  }
};

}  // namespace ops
}  // namespace dyt
