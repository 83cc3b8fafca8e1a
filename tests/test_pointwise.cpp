// Derf and DyISRU, the point-wise layers beside DyT (layers/pointwise.hpp):
// forward and backward against the float64 reference for every scalar type,
// CPU backend, test shape (support.hpp), dense and strided-misaligned views
// and in place; every gradient (dshift included) against central finite
// differences; the edges (NaN, +-Inf, huge |x|, alpha = 0, negative alpha, a
// NaN or infinite shift); refusals; the fused residual variants; and the
// chunk API against backward, bit for bit, for every split.
//
// Error model: support.hpp's, |got - ref| <= store_error + k (u + 2^-53) scale,
// here with k = 1 and `scale` the first-order error in units of u, summed
// term by term as derived above make_truth() below.
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using namespace dyt_test;
using dyt::grad_mode;

const layout kLayouts[] = {dense_aligned, strided_misaligned};
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
  static double value_error(bool double_compute) { return 2 * (double_compute ? 24.5 : 2.43); }
  // f' = fl(fl(exp(fl(-a*a))) * fl(2/sqrt(pi))), relative, in units of u: a*a's
  // rounding moves exp by a^2 of it; exp within 1.53 ulp (3.06 u); the
  // constant and the product one each.
  static double slope_error(double a) { return a * a + 2 * 1.53 + 2; }
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
  static double value_error(bool) { return 4; }
  // r = fl(1 / q): 3u; r^3 = fl(fl(r r) r): 9u + 2u. 11, and a unit of slack.
  static double slope_error(double) { return 12; }
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

// Gradient slots: dgamma, dbeta (1 x cols), dalpha, dshift (1 x 1).
const std::string kGradNames[] = {"dgamma", "dbeta", "dalpha", "dshift"};
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

template <class Spec, class T>
pw_truth make_truth(const pw_problem<T>& p, const variant& v, bool double_compute) {
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
  const double pv = Spec::value_error(double_compute);
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
      const double slope_err = Spec::d2_max * A + Spec::slope_error(a) * df;
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
  t.grad[2].set_bound(0, 0, 1, dalpha_err + (n + rows) * dalpha_sum);
  t.grad[3].set_bound(0, 0, 1, dshift_err + (n + rows) * dshift_sum);
  return t;
}

// The reference against the test's own plain float64 loops of the formulas
// (the reference runs the library's ops/ math, so a wrong formula there would
// be wrong in the truth too).
template <class Spec, class T>
void check_textbook_values(const pw_problem<T>& p, const variant& v, const pw_truth& truth) {
  const double shift = Spec::has_shift ? p.shiftd : 0.0;
  dense y(p.rows, p.cols), dx(p.rows, p.cols), grad[4] = {dense(1, p.cols), dense(1, p.cols), dense(1, 1), dense(1, 1)};
  for (index_t r = 0; r < p.rows; ++r) {
    double row_dalpha = 0, row_dshift = 0;
    for (index_t c = 0; c < p.cols; ++c) {
      const double gam = v.gamma ? p.gammad(0, c) : 1.0, bet = v.beta ? p.betad(0, c) : 0.0;
      const double a = p.alphad * p.xd(r, c) + shift, t = Spec::f(a), dy = p.dyd(r, c);
      const double g = dy * gam * Spec::df(a);
      const std::size_t i = std::size_t(r * p.cols + c);
      y.v[i] = gam * t + bet;
      dx.v[i] = p.alphad * g;
      row_dalpha += p.xd(r, c) * g;
      row_dshift += g;
      grad[0].v[std::size_t(c)] += dy * t;
      grad[1].v[std::size_t(c)] += dy;
    }
    grad[2].v[0] += row_dalpha;
    grad[3].v[0] += row_dshift;
  }
  const std::string what = std::string(Spec::name) + " ";
  check_textbook(what + "forward y", truth.y, y);
  check_textbook(what + "backward dx", truth.dx, dx);
  for (int i = 0; i < 4; ++i)
    if ((truth.grads >> i) & 1u) check_textbook(what + "backward " + kGradNames[i], truth.grad[i], grad[i]);
}

// ---------------------------------------------------------------------------
// Forward and backward on one backend.

struct outputs {
  guarded<double> y, dx, grad[4];  // in double, for comparisons between backends
};

template <class Spec, class T, class B>
void run_checked(const pw_problem<T>& p, const variant& v, layout lay, const pw_truth& truth, bool properties) {
  const auto layer = make_layer<Spec, T, B>(p, v);
  const std::string what = std::string(Spec::name);
  const auto x = p.x.cview();
  const auto dy = p.dy.cview();

  guarded<T> y(p.rows, p.cols, lay);
  REQUIRE(layer.forward(x, y.view()).ok());
  check_against<T, B>(what + " forward y", y, truth.y);
  guarded<T> in_place(p.rows, p.cols, lay);
  in_place.copy_from(p.x);
  REQUIRE(layer.forward(in_place.cview(), in_place.view()).ok());
  CHECK_MESSAGE(in_place.same_bits_as(y), label<T, B>(what) << ": forward in place differs; " << in_place.difference_from(y));

  guarded<T> dx(p.rows, p.cols, lay);
  pw_grads<T> g(p.cols, lay);
  const unsigned all = truth.grads;
  REQUIRE(layer.backward(x, dy, dx.view(), pointers<Spec, T, B>(g, all)).ok());
  check_against<T, B>(what + " backward dx", dx, truth.dx);
  for (int i = 0; i < 4; ++i)
    if ((all >> i) & 1u) check_against<T, B>(what + " backward " + kGradNames[i], g.slot[i], truth.grad[i]);
  CHECK_MESSAGE(p.x.values() == p.xd.v, label<T, B>(what) << ": x was modified");
  CHECK_MESSAGE(p.dy.values() == p.dyd.v, label<T, B>(what) << ": dy was modified");
  if (!properties) return;

  // Fewer gradients asked for: the same bits for those asked, the others untouched.
  const pw_grads<T> untouched(p.cols, lay);
  for (unsigned want = 0; want < all; ++want) {
    if (want & ~all) continue;
    CAPTURE(want);
    guarded<T> dx2(p.rows, p.cols, lay);
    pw_grads<T> g2(p.cols, lay);
    REQUIRE(layer.backward(x, dy, dx2.view(), pointers<Spec, T, B>(g2, want)).ok());
    CHECK(dx2.same_bits_as(dx));
    for (int i = 0; i < 4; ++i)
      CHECK_MESSAGE(g2.slot[i].same_bits_as((want >> i) & 1u ? g.slot[i] : untouched.slot[i]),
                    label<T, B>(what) << ": " << kGradNames[i] << " wrong for request " << want);
  }
  // In place: dx == dy and dx == x.
  for (int aliased = 0; aliased < 2; ++aliased) {
    guarded<T> shared(p.rows, p.cols, lay);
    shared.copy_from(aliased ? p.x : p.dy);
    pw_grads<T> g2(p.cols, lay);
    REQUIRE(layer.backward(aliased ? shared.cview() : x, aliased ? dy : shared.cview(), shared.view(),
                           pointers<Spec, T, B>(g2, all))
                .ok());
    CHECK_MESSAGE(shared.same_bits_as(dx), label<T, B>(what) << (aliased ? ": dx == x" : ": dx == dy") << " differs");
    for (int i = 0; i < 4; ++i) CHECK(g2.slot[i].same_bits_as(g.slot[i]));
  }
  // grad_mode::accumulate on top of the gradients themselves: the slot holds
  // once = the gradient rounded to T, and receives once + the unrounded
  // gradient, summed in the compute type and rounded to T. That is 2 * once
  // exactly where T is the compute type; otherwise it is off by at most
  // once's own rounding plus the final one: two half ulps of T at 2 * once.
  {
    pw_grads<T> acc = g;
    REQUIRE(layer.backward(x, dy, dx.view(), pointers<Spec, T, B>(acc, all), grad_mode::accumulate).ok());
    for (int i = 0; i < 4; ++i) {
      if (!((all >> i) & 1u)) continue;
      for (index_t c = 0; c < acc.slot[i].cols(); ++c) {
        const double once = g.slot[i].get(0, c), twice = acc.slot[i].get(0, c);
        CHECK_MESSAGE(std::fabs(twice - 2 * once) <= 2 * half_ulp<T>(std::fabs(2 * once)) + 1e-300,
                      label<T, B>(what) << ": " << kGradNames[i] << " accumulate: " << twice << " vs 2 * " << once);
      }
    }
  }
}

template <class Spec, class T>
void all_backends(const variant& v, const shape& s, layout lay) {
  const std::string test = std::string(Spec::name) + "/" + type_name<T>();
  const std::uint64_t seed =
      seed_for(test.c_str(), std::uint64_t(v.id), std::uint64_t(s.rows * 100000 + s.cols), std::uint64_t(lay.pad));
  INFO(std::string(Spec::name) << ", " << type_name<T>() << ", " << v.name << ", " << s.rows << " x " << s.cols << ", "
                  << describe(lay) << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
  rng g(seed);
  const pw_problem<T> p(s.rows, s.cols, lay, g);
  const bool properties = lay.pad != 0;
  {
    const pw_truth truth = make_truth<Spec>(p, v, std::is_same<T, double>::value);
    check_textbook_values<Spec>(p, v, truth);
    run_checked<Spec, T, dyt::cpu>(p, v, lay, truth, properties);
    run_checked<Spec, T, dyt::cpu_scalar>(p, v, lay, truth, properties);
  }
  // The reference computes in double for every T: its bound takes double's errors.
  const pw_truth truth = make_truth<Spec>(p, v, true);
  run_checked<Spec, T, dyt::reference>(p, v, lay, truth, properties);
}

TEST_CASE_TEMPLATE("Derf and DyISRU forward and backward are within the derived bound of float64 on every backend", T,
                   float, double, dyt::bfloat16, dyt::half) {
  for (const variant& v : kVariants)
    for (const shape& s : test_shapes())
      for (const layout& lay : kLayouts) {
        all_backends<derf_spec, T>(v, s, lay);
        all_backends<dyisru_spec, T>(v, s, lay);
      }
}

// ---------------------------------------------------------------------------
// Finite differences, in double on the reference backend (test_gradcheck.cpp's
// method): L = sum(w * y), dL/dy = w; each input and parameter v is moved by
// h = 1e-6 s (s = 1/|alpha| for x, whose effect bends on that scale; max(1,
// |v|) for the parameters) and (L(v + h) - L(v - h)) / (2h) is compared with
// the analytic gradient within 1e-6 (|analytic| + the array's largest
// |analytic|) + 1e-9: truncation is ~(h/s)^2 = 1e-12 relative and rounding
// ~u S / h ~ 1e-9 for S = sum |w y| ~ 30, while a wrong term errs by O(1).

template <class Spec>
void gradcheck(index_t rows, index_t cols, std::uint64_t seed) {
  INFO(std::string(Spec::name) << ", " << rows << " x " << cols << ", seed " << seed);
  rng g(seed);
  const std::size_t n = static_cast<std::size_t>(rows * cols), width = static_cast<std::size_t>(cols);
  std::vector<double> x(n), w(n), gamma(width), beta(width);
  for (double& e : x) e = g.uniform(-4, 4);
  for (double& e : w) e = g.dy();
  for (double& e : gamma) e = g.gamma();
  for (double& e : beta) e = g.beta();
  double alpha = g.uniform(0.2, 1.2), shift = g.uniform(-0.5, 0.5);
  auto layer = [&] { return make_layer<Spec, double, dyt::reference>(&alpha, &shift, gamma.data(), beta.data(), cols); };
  auto loss = [&] {
    std::vector<double> y(x.size());
    REQUIRE(layer().forward(dyt::make_view(static_cast<const double*>(x.data()), rows, cols), dyt::make_view(y.data(), rows, cols)).ok());
    double l = 0;
    for (std::size_t i = 0; i < y.size(); ++i) l += w[i] * y[i];
    return l;
  };
  std::vector<double> dx(x.size()), dgamma(gamma.size()), dbeta(beta.size());
  double dalpha = 0, dshift = 0;
  typename Spec::template layer<double, dyt::reference>::gradients grads;
  grads.dalpha = &dalpha;
  grads.dgamma = dgamma.data();
  grads.dbeta = dbeta.data();
  if constexpr (Spec::has_shift) grads.dshift = &dshift;
  REQUIRE(layer()
              .backward(dyt::make_view(static_cast<const double*>(x.data()), rows, cols),
                        dyt::make_view(static_cast<const double*>(w.data()), rows, cols), dyt::make_view(dx.data(), rows, cols),
                        grads)
              .ok());

  auto check_array = [&](const char* what, std::vector<double>& values, const std::vector<double>& analytic, bool is_x) {
    double scale = 0;
    for (double a : analytic) scale = std::max(scale, std::fabs(a));
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double v0 = values[i];
      const double s = is_x ? 1 / std::fabs(alpha) : std::max(1.0, std::fabs(v0));
      values[i] = v0 + 1e-6 * s;
      const double up = values[i];
      const double l_up = loss();
      values[i] = v0 - 1e-6 * s;
      const double down = values[i];
      const double l_down = loss();
      values[i] = v0;
      const double fd = (l_up - l_down) / (up - down);
      CHECK_MESSAGE(std::fabs(fd - analytic[i]) <= 1e-6 * (std::fabs(analytic[i]) + scale) + 1e-9,
                    what << "[" << i << "]: finite difference " << fd << ", analytic " << analytic[i]);
    }
  };
  check_array("dx", x, dx, true);
  check_array("dgamma", gamma, dgamma, false);
  check_array("dbeta", beta, dbeta, false);
  {
    const double a0 = alpha;
    const double h = 1e-6 * std::max(1.0, std::fabs(a0));
    alpha = a0 + h;
    const double up = alpha, l_up = loss();
    alpha = a0 - h;
    const double down = alpha, l_down = loss();
    alpha = a0;
    const double fd = (l_up - l_down) / (up - down);
    CHECK_MESSAGE(std::fabs(fd - dalpha) <= 1e-6 * 2 * std::fabs(dalpha) + 1e-9, "dalpha: fd " << fd << ", analytic " << dalpha);
  }
  if constexpr (Spec::has_shift) {
    const double s0 = shift;
    const double h = 1e-6 * std::max(1.0, std::fabs(s0));
    shift = s0 + h;
    const double up = shift, l_up = loss();
    shift = s0 - h;
    const double down = shift, l_down = loss();
    shift = s0;
    const double fd = (l_up - l_down) / (up - down);
    CHECK_MESSAGE(std::fabs(fd - dshift) <= 1e-6 * 2 * std::fabs(dshift) + 1e-9, "dshift: fd " << fd << ", analytic " << dshift);
  }
}

TEST_CASE("Derf and DyISRU: every analytic gradient (dshift included) matches central finite differences") {
  for (index_t cols : {1, 7, 33}) {
    gradcheck<derf_spec>(5, cols, seed_for("gradcheck/Derf", std::uint64_t(cols)));
    gradcheck<dyisru_spec>(5, cols, seed_for("gradcheck/DyISRU", std::uint64_t(cols)));
  }
}

// ---------------------------------------------------------------------------
// Edges, on every backend and type.

template <class T_, class B_>
struct cfg {
  using T = T_;
  using B = B_;
};
#define PW_CFGS                                                                                                    \
  cfg<float, dyt::cpu>, cfg<float, dyt::cpu_scalar>, cfg<float, dyt::reference>, cfg<double, dyt::cpu>,           \
      cfg<double, dyt::cpu_scalar>, cfg<double, dyt::reference>, cfg<dyt::bfloat16, dyt::cpu>,                    \
      cfg<dyt::bfloat16, dyt::cpu_scalar>, cfg<dyt::bfloat16, dyt::reference>, cfg<dyt::half, dyt::cpu>,          \
      cfg<dyt::half, dyt::cpu_scalar>, cfg<dyt::half, dyt::reference>

// 37 columns: a vector body at every width and a scalar tail; special values go in both.
constexpr index_t kRows = 3, kCols = 37, kBody = 5, kTail = 35;

// A small scene: x, dy, parameters and outputs for one layer.
template <class T>
struct scene {
  guarded<T> x{kRows, kCols}, dy{kRows, kCols}, y{kRows, kCols}, dx{kRows, kCols};
  guarded<T> gamma{1, kCols}, beta{1, kCols}, dgamma{1, kCols}, dbeta{1, kCols};
  T alpha = from_double<T>(0.75), shift = from_double<T>(0.25), dalpha = from_double<T>(0), dshift = from_double<T>(0);
  explicit scene(std::uint64_t seed) {
    rng g(seed);
    for (index_t r = 0; r < kRows; ++r)
      for (index_t c = 0; c < kCols; ++c) {
        x.set(r, c, g.uniform(-3, 3));
        dy.set(r, c, g.dy());
      }
    for (index_t c = 0; c < kCols; ++c) {
      gamma.set(0, c, g.gamma());
      beta.set(0, c, g.beta());
    }
  }
  template <class Spec, class B>
  auto layer() const {
    return make_layer<Spec, T, B>(&alpha, &shift, gamma.data(), beta.data(), kCols);
  }
  template <class Spec, class B>
  auto grads() {
    typename Spec::template layer<T, B>::gradients g;
    g.dalpha = &dalpha;
    g.dgamma = dgamma.data();
    g.dbeta = dbeta.data();
    if constexpr (Spec::has_shift) g.dshift = &dshift;
    return g;
  }
  template <class Spec, class B>
  void run() {
    const auto l = layer<Spec, B>();
    REQUIRE(l.forward(x.cview(), y.view()).ok());
    REQUIRE(l.backward(x.cview(), dy.cview(), dx.view(), grads<Spec, B>()).ok());
  }
};

template <class T>
bool nan_at(const guarded<T>& g, index_t r, index_t c) {
  return std::isnan(g.get(r, c));
}

template <class Spec, class T, class B>
void check_nan_and_inf() {
  INFO(std::string(Spec::name) << ", " << type_name<T>() << ", " << backend_name<B>());
  scene<T> s(seed_for("edges/nan-inf"));
  s.x.set(0, kBody, kNaN);
  s.x.set(1, kBody, kInf);
  s.x.set(1, kTail, -kInf);
  // Huge but finite: the largest value of T (isru's u^2 overflows in every type).
  const double huge = std::is_same<T, dyt::half>::value ? 65504.0 : std::is_same<T, dyt::bfloat16>::value ? 0x1.fep127
                      : std::is_same<T, float>::value ? double(std::numeric_limits<float>::max())
                                                       : std::numeric_limits<double>::max();
  s.x.set(2, kBody, huge);
  s.x.set(2, kTail, -huge);
  s.template run<Spec, B>();
  // A NaN spoils its own element of y and dx, its column of dgamma, and dalpha
  // (and dshift); every other element stays finite.
  CHECK(nan_at(s.y, 0, kBody));
  CHECK(nan_at(s.dx, 0, kBody));
  CHECK(std::isnan(s.dgamma.get(0, kBody)));
  CHECK(std::isnan(to_double(s.dalpha)));
  if (Spec::has_shift) CHECK(std::isnan(to_double(s.dshift)));
  CHECK(std::isfinite(s.dbeta.get(0, kBody)));
  // +-Inf and +-huge saturate: f = +-1 exactly, so y = fl(+-gamma + beta); f' = 0, so dx = 0.
  const index_t at[4][2] = {{1, kBody}, {1, kTail}, {2, kBody}, {2, kTail}};
  for (const auto& rc : at) {
    const index_t r = rc[0], c = rc[1];
    const double sign = s.x.get(r, c) > 0 ? 1 : -1;
    const T expect = from_double<T>(double(dyt::compute_t<T>(sign * s.gamma.get(0, c) + s.beta.get(0, c))));
    CHECK_MESSAGE(same_bits(s.y.at(r, c), expect), "y(" << r << ", " << c << ") = " << s.y.get(r, c) << ", expected "
                                                        << to_double(expect));
    CHECK_MESSAGE(s.dx.get(r, c) == 0, "dx(" << r << ", " << c << ") = " << s.dx.get(r, c));
  }
  for (index_t r = 0; r < kRows; ++r)
    for (index_t c = 0; c < kCols; ++c)
      if (!(r == 0 && c == kBody)) {
        CHECK(std::isfinite(s.y.get(r, c)));
        CHECK(std::isfinite(s.dx.get(r, c)));
      }
  // dgamma's columns with an infinity are finite (dy * +-1); the shift's gradient without the
  // NaN row: g = 0 at the infinities, so finite. dalpha takes x * g = Inf * 0 = NaN there, as DyT's does.
  CHECK(std::isfinite(s.dgamma.get(0, kTail)));
}

TEST_CASE_TEMPLATE("edges: NaN in x spoils its element; +-Inf and the largest finite x saturate to +-gamma + beta "
                   "with dx = 0",
                   Cfg, PW_CFGS) {
  check_nan_and_inf<derf_spec, typename Cfg::T, typename Cfg::B>();
  check_nan_and_inf<dyisru_spec, typename Cfg::T, typename Cfg::B>();
}

template <class Spec, class T, class B>
void check_alpha_zero_and_negative() {
  INFO(std::string(Spec::name) << ", " << type_name<T>() << ", " << backend_name<B>());
  // alpha = 0: u = shift (Derf) or 0 (DyISRU). DyISRU: y = beta exactly, dx = 0, dgamma = 0.
  {
    scene<T> s(seed_for("edges/alpha0"));
    s.alpha = from_double<T>(0);
    s.template run<Spec, B>();
    for (index_t r = 0; r < kRows; ++r)
      for (index_t c = 0; c < kCols; ++c) {
        CHECK(s.dx.get(r, c) == 0);
        if (!Spec::has_shift) CHECK(same_bits(s.y.at(r, c), s.beta.at(0, c)));
      }
    if (!Spec::has_shift)
      for (index_t c = 0; c < kCols; ++c) CHECK(s.dgamma.get(0, c) == 0);
    CHECK(std::isfinite(to_double(s.dalpha)));
  }
  // Negative alpha: both functions are odd, so without a shift y(-a, x) = gamma f(-a x) + beta
  // is y(a, -x) bit for bit (the argument is the same product, negated exactly).
  if (!Spec::has_shift) {
    scene<T> s(seed_for("edges/negative alpha")), t(seed_for("edges/negative alpha"));
    s.alpha = from_double<T>(-0.75);
    for (index_t r = 0; r < kRows; ++r)
      for (index_t c = 0; c < kCols; ++c) t.x.set(r, c, -s.x.get(r, c));
    s.template run<Spec, B>();
    t.template run<Spec, B>();
    CHECK(s.y.same_bits_as(t.y));
  } else {
    scene<T> s(seed_for("edges/negative alpha"));
    s.alpha = from_double<T>(-0.75);
    s.template run<Spec, B>();
    for (index_t r = 0; r < kRows; ++r)
      for (index_t c = 0; c < kCols; ++c) CHECK(std::isfinite(s.y.get(r, c)));
  }
}

TEST_CASE_TEMPLATE("edges: alpha = 0 and negative alpha", Cfg, PW_CFGS) {
  check_alpha_zero_and_negative<derf_spec, typename Cfg::T, typename Cfg::B>();
  check_alpha_zero_and_negative<dyisru_spec, typename Cfg::T, typename Cfg::B>();
}

TEST_CASE_TEMPLATE("edges: Derf's shift NaN makes every output NaN; shift +-Inf gives y = +-gamma + beta and dx = 0",
                   Cfg, PW_CFGS) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  INFO(type_name<T>() << ", " << backend_name<B>());
  {
    scene<T> s(seed_for("edges/shift nan"));
    s.shift = from_double<T>(kNaN);
    s.template run<derf_spec, B>();
    for (index_t r = 0; r < kRows; ++r)
      for (index_t c = 0; c < kCols; ++c) {
        CHECK(nan_at(s.y, r, c));
        CHECK(nan_at(s.dx, r, c));
      }
    CHECK(std::isnan(to_double(s.dshift)));
  }
  for (double inf : {kInf, -kInf}) {
    scene<T> s(seed_for("edges/shift inf"));
    s.shift = from_double<T>(inf);
    s.template run<derf_spec, B>();
    for (index_t r = 0; r < kRows; ++r)
      for (index_t c = 0; c < kCols; ++c) {
        const T expect = from_double<T>(double(dyt::compute_t<T>((inf > 0 ? 1 : -1) * s.gamma.get(0, c) + s.beta.get(0, c))));
        CHECK(same_bits(s.y.at(r, c), expect));
        CHECK(s.dx.get(r, c) == 0);
      }
    CHECK(to_double(s.dshift) == 0);
    CHECK(to_double(s.dalpha) == 0);
  }
}

// ---------------------------------------------------------------------------
// Refusals: the messages name the layer and the argument; nothing is written.

template <class B>
void check_refusals() {
  INFO(backend_name<B>());
  scene<float> s(seed_for("refusals"));
  const guarded<float> y0 = s.y, dx0 = s.dx, dg0 = s.dgamma;
  auto untouched = [&] { return s.y.same_bits_as(y0) && s.dx.same_bits_as(dx0) && s.dgamma.same_bits_as(dg0); };
  auto refused = [&](const dyt::status& st, const std::string& message) {
    CHECK_FALSE(st.ok());
    CHECK(st.code() == dyt::errc::null_pointer);
    CHECK_MESSAGE(std::string(st.message()) == message, st.message());
    CHECK(untouched());
  };
  const dyt::Derf<float, B> no_alpha(nullptr, &s.shift, s.gamma.data(), s.beta.data(), kCols);
  const dyt::Derf<float, B> no_shift(&s.alpha, nullptr, s.gamma.data(), s.beta.data(), kCols);
  const dyt::DyISRU<float, B> isru_no_alpha(nullptr, s.gamma.data(), s.beta.data(), kCols);
  typename dyt::Derf<float, B>::gradients dg;
  dg.dalpha = &s.dalpha;
  dg.dshift = &s.dshift;
  dg.dgamma = s.dgamma.data();
  typename dyt::DyISRU<float, B>::gradients ig;
  ig.dgamma = s.dgamma.data();
  refused(no_alpha.forward(s.x.cview(), s.y.view()), "dyt::Derf::forward: alpha is null");
  refused(no_shift.forward(s.x.cview(), s.y.view()), "dyt::Derf::forward: shift is null");
  refused(no_shift.backward(s.x.cview(), s.dy.cview(), s.dx.view(), dg), "dyt::Derf::backward: shift is null");
  refused(no_alpha.backward_residual(s.x.cview(), s.dy.cview(), s.dy.cview(), s.dx.view(), dg),
          "dyt::Derf::backward_residual: alpha is null");
  refused(isru_no_alpha.forward(s.x.cview(), s.y.view()), "dyt::DyISRU::forward: alpha is null");
  refused(isru_no_alpha.backward(s.x.cview(), s.dy.cview(), s.dx.view(), ig), "dyt::DyISRU::backward: alpha is null");
  const dyt::backward_plan plan = dyt::make_backward_plan(kRows);
  std::vector<float> ws(no_shift.workspace_bytes(plan) / sizeof(float));
  refused(no_shift.backward_chunks(plan, 0, plan.chunks, s.x.cview(), s.dy.cview(), s.dx.view(), ws.data(),
                                   ws.size() * sizeof(float)),
          "dyt::Derf::backward_chunks: shift is null");
  refused(no_shift.reduce_gradients(plan, ws.data(), ws.size() * sizeof(float), dg),
          "dyt::Derf::reduce_gradients: shift is null");
  // dshift may not overlap the shift it is the gradient of.
  const dyt::Derf<float, B> ok(&s.alpha, &s.shift, s.gamma.data(), s.beta.data(), kCols);
  typename dyt::Derf<float, B>::gradients overlapping = dg;
  overlapping.dshift = &s.shift;
  const dyt::status st = ok.backward(s.x.cview(), s.dy.cview(), s.dx.view(), overlapping);
  CHECK_FALSE(st.ok());
  CHECK_MESSAGE(std::string(st.message()).find("dshift") != std::string::npos, st.message());
  CHECK(untouched());
}

TEST_CASE("refusals: a null alpha or shift is refused with the layer's name, and nothing is written") {
  check_refusals<dyt::cpu>();
  check_refusals<dyt::cpu_scalar>();
  check_refusals<dyt::reference>();
}

// ---------------------------------------------------------------------------
// The fused residual variants: bit for bit the unfused add then the layer.

template <class Spec, class T, class B>
void check_residual() {
  INFO(std::string(Spec::name) << ", " << type_name<T>() << ", " << backend_name<B>());
  scene<T> s(seed_for("residual"));
  guarded<T> residual(kRows, kCols), dh(kRows, kCols);
  rng g(seed_for("residual/values"));
  for (index_t r = 0; r < kRows; ++r)
    for (index_t c = 0; c < kCols; ++c) {
      residual.set(r, c, g.uniform(-2, 2));
      dh.set(r, c, g.dy());
    }
  const auto l = s.template layer<Spec, B>();
  // Unfused: h = x + residual rounded to T, then the layer on h.
  guarded<T> h(kRows, kCols), y_unfused(kRows, kCols);
  for (index_t r = 0; r < kRows; ++r)
    for (index_t c = 0; c < kCols; ++c)
      h.at(r, c) = from_double<T>(double(dyt::compute_t<T>(s.x.get(r, c)) + dyt::compute_t<T>(residual.get(r, c))));
  REQUIRE(l.forward(h.cview(), y_unfused.view()).ok());
  guarded<T> res = residual;
  REQUIRE(l.forward_residual(s.x.cview(), res.view(), s.y.view()).ok());
  CHECK(res.same_bits_as(h));
  CHECK(s.y.same_bits_as(y_unfused));

  // Backward: dx = dh + the layer's dx, rounded once, and the same gradients.
  guarded<T> dx_layer(kRows, kCols);
  pw_grads<T> g1(kCols, dense_aligned), g2(kCols, dense_aligned);
  REQUIRE(l.backward(h.cview(), s.dy.cview(), dx_layer.view(), pointers<Spec, T, B>(g1, 15u)).ok());
  REQUIRE(l.backward_residual(h.cview(), s.dy.cview(), dh.cview(), s.dx.view(), pointers<Spec, T, B>(g2, 15u)).ok());
  for (int i = 0; i < 4; ++i) CHECK(g2.slot[i].same_bits_as(g1.slot[i]));
  // dh + dx in the compute type, rounded once: within half an ulp of T of the exact sum of
  // dh and the unrounded dx, which dx_layer is within half an ulp of (16-bit T) or equal to.
  for (index_t r = 0; r < kRows; ++r)
    for (index_t c = 0; c < kCols; ++c) {
      const double want = dh.get(r, c) + dx_layer.get(r, c), got = s.dx.get(r, c);
      CHECK_MESSAGE(std::fabs(got - want) <= half_ulp<T>(std::fabs(want)) * 2 + half_ulp<T>(std::fabs(dx_layer.get(r, c))) +
                                                  1e-300,
                    "(" << r << ", " << c << "): " << got << " vs " << want);
    }
}

TEST_CASE_TEMPLATE("residual: forward_residual and backward_residual equal the unfused add and layer", Cfg, PW_CFGS) {
  check_residual<derf_spec, typename Cfg::T, typename Cfg::B>();
  check_residual<dyisru_spec, typename Cfg::T, typename Cfg::B>();
}

// ---------------------------------------------------------------------------
// The chunk API, split every way and driven from two threads, against backward, bit for bit.

template <class Spec, class T, class B>
void check_chunks() {
  INFO(std::string(Spec::name) << ", " << type_name<T>() << ", " << backend_name<B>());
  const index_t rows = 300, cols = 33;  // default_chunks(300) = 9 chunks
  rng g(seed_for("chunks", std::uint64_t(Spec::has_shift)));
  const pw_problem<T> p(rows, cols, dense_aligned, g);
  const variant v = kVariants[0];
  const auto layer = make_layer<Spec, T, B>(p, v);
  guarded<T> dx(rows, cols);
  pw_grads<T> want(cols, dense_aligned);
  REQUIRE(layer.backward(p.x.cview(), p.dy.cview(), dx.view(), pointers<Spec, T, B>(want, 15u)).ok());

  const dyt::backward_plan plan = dyt::make_backward_plan(rows);
  REQUIRE(plan.chunks > 2);
  const std::size_t bytes = layer.workspace_bytes(plan);
  using C = typename std::decay_t<decltype(layer)>::compute_type;
  std::vector<C> ws(bytes / sizeof(C));
  for (index_t split = 0; split <= plan.chunks; ++split) {
    CAPTURE(split);
    guarded<T> dx2(rows, cols);
    pw_grads<T> got(cols, dense_aligned);
    // Chunks [0, split) on another thread, [split, chunks) on this one.
    dyt::status first_half;
    std::thread other([&] {
      first_half = layer.backward_chunks(plan, 0, split, p.x.cview(), p.dy.cview(), dx2.view(), ws.data(), bytes);
    });
    const dyt::status second_half =
        layer.backward_chunks(plan, split, plan.chunks, p.x.cview(), p.dy.cview(), dx2.view(), ws.data(), bytes);
    other.join();
    REQUIRE(first_half.ok());
    REQUIRE(second_half.ok());
    REQUIRE(layer.reduce_gradients(plan, ws.data(), bytes, pointers<Spec, T, B>(got, 15u)).ok());
    CHECK(dx2.same_bits_as(dx));
    for (int i = 0; i < 4; ++i)
      CHECK_MESSAGE(got.slot[i].same_bits_as(want.slot[i]), kGradNames[i] << ": " << got.slot[i].difference_from(want.slot[i]));
  }
}

TEST_CASE_TEMPLATE("chunks: every split of the chunk API gives backward's bits, dshift included", Cfg, PW_CFGS) {
  check_chunks<derf_spec, typename Cfg::T, typename Cfg::B>();
  check_chunks<dyisru_spec, typename Cfg::T, typename Cfg::B>();
}

// ---------------------------------------------------------------------------
// The squashes at the extremes of each type, directly (ops/squash.hpp).

TEST_CASE_TEMPLATE("isru: +-1 and slope 0 beyond the clamp, at Inf and at the largest value; NaN stays NaN", S, float,
                   double) {
  struct scalar_at {
    static S splat(S c) { return c; }
  };
  const S big = std::numeric_limits<S>::max(), inf = std::numeric_limits<S>::infinity();
  for (S u : {big, inf, dyt::ops::isru_far<S>::value, S(sizeof(S) == 4 ? 1e30 : 1e200)}) {
    CAPTURE(u);
    const auto f = dyt::ops::isru_squash::value_and_slope(scalar_at{}, u);
    CHECK(f.value == S(1));
    CHECK(f.slope == S(0));
    const auto g = dyt::ops::isru_squash::value_and_slope(scalar_at{}, S(-u));
    CHECK(g.value == S(-1));
    CHECK(g.slope == S(0));
    CHECK(dyt::ops::isru_squash::value(u) == S(1));
  }
  // Everywhere |f| <= 1, and f = u exactly where u^2 vanishes beside 1.
  for (S u = S(1e-3); u < S(1e30); u *= S(1.37)) CHECK(dyt::ops::isru_squash::value(u) <= S(1));
  CHECK(dyt::ops::isru_squash::value(S(1e-30)) == S(1e-30));
  const auto n = dyt::ops::isru_squash::value_and_slope(scalar_at{}, std::numeric_limits<S>::quiet_NaN());
  CHECK(std::isnan(n.value));
  CHECK(std::isnan(n.slope));
  const auto e = dyt::ops::erf_squash::value_and_slope(scalar_at{}, inf);
  CHECK(e.value == S(1));
  CHECK(e.slope == S(0));
}

}  // namespace
