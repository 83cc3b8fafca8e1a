// dyt/ops/rms_norm.hpp: the math of RMSNorm, written once for every backend.
//
//   r = 1 / sqrt(mean(x^2) + eps),  xh = x * r,  y = w * xh
// where w = gamma, or 1 + gamma in Gemma's form, or 1 without gamma.
//
// Backward, with gh = dy * w:
//   dx = r * (gh - xh * mean(gh * xh)),   dgamma[j] = sum over rows of dy * xh
// (the same in both forms: d(1 + gamma)/dgamma = 1).
//
// Robust = true (the CPU layers): a row whose sum of squares overflows the
// compute type gets its rstd again from x * wide_scale (rescue.hpp). x * r
// cannot overflow (|x r| <= sqrt(cols)), so y and dx need nothing more.
#pragma once

#include "affine.hpp"
#include "lanes.hpp"
#include "quantize.hpp"
#include "rescue.hpp"

namespace dyt {
namespace ops {

struct rms_norm_math {
  template <bool Robust = false, class Engine, class T, class C>
  DYT_HOST_DEVICE static C rstd(const Engine& eng, const T* x, C eps) {
    const C mean_sq = eng.sum([&](const auto& at) {
      auto v = at.load(x);
      return decltype(v)(v * v);
    }) / C(eng.cols);
    const C r = C(1) / lanes<C>::sqrt(mean_sq + eps);
    // r is 0 when the sum of squares overflowed (or x holds an infinity: the
    // scaled sum is infinite again and r stays 0), NaN for a NaN in x.
    if constexpr (Robust) {
      if (!(r > C(0))) return wide_rstd(eng, x, eps);
    }
    return r;
  }

  // rstd from the squares of x * s, s = wide_scale: 1 / sqrt(ms + eps) with
  // ms = ms_s / s^2 where that is finite, else s / sqrt(ms_s + eps s^2).
  template <class Engine, class T, class C>
  DYT_HOST_DEVICE static C wide_rstd(const Engine& eng, const T* x, C eps) {
    const C s = wide_scale<C>();
    const C ms_s = eng.sum([&](const auto& at) {
      auto v = at.load(x) * s;
      return decltype(v)(v * v);
    }) / C(eng.cols);
    const C ms = ms_s / s / s;
    return ms <= largest<C>() ? C(1) / lanes<C>::sqrt(ms + eps) : s / lanes<C>::sqrt(ms_s + eps * s * s);
  }

  // y: a T*, or a quantized destination (ops/quantize.hpp's emit).
  template <bool Robust = false, class Engine, class T, class Y, class P, class C>
  DYT_HOST_DEVICE static void forward_row(const Engine& eng, const T* x, Y y, const P* gamma, gamma_form form, C eps,
                                          C* rstd_out) {
    const C r = rstd<Robust>(eng, x, eps);
    if (rstd_out) *rstd_out = r;
    emit(eng, y, [&](const auto& at) {
      using V = decltype(at.load(x));
      return V(at.load(x) * r * gain(at, gamma, form));
    });
  }

  // Writes dx (which may alias x or dy; dx is a T* or an ops::plus<T>, see
  // store_dx) and adds this row's dy * xh to dgamma_acc (may be null).
  template <class Engine, class T, class DX, class P, class C>
  DYT_HOST_DEVICE static void backward_row(const Engine& eng, const T* x, const T* dy, DX dx, const P* gamma,
                                           gamma_form form, C r, C* dgamma_acc) {
    const C mean_gh_xh = eng.sum([&](const auto& at) {
      auto gh = at.load(dy) * gain(at, gamma, form);
      return decltype(gh)(gh * (at.load(x) * r));
    }) / C(eng.cols);
    eng.for_each([&](const auto& at) {
      auto xh = at.load(x) * r;
      auto dyv = at.load(dy);
      auto gh = dyv * gain(at, gamma, form);
      if (dgamma_acc) at.store(dgamma_acc, at.load(dgamma_acc) + dyv * xh);
      store_dx(at, dx, decltype(gh)((gh - xh * mean_gh_xh) * r));
    });
  }
};

}  // namespace ops
}  // namespace dyt
