// tests/backward_truth.hpp: the float64 truth of each layer's backward (dx
// and every parameter gradient) with the bounds derived for it, following the
// error model at the top of support.hpp: shared by tests/test_backward.cpp
// (each backend against the truth) and tests/test_residual.cpp (the fused
// residual backward, dx = dh + the layer's dx, against dh + the truth).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include <dyt/dyt.hpp>

#include "layer_variants.hpp"
#include "support.hpp"

namespace dyt_test {

// Gradient slots (kGradNames, support.hpp), as bits of a request mask.
enum : unsigned { want_dgamma = 1, want_dbeta = 2, want_dalpha = 4 };

struct backward_truth {
  expected_output dx;
  expected_output grad[3];  // dgamma, dbeta (1 x cols), dalpha (1 x 1)
  unsigned grads = 0;       // the gradients the layer has
};

// ---------------------------------------------------------------------------
// DyT

template <class T>
backward_truth dyt_truth(const problem<T>& p, const dyt_variant& v, double policy_ulps) {
  backward_truth t;
  t.dx = expected_output(p.rows, p.cols);
  t.grad[0] = expected_output(1, p.cols);
  t.grad[1] = expected_output(1, p.cols);
  t.grad[2] = expected_output(1, 1);
  t.grads = (v.gamma ? want_dgamma : 0u) | (v.beta ? want_dbeta : 0u) | want_dalpha;
  const dyt::DyT<double, dyt::reference> ref(&p.alphad, v.gamma ? p.gammad.data() : nullptr,
                                             v.beta ? p.betad.data() : nullptr, p.cols);
  dyt::DyT<double, dyt::reference>::gradients grads;
  grads.dgamma = v.gamma ? t.grad[0].ref.data() : nullptr;
  grads.dbeta = v.beta ? t.grad[1].ref.data() : nullptr;
  grads.dalpha = t.grad[2].ref.data();
  REQUIRE(ref.backward(p.xd.cview(), p.dyd.cview(), t.dx.ref.view(), grads).ok());

  // With t = tanh(a), a = fl(alpha x), in a compute type of unit roundoff u
  // and a tanh policy within p ulp (<= 2p u |t|):
  //  - t is within (1 + 2p) u |t| of tanh(alpha x) (forward's derivation);
  //  - h = (1 - t)(1 + t): t's error moves it by 2|t| (1 + 2p) u |t|; the two
  //    factors and their product round: 3u h;
  //  - g = fl(fl(dy gamma) h): 2u more of |dy gamma| h; dx = fl(g alpha): u.
  // |dx error| <= |alpha dy gamma| u ((4p + 2) t^2 + 6 h) <= (4p + 2) u |alpha dy gamma|
  // (t^2 + h = 1, p >= 1); k = 4p + 3 with one unit of slack.
  const double p4 = 4 * policy_ulps;
  const double n = double(p.cols), rows = double(p.rows);
  double dalpha_scale = 0;
  for (index_t c = 0; c < p.cols; ++c) {
    double dgamma_scale = 0, dbeta_scale = 0;
    const double gamma = v.gamma ? std::fabs(p.gammad(0, c)) : 1.0;
    for (index_t r = 0; r < p.rows; ++r) {
      const double th = std::tanh(p.alphad * p.xd(r, c)), dy = std::fabs(p.dyd(r, c));
      t.dx.set_bound(r, c, p4 + 3, std::fabs(p.alphad) * dy * gamma);
      dgamma_scale += dy * std::fabs(th);
      dbeta_scale += dy;
      dalpha_scale += std::fabs(p.xd(r, c)) * dy * gamma;
    }
    // dgamma = sum over rows of fl(dy t): each term within (2p + 2) u |dy t|
    // (t's error and the product); the sum over rows, in chunk partials then
    // across chunks, passes each term through at most rows - 1 additions:
    // k = rows + 2p + 3 with one unit of slack.
    t.grad[0].set_bound(0, c, rows + 2 * policy_ulps + 3, dgamma_scale);
    // dbeta = sum over rows of dy: at most rows - 1 additions; k = rows.
    t.grad[1].set_bound(0, c, rows, dbeta_scale);
  }
  // dalpha = sum over all elements of fl(x g): each term within
  // u |x dy gamma| ((4p + 2) t^2 + 6 h) <= (4p + 2) u |x dy gamma| (dx's
  // derivation without the final multiply by alpha, plus the product's
  // rounding); each term then passes through at most n - 1 additions in its
  // row, one into its chunk's partial per row of the chunk and chunks - 1 in
  // the final sum: at most n + rows - 1. k = n + rows + 4p + 3.
  t.grad[2].set_bound(0, 0, n + rows + p4 + 3, dalpha_scale);
  return t;
}

// ---------------------------------------------------------------------------
// LayerNorm

template <class T>
backward_truth layer_norm_truth(const problem<T>& p, const ln_variant& v) {
  backward_truth t;
  t.dx = expected_output(p.rows, p.cols);
  t.grad[0] = expected_output(1, p.cols);
  t.grad[1] = expected_output(1, p.cols);
  t.grads = (v.gamma ? want_dgamma : 0u) | (v.beta ? want_dbeta : 0u);
  const dyt::LayerNorm<double, dyt::reference> ref(v.gamma ? p.gammad.data() : nullptr,
                                                   v.beta ? p.betad.data() : nullptr, p.cols,
                                                   kLayerNormEps);
  dyt::LayerNorm<double, dyt::reference>::gradients grads;
  grads.dgamma = v.gamma ? t.grad[0].ref.data() : nullptr;
  grads.dbeta = v.beta ? t.grad[1].ref.data() : nullptr;
  REQUIRE(ref.backward(p.xd.cview(), p.dyd.cview(), t.dx.ref.view(), grads).ok());
  dense y(p.rows, p.cols), mean(1, p.rows), rstd(1, p.rows);
  REQUIRE(ref.forward(p.xd.cview(), y.view(), {mean.data(), rstd.data()}).ok());

  const double n = double(p.cols), rows = double(p.rows);
  // rho = (rho0 + rho1 u) u bounds rstd's relative error, and mean's error is
  // within n u mean|x| (test_forward.cpp, layer_norm_truth, derives both);
  // m1 = rstd mean|x|. Then xh = fl(fl(x - mean_c) rstd_c) is within
  // E_xh = (rho + 2) u |xh| + n u m1.
  const double rho0 = n / 2 + 4.5;
  std::vector<double> m1(std::size_t(p.rows)), rho1(std::size_t(p.rows));
  double rho1_max = 0;
  for (index_t r = 0; r < p.rows; ++r) {
    double mean_abs = 0, a = 0, b = 0;
    for (index_t c = 0; c < p.cols; ++c) mean_abs += std::fabs(p.xd(r, c)) / n;
    m1[r] = rstd(0, r) * mean_abs;
    rho1[r] = n * n * m1[r] * m1[r] / 2;
    rho1_max = std::max(rho1_max, rho1[r]);
    auto gh = [&](index_t c) { return p.dyd(r, c) * (v.gamma ? p.gammad(0, c) : 1.0); };
    auto xh = [&](index_t c) { return (p.xd(r, c) - mean(0, r)) * rstd(0, r); };
    for (index_t c = 0; c < p.cols; ++c) {
      a += std::fabs(gh(c)) / n;
      b += std::fabs(gh(c) * xh(c)) / n;
    }
    // dx = r (gh - mean(gh) - xh mean(gh xh)), gh = fl(dy gamma) (u):
    //  - mean(gh): n u A, / n: u more, A = mean|gh|: (n + 1) u A;
    //  - mean(gh xh): each term within (rho + 4) u |gh xh| + n u m1 |gh|
    //    (gh, E_xh, the product), the sum (n - 1) u, / n u:
    //    (n + rho + 4) u B + n u m1 A, B = mean|gh xh|;
    //  - gh - mean(gh) - xh mean(gh xh): xh's error times |mean(gh xh)| <= B,
    //    and three roundings, at most 2u (|gh| + A + |xh| B) in all;
    //  - times rstd_c: rho + u of the result.
    // Coefficients of u r: |gh|: rho + 4; A: n + rho + 4; |xh| B: n + 3 rho + 9;
    // m1 B: n; |xh| m1 A: n. So k = n + 3 rho + 10 (one unit of slack) with
    // scale r (|gh| + A + |xh| B + m1 (B + |xh| A)).
    for (index_t c = 0; c < p.cols; ++c) {
      const double axh = std::fabs(xh(c));
      t.dx.set_bound(r, c, n + 3 * rho0 + 10, rstd(0, r) * (std::fabs(gh(c)) + a + axh * b + m1[r] * (b + axh * a)),
                     3 * rho1[r]);
    }
  }
  for (index_t c = 0; c < p.cols; ++c) {
    double dgamma_scale = 0, dbeta_scale = 0;
    for (index_t r = 0; r < p.rows; ++r) {
      const double dy = std::fabs(p.dyd(r, c)), xh = std::fabs((p.xd(r, c) - mean(0, r)) * rstd(0, r));
      dgamma_scale += dy * (xh + m1[r]);
      dbeta_scale += dy;
    }
    // dgamma = sum over rows of fl(dy xh_c): each term within
    // u |dy| ((rho + 3) |xh| + n m1) (E_xh and the product), then at most
    // rows - 1 additions: coefficients rows + rho + 2 on |dy xh|, n on |dy| m1.
    // k = max(rows + rho0 + 2, n) + 1 + rho1_max u, scale sum |dy| (|xh| + m1).
    t.grad[0].set_bound(0, c, std::max(rows + rho0 + 2, n) + 1, dgamma_scale, rho1_max);
    // dbeta = sum over rows of dy: k = rows (DyT's derivation).
    t.grad[1].set_bound(0, c, rows, dbeta_scale);
  }
  return t;
}

// ---------------------------------------------------------------------------
// RMSNorm

template <class T>
backward_truth rms_norm_truth(const problem<T>& p, const rms_variant& v) {
  backward_truth t;
  t.dx = expected_output(p.rows, p.cols);
  t.grad[0] = expected_output(1, p.cols);
  t.grads = v.gamma ? want_dgamma : 0u;
  const dyt::RMSNorm<double, dyt::reference> ref(v.gamma ? p.gammad.data() : nullptr, p.cols, kRmsNormEps, v.form);
  dyt::RMSNorm<double, dyt::reference>::gradients grads;
  grads.dgamma = v.gamma ? t.grad[0].ref.data() : nullptr;
  REQUIRE(ref.backward(p.xd.cview(), p.dyd.cview(), t.dx.ref.view(), grads).ok());
  dense y(p.rows, p.cols), rstd(1, p.rows);
  REQUIRE(ref.forward(p.xd.cview(), y.view(), {nullptr, rstd.data()}).ok());

  const double n = double(p.cols), rows = double(p.rows);
  auto w = [&](index_t c) {
    if (!v.gamma) return 1.0;
    return v.form == dyt::gamma_form::one_plus ? 1.0 + p.gammad(0, c) : p.gammad(0, c);
  };
  // rstd's relative error is within rho = (n/2 + 3.5) u (test_forward.cpp,
  // rms_norm_truth); xh = fl(x rstd_c) within (rho + 1) u |xh|.
  const double rho = n / 2 + 3.5;
  for (index_t r = 0; r < p.rows; ++r) {
    double b = 0;
    for (index_t c = 0; c < p.cols; ++c) b += std::fabs(p.dyd(r, c) * w(c) * p.xd(r, c) * rstd(0, r)) / n;
    // dx = r (gh - xh mean(gh xh)), gh = fl(dy w_c), w_c = fl(1 + gamma) in
    // Gemma's form: 2u |gh|.
    //  - mean(gh xh): each term within (rho + 4) u |gh xh|, the sum (n - 1) u,
    //    / n u: (n + rho + 4) u B, B = mean|gh xh|;
    //  - gh - xh mean(gh xh): xh's error times B, (rho + 1) u |xh| B, two
    //    roundings, 2u (|gh| + |xh| B);
    //  - times rstd_c: (rho + 1) u of the result.
    // Coefficients of u r: |gh|: rho + 5; |xh| B: n + 3 rho + 8. k = n + 3 rho + 9
    // (one unit of slack), scale r (|gh| + |xh| B).
    for (index_t c = 0; c < p.cols; ++c) {
      const double gh = std::fabs(p.dyd(r, c) * w(c)), xh = std::fabs(p.xd(r, c) * rstd(0, r));
      t.dx.set_bound(r, c, n + 3 * rho + 9, rstd(0, r) * (gh + xh * b));
    }
  }
  for (index_t c = 0; c < p.cols; ++c) {
    double scale = 0;
    for (index_t r = 0; r < p.rows; ++r) scale += std::fabs(p.dyd(r, c) * p.xd(r, c) * rstd(0, r));
    // dgamma = sum over rows of fl(dy xh) (the same in both forms): each term
    // within (rho + 2) u |dy xh|, then at most rows - 1 additions: k = rows + rho + 2.
    t.grad[0].set_bound(0, c, rows + rho + 2, scale);
  }
  return t;
}

}  // namespace dyt_test
