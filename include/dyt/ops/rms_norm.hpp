// dyt/ops/rms_norm.hpp: the math of RMSNorm, written once for every backend.
//
//   r = 1 / sqrt(mean(x^2) + eps),  xh = x * r,  y = w * xh
// where w = gamma, or 1 + gamma in Gemma's form, or 1 without gamma.
//
// Backward, with gh = dy * w:
//   dx = r * (gh - xh * mean(gh * xh)),   dgamma[j] = sum over rows of dy * xh
// (the same in both forms: d(1 + gamma)/dgamma = 1).
#pragma once

#include "affine.hpp"
#include "lanes.hpp"

namespace dyt {
namespace ops {

struct rms_norm_math {
  template <class Engine, class T, class C>
  DYT_HOST_DEVICE static C rstd(const Engine& eng, const T* x, C eps) {
    const C mean_sq = eng.sum([&](const auto& at) {
      auto v = at.load(x);
      return decltype(v)(v * v);
    }) / C(eng.cols);
    return C(1) / lanes<C>::sqrt(mean_sq + eps);
  }

  template <class Engine, class T, class P, class C>
  DYT_HOST_DEVICE static void forward_row(const Engine& eng, const T* x, T* y, const P* gamma, gamma_form form, C eps,
                                          C* rstd_out) {
    const C r = rstd(eng, x, eps);
    if (rstd_out) *rstd_out = r;
    eng.for_each([&](const auto& at) { at.store(y, at.load(x) * r * gain(at, gamma, form)); });
  }

  // Writes dx (which may alias x or dy) and adds this row's dy * xh to dgamma_acc (may be null).
  template <class Engine, class T, class P, class C>
  DYT_HOST_DEVICE static void backward_row(const Engine& eng, const T* x, const T* dy, T* dx, const P* gamma,
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
      at.store(dx, (gh - xh * mean_gh_xh) * r);
    });
  }
};

}  // namespace ops
}  // namespace dyt
