// tests/pointwise_truth.hpp: Derf and DyISRU as the tests see them, and their
// float64 truth with derived bounds: shared by tests/test_pointwise.cpp (the
// CPU backends) and tests/cuda/test_cuda.cu (the device).
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include <dyt/dyt.hpp>

#include "support.hpp"

namespace dyt_test {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
const double kTwoOverSqrtPi = 1.1283791670955126;

// ---------------------------------------------------------------------------
// The two layers, as the tests see them.
//
// Measured errors of the functions the layers call (docs/pointwise.md; xsimd
// 8.1 and 14.1 give the same numbers), in ulp of the result:
//   erf: xsimd float 2.43 (every positive float below 4; erf is odd), glibc
//        erff 0.97; xsimd double 24.5 (2^25 samples in [0, 6]), glibc erf < 1;
//   exp: xsimd float 1.53 (every float in [-87.3, 0)), glibc expf 0.51;
//        xsimd double 0.91 (2^25 samples in [-700, 0]), glibc exp < 1.
// On the device (device = true): CUDA's erff and expf, 2 ulp each at most (CUDA
// C Programming Guide, the single-precision maximum ulp error table).
// An ulp of a normal result t is at most 2 u |t|.

struct derf_spec {
  static constexpr bool has_shift = true;
  static constexpr const char* name = "Derf";
  template <class T, class B>
  using layer = dyt::Derf<T, B>;
  static double f(double a) { return std::erf(a); }
  static double df(double a) { return kTwoOverSqrtPi * std::exp(-a * a); }
  // max |f''| = (4 / sqrt(pi)) |a| exp(-a^2), largest at a^2 = 1/2: 2 sqrt(2 / (pi e)) = 0.9679.
  static constexpr double d2_max = 0.968;
  // f's own error in units of u |t|: 2 * ulps, the double path's xsimd erf the worst.
  // Fast (the device's 16-bit rows, ops::erf_tanh_squash): tanh.approx.f32's
  // 2^-10.987 relative (PTX ISA; 2 * 4133 u, as DyT's bound on the device) on
  // top of the fit's 64.1 u (tools/fit_erf.py, float evaluation included),
  // with 16 u of slack for the floats between the tool's grid points.
  static double value_error(bool double_compute, bool device = false, bool fast = false) {
    if (fast) return 2 * 4133.0 + 64.1 + 16;
    return 2 * (device ? 2.0 : double_compute ? 24.5 : 2.43);
  }
  // f' = fl(fl(exp(fl(-a*a))) * fl(2/sqrt(pi))), relative, in units of u: a*a's
  // rounding moves exp by a^2 of it; exp within 1.53 ulp (3.06 u); the
  // constant and the product one each.
  // Fast (the device's 16-bit rows): __expf's 2 + 1.173 a^2 ulp in place of expf's 2.
  static double slope_error(double a, bool device = false, bool fast = false) {
    return a * a + 2 * (fast ? 2 + 1.173 * a * a : device ? 2.0 : 1.53) + 2;
  }
};

struct dyisru_spec {
  static constexpr bool has_shift = false;
  static constexpr const char* name = "DyISRU";
  template <class T, class B>
  using layer = dyt::DyISRU<T, B>;
  static double f(double a) { return a / std::sqrt(1 + a * a); }
  static double df(double a) { return std::pow(1 + a * a, -1.5); }
  // max |f''| = 3 |a| (1 + a^2)^(-5/2), largest at a = 1/2: 0.8587.
  static constexpr double d2_max = 0.859;
  // t = clamp(a / q), q = sqrt(fl(fl(a*a) + 1)): s within 2u relative (a
  // fused multiply-add only lowers it), its root u of that plus u, the
  // quotient u: 3u |t|, and a unit of slack.
  // Fast (the device's 16-bit rows, ops::isru_rsqrt_squash): t = clamp(a r),
  // r = rsqrtf(s): s's 2u moves r by u, rsqrtf's 2 ulp add 4u, the product u:
  // 6u, and a unit of slack.
  static double value_error(bool, bool = false, bool fast = false) { return fast ? 7 : 4; }
  // r = fl(1 / q): 3u; r^3 = fl(fl(r r) r): 9u + 2u. 11, and a unit of slack.
  // Fast: r within 5u (above), r^3 15u + 2u, and a unit of slack.
  static double slope_error(double, bool = false, bool fast = false) { return fast ? 18 : 12; }
};

// One problem: support.hpp's DyT data (alpha in [0.2, 1.2], x in [-4, 4]),
// and a shift in [-0.5, 0.5] (rounded to T) for Derf.
template <class T>
struct pw_problem : problem<T> {
  guarded<T> shift;
  double shiftd;
  pw_problem(index_t rows, index_t cols, layout lay, rng& g)
      : problem<T>(layer_kind::dyt, rows, cols, lay, g), shift(1, 1, lay) {
    shift.set(0, 0, g.uniform(-0.5, 0.5));
    shiftd = shift.get(0, 0);
  }
};

struct variant {
  int id;
  const char* name;
  bool gamma, beta;
};
const variant kVariants[] = {{0, "gamma and beta", true, true}, {1, "gamma only", true, false}, {2, "neither", false, false}};

template <class Spec, class T, class B>
typename Spec::template layer<T, B> make_layer(const T* alpha, const T* shift, const T* gamma, const T* beta,
                                                  index_t cols) {
  if constexpr (Spec::has_shift)
    return {alpha, shift, gamma, beta, cols};
  else
    return {alpha, gamma, beta, cols};
}

template <class Spec, class T, class B>
typename Spec::template layer<T, B> make_layer(const pw_problem<T>& p, const variant& v) {
  return make_layer<Spec, T, B>(p.alpha.data(), p.shift.data(), v.gamma ? p.gamma.data() : nullptr,
                                v.beta ? p.beta.data() : nullptr, p.cols);
}

// Gradient slots: kGradNames' (support.hpp).
template <class T>
struct pw_grads {
  guarded<T> slot[4];
  pw_grads(index_t cols, layout lay)
      : slot{guarded<T>(1, cols, lay), guarded<T>(1, cols, lay), guarded<T>(1, 1, lay), guarded<T>(1, 1, lay)} {}
};

template <class Spec, class T, class B>
typename Spec::template layer<T, B>::gradients pointers(pw_grads<T>& g, unsigned want) {
  typename Spec::template layer<T, B>::gradients out;
  out.dgamma = (want & 1u) ? g.slot[0].data() : nullptr;
  out.dbeta = (want & 2u) ? g.slot[1].data() : nullptr;
  out.dalpha = (want & 4u) ? g.slot[2].data() : nullptr;
  if constexpr (Spec::has_shift) out.dshift = (want & 8u) ? g.slot[3].data() : nullptr;
  return out;
}

// ---------------------------------------------------------------------------
// The truth and its bounds.
//
// With a = the exact argument alpha x (+ s) and u the compute type's unit roundoff:
//  - the computed argument: fl(alpha x) errs by u |alpha x|; with the shift,
//    fl(fl(alpha x) + s) by u |alpha x| + u |alpha x + s| more (one rounding
//    less where the compiler fuses them). A = that sum, in units of u.
//  - t = f(computed a): f' is largest at 0 and falls with |a| for both
//    functions, so the argument moves t by at most f'(|a| - A u) A u; f's own
//    error adds value_error |t| u.
//  - f'(computed a): moved by at most max |f''| A u; its own error
//    slope_error f'(a) u.
//  - y = fl(fl(gamma t) + beta): u |gamma t| + u (|gamma t| + |beta|).
//  - g = fl(fl(dy gamma) f'): 2u |dy gamma f'|; dx = fl(g alpha): u more.
//  - dalpha = sum of fl(x g) over all elements: each term's error, plus the
//    summation's: every term passes through at most n - 1 additions in its
//    row, one into its chunk's partial per row and chunks - 1 in the final
//    sum, so at most n + rows - 1, times sum |x g|. dshift the same for g.
//  - dgamma[c] = sum over rows of fl(dy t): |dy| (t's error + u |t|) per row,
//    and rows - 1 additions; dbeta = sum over rows of dy: rows - 1 additions.
// Each bound adds one unit of u on its scale as slack for second-order terms.

struct pw_truth {
  expected_output y, dx, grad[4];
  unsigned grads = 0;
};

// device: CUDA's erff/expf, and dalpha/dshift summed in any order (a GPU
// thread adds across its rows before the tree sums), so a term passes through
// at most rows * cols additions instead of n + rows - 1. On the device 16-bit
// rows run the fast forms of the squash where one exists (cuda/layers.cuh,
// device_squash): Spec's bounds for them.
template <class Spec, class T>
pw_truth make_truth(const pw_problem<T>& p, const variant& v, bool double_compute, bool device = false) {
  pw_truth t;
  t.y = expected_output(p.rows, p.cols);
  t.dx = expected_output(p.rows, p.cols);
  t.grad[0] = expected_output(1, p.cols);
  t.grad[1] = expected_output(1, p.cols);
  t.grad[2] = expected_output(1, 1);
  t.grad[3] = expected_output(1, 1);
  t.grads = (v.gamma ? 1u : 0u) | (v.beta ? 2u : 0u) | 4u | (Spec::has_shift ? 8u : 0u);
  const double* gamma = v.gamma ? p.gammad.data() : nullptr;
  const double* beta = v.beta ? p.betad.data() : nullptr;
  const auto ref = make_layer<Spec, double, dyt::reference>(&p.alphad, &p.shiftd, gamma, beta, p.cols);
  REQUIRE(ref.forward(p.xd.cview(), t.y.ref.view()).ok());
  pw_grads<double> g(p.cols, dense_aligned);
  const dyt::status st =
      ref.backward(p.xd.cview(), p.dyd.cview(), t.dx.ref.view(), pointers<Spec, double, dyt::reference>(g, t.grads));
  REQUIRE_MESSAGE(st.ok(), st.message());
  for (int i = 0; i < 4; ++i)
    for (index_t c = 0; c < t.grad[i].ref.cols; ++c) t.grad[i].ref.v[std::size_t(c)] = g.slot[i].get(0, c);

  const double shift = Spec::has_shift ? p.shiftd : 0.0;
  const bool fast = device && dyt::is_16bit_v<T>;
  const double pv = Spec::value_error(double_compute, device, fast);
  const double n = double(p.cols), rows = double(p.rows);
  double dalpha_err = 0, dalpha_sum = 0, dshift_err = 0, dshift_sum = 0;
  for (index_t c = 0; c < p.cols; ++c) {
    const double gam = v.gamma ? std::fabs(p.gammad(0, c)) : 1.0;
    const double bet = v.beta ? std::fabs(p.betad(0, c)) : 0.0;
    double dgamma_err = 0, dgamma_sum = 0, dbeta_sum = 0;
    for (index_t r = 0; r < p.rows; ++r) {
      const double x = p.xd(r, c), dy = std::fabs(p.dyd(r, c));
      const double ax = p.alphad * x, a = ax + shift;
      const double A = std::fabs(ax) + (Spec::has_shift ? std::fabs(a) : 0.0);
      const double f = std::fabs(Spec::f(a)), df = Spec::df(a);
      const double df_near = Spec::df(std::max(0.0, std::fabs(a) - A * 0x1p-20));
      const double t_err = df_near * A + pv * f;
      const double slope_err = Spec::d2_max * A + Spec::slope_error(a, device, fast) * df;
      t.y.set_bound(r, c, 1, gam * t_err + 3 * (gam * f + bet));
      const double g_err = dy * gam * (slope_err + 2 * df);  // g's error, in units of u
      const double g_abs = dy * gam * df;
      t.dx.set_bound(r, c, 1, std::fabs(p.alphad) * (g_err + 2 * g_abs));
      dalpha_err += std::fabs(x) * (g_err + g_abs);
      dalpha_sum += std::fabs(x) * g_abs;
      dshift_err += g_err;
      dshift_sum += g_abs;
      dgamma_err += dy * (t_err + f);
      dgamma_sum += dy * f;
      dbeta_sum += dy;
    }
    t.grad[0].set_bound(0, c, 1, dgamma_err + rows * dgamma_sum);
    t.grad[1].set_bound(0, c, 1, rows * dbeta_sum);
  }
  const double additions = device ? n * rows : n + rows;
  t.grad[2].set_bound(0, 0, 1, dalpha_err + additions * dalpha_sum);
  t.grad[3].set_bound(0, 0, 1, dshift_err + additions * dshift_sum);
  return t;
}


}  // namespace dyt_test
