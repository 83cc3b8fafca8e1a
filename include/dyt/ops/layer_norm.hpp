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
#pragma once

#include "affine.hpp"
#include "lanes.hpp"

namespace dyt {
namespace ops {

struct layer_norm_math {
  template <class Engine, class T, class C>
  DYT_HOST_DEVICE static void moments(const Engine& eng, const T* x, C eps, C& mean, C& rstd) {
    const C n = C(eng.cols);
    mean = eng.sum([&](const auto& at) { return at.load(x); }) / n;
    const C m = mean;
    const C var = eng.sum([&](const auto& at) {
      auto d = at.load(x) - m;
      return decltype(d)(d * d);
    }) / n;
    rstd = C(1) / lanes<C>::sqrt(var + eps);
  }

  // Writes y and, where the pointers are given, this row's mean and rstd.
  template <class Engine, class T, class P, class C>
  DYT_HOST_DEVICE static void forward_row(const Engine& eng, const T* x, T* y, const P* gamma, const P* beta, C eps,
                                          C* mean_out, C* rstd_out) {
    C mean, rstd;
    moments(eng, x, eps, mean, rstd);
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
    eng.for_each([&](const auto& at) { at.store(y, affine(at, (at.load(x) - mean) * rstd, gamma, beta)); });
  }

  // Writes dx and adds this row's dy * xh to dgamma_acc and dy to dbeta_acc
  // (either may be null). dx may alias x or dy: the sweep that writes dx reads
  // each column first.
  template <class Engine, class T, class P, class C>
  DYT_HOST_DEVICE static void backward_row(const Engine& eng, const T* x, const T* dy, T* dx, const P* gamma, C mean,
                                           C rstd, C* dgamma_acc, C* dbeta_acc) {
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
      at.store(dx, (gh - mean_gh - xh * mean_gh_xh) * rstd);
    });
  }
};

}  // namespace ops
}  // namespace dyt
