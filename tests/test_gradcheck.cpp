// Every analytic gradient of every layer against central finite differences,
// in double on the float64 reference backend.
//
// The loss is L = sum(w * y) with a fixed random weight w, so dL/dy = w and one
// backward(x, dy = w) gives dL/dx and every parameter gradient at once. Each
// input and each parameter element v is then perturbed by a step h and dL/dv is
// estimated as (L(v + h) - L(v - h)) / ((v + h) - (v - h)) (the denominator is
// the step actually taken after rounding v +- h).
//
// The step is 1e-6 times the scale s on which the output varies with v:
//   x of a DyT row:        s = 1 / alpha               (tanh(alpha x) bends on that scale)
//   x of a LayerNorm row:  s = sqrt(var + eps)         (the row's own spread, not |x|:
//                                                       LayerNorm ignores the row's offset)
//   x of an RMSNorm row:   s = sqrt(mean(x^2) + eps)
//   alpha, gamma, beta:    s = max(1, |v|)             (y is linear in gamma and beta)
//
// Tolerance. The central difference errs by
//   truncation  h^2 / 6 * |d3L/dv3| ~ (h / s)^2 * |dL/dv| = 1e-12 relative;
//   rounding    u * kappa * S / h    with u = 1.1e-16, S = sum |w * y| <= ~30 here and
//                                    kappa the condition of the row's statistics (~1 for
//                                    ordinary rows, |x| / sigma ~ 30 for the small-variance
//                                    LayerNorm row below), against |dL/dx| ~ |w gamma| / s:
//                                    at most ~1e-8 relative; for gamma and beta, which the
//                                    forward pass uses linearly, ~u * S / 1e-6 ~ 3e-9 absolute.
// We require |fd - analytic| <= 1e-6 * (|analytic| + scale) + 1e-9, where scale
// is the largest |analytic| of the same gradient array (dx, dgamma, ...), so
// entries that are nearly zero by cancellation are judged at the array's scale,
// and the 1e-9 floor only matters for arrays that are zero altogether (a
// one-column LayerNorm). The worst case measured below uses 1.2% of that
// allowance (GRADCHECK_VERBOSE=1 prints each case's share), a margin of ~80,
// while a wrong term in any formula (a dropped mean(gh), a missing (1 - t^2), a
// swapped gamma/beta) errs by O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "check_helpers.hpp"

namespace {

using dyt_test::grad_buffers;
using dyt_test::matrix;
using dyt_test::rng;
using dyt::index_t;
using ref = dyt::reference;

constexpr double kRelTol = 1e-6;
constexpr double kAbsTol = 1e-9;
constexpr double kStep = 1e-6;

// --- per-layer calls: forward, and backward with or without saved statistics

template <class Kit>
void run_forward(Kit& k, const matrix<double>& x, matrix<double>& y) {
  REQUIRE(k.layer.forward(x.cview(), y.view()).ok());
}

// The gradients for dy at x; with `use_saved`, through statistics saved by forward.
void run_backward(dyt_test::dyt_kit<double, ref>& k, const matrix<double>& x, const matrix<double>& dy,
                  matrix<double>& dx, grad_buffers<double>& g, bool /*use_saved: DyT saves nothing*/) {
  const dyt::status s = k.layer.backward(x.cview(), dy.cview(), dx.view(), k.pointers(g));
  REQUIRE_MESSAGE(s.ok(), s.message());
}

void run_backward(dyt_test::layer_norm_kit<double, ref>& k, const matrix<double>& x, const matrix<double>& dy,
                  matrix<double>& dx, grad_buffers<double>& g, bool use_saved) {
  dyt::status s;
  if (use_saved) {
    std::vector<double> mean(static_cast<std::size_t>(x.rows)), rstd(static_cast<std::size_t>(x.rows));
    matrix<double> y(x.rows, x.cols);
    REQUIRE(k.layer.forward(x.cview(), y.view(), {mean.data(), rstd.data()}).ok());
    s = k.layer.backward(x.cview(), dy.cview(), dx.view(), k.pointers(g), dyt::grad_mode::overwrite,
                         {mean.data(), rstd.data()});
  } else {
    s = k.layer.backward(x.cview(), dy.cview(), dx.view(), k.pointers(g));
  }
  REQUIRE_MESSAGE(s.ok(), s.message());
}

void run_backward(dyt_test::rms_norm_kit<double, ref>& k, const matrix<double>& x, const matrix<double>& dy,
                  matrix<double>& dx, grad_buffers<double>& g, bool use_saved) {
  dyt::status s;
  if (use_saved) {
    std::vector<double> rstd(static_cast<std::size_t>(x.rows));
    matrix<double> y(x.rows, x.cols);
    REQUIRE(k.layer.forward(x.cview(), y.view(), {nullptr, rstd.data()}).ok());
    s = k.layer.backward(x.cview(), dy.cview(), dx.view(), k.pointers(g), dyt::grad_mode::overwrite,
                         {nullptr, rstd.data()});
  } else {
    s = k.layer.backward(x.cview(), dy.cview(), dx.view(), k.pointers(g));
  }
  REQUIRE_MESSAGE(s.ok(), s.message());
}

// --- the check itself

template <class Kit>
long double loss(Kit& k, const matrix<double>& x, const matrix<double>& w) {
  matrix<double> y(x.rows, x.cols);
  run_forward(k, x, y);
  long double sum = 0;
  for (index_t r = 0; r < x.rows; ++r)
    for (index_t c = 0; c < x.cols; ++c) sum += static_cast<long double>(w.at(r, c)) * y.at(r, c);
  return sum;
}

// The scale of each row on which the layer's output varies with that row's x (see the top).
double row_scale(const dyt_test::dyt_kit<double, ref>& k, const matrix<double>&, index_t) {
  return 1.0 / std::fabs(k.alpha[0]);
}
double row_scale(const dyt_test::layer_norm_kit<double, ref>& k, const matrix<double>& x, index_t r) {
  double mean = 0, var = 0;
  for (index_t c = 0; c < x.cols; ++c) mean += x.at(r, c) / double(x.cols);
  for (index_t c = 0; c < x.cols; ++c) var += (x.at(r, c) - mean) * (x.at(r, c) - mean) / double(x.cols);
  return std::sqrt(var + k.layer.eps());
}
double row_scale(const dyt_test::rms_norm_kit<double, ref>& k, const matrix<double>& x, index_t r) {
  double ms = 0;
  for (index_t c = 0; c < x.cols; ++c) ms += x.at(r, c) * x.at(r, c) / double(x.cols);
  return std::sqrt(ms + k.layer.eps());
}

// dL/dv by central differences with step kStep * scale; v is restored afterwards.
template <class Kit>
double finite_difference(Kit& k, const matrix<double>& x, const matrix<double>& w, double& v, double scale) {
  const double saved = v;
  const double h = kStep * scale;
  const double up = saved + h, down = saved - h;
  v = up;
  const long double l_up = loss(k, x, w);
  v = down;
  const long double l_down = loss(k, x, w);
  v = saved;
  return static_cast<double>((l_up - l_down) / (static_cast<long double>(up) - down));
}

struct comparison {
  double worst = 0;  // largest |fd - analytic| / allowed
  std::string where;
};

void compare(const char* what, std::size_t i, double fd, double analytic, double scale, comparison& cmp) {
  const double allowed = kRelTol * (std::fabs(analytic) + scale) + kAbsTol;
  const double ratio = std::fabs(fd - analytic) / allowed;
  if (!(ratio <= cmp.worst)) {  // NaN counts as worst
    cmp.worst = ratio;
    cmp.where = std::string(what) + "[" + std::to_string(i) + "]: fd " + std::to_string(fd) + ", analytic " +
                std::to_string(analytic) + ", error " + std::to_string(std::fabs(fd - analytic));
  }
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v) m = std::max(m, std::fabs(e));
  return m;
}

template <class Kit>
void check_gradients(Kit& k, matrix<double> x, rng& r, bool use_saved) {
  matrix<double> w(x.rows, x.cols);
  dyt_test::fill_uniform(w, r, -1.0, 1.0);

  matrix<double> dx(x.rows, x.cols);
  grad_buffers<double> g = k.make_grads();
  run_backward(k, x, w, dx, g, use_saved);

  comparison cmp;
  // dx
  {
    const double scale = max_abs(dx.buf);
    for (index_t row = 0; row < x.rows; ++row) {
      const double s = row_scale(k, x, row);
      for (index_t c = 0; c < x.cols; ++c) {
        const double f = finite_difference(k, x, w, x.at(row, c), s);
        compare("dx", static_cast<std::size_t>(row * x.cols + c), f, dx.at(row, c), scale, cmp);
      }
    }
  }
  // every parameter present
  const auto params = k.params();
  REQUIRE(params.size() == g.size());
  for (std::size_t p = 0; p < params.size(); ++p) {
    std::vector<double>& values = *params[p].values;
    REQUIRE(values.size() == g[p].size());
    const double scale = max_abs(g[p]);
    const std::string name = std::string("d") + params[p].name;
    for (std::size_t i = 0; i < values.size(); ++i)
      compare(name.c_str(), i, finite_difference(k, x, w, values[i], std::max(1.0, std::fabs(values[i]))), g[p][i],
              scale, cmp);
  }
  INFO("worst: ", cmp.where, " (", cmp.worst, " of the tolerance)");
  CHECK(cmp.worst <= 1.0);
  if (std::getenv("GRADCHECK_VERBOSE")) std::printf("%-10s %g  %s\n", Kit::name, cmp.worst, cmp.where.c_str());
}

// Inputs for a generic row: N(0, 1) scaled, with a shift so rows have a mean.
matrix<double> random_input(index_t rows, index_t cols, rng& r, double scale = 1.5, double shift = 0.3) {
  matrix<double> x(rows, cols);
  for (auto& e : x.buf) e = shift + scale * r.normal();
  return x;
}

// A row whose variance is ~1e-5, comparable to eps = 1e-5 (so eps shapes the
// gradient), offset from zero by 30 standard deviations (so the mean is
// subtracted with cancellation): r = 1/sqrt(var + eps) is ~200.
void make_small_variance_row(matrix<double>& x, index_t row, rng& r) {
  for (index_t c = 0; c < x.cols; ++c) x.at(row, c) = 0.1 + 3e-3 * r.normal();
}

// Give a kit's gain and shift signs of both kinds (the kits draw positive ones).
template <class Kit>
void randomize_params(Kit& k, rng& r) {
  for (auto& p : k.params())
    if (std::string(p.name) != "alpha")
      for (auto& v : *p.values) v = r.uniform(-1.5, 1.5);
}

const index_t kCols[] = {1, 2, 5, 17};

}  // namespace

TEST_CASE("gradcheck: DyT, every parameter variant, dx dalpha dgamma dbeta") {
  struct variant {
    const char* name;
    bool gamma, beta;
  };
  const variant variants[] = {{"gamma+beta", true, true}, {"gamma only", true, false}, {"none", false, false},
                              {"beta only", false, true}};
  rng r(101);
  for (const variant& v : variants)
    for (index_t cols : kCols)
      for (double alpha : {0.5, 1.7}) {
        INFO("variant: ", std::string(v.name));
        CAPTURE(cols);
        CAPTURE(alpha);
        dyt_test::dyt_kit<double, ref> k(cols, r, v.gamma, v.beta);
        randomize_params(k, r);
        k.alpha[0] = alpha;
        // |alpha x| up to ~5: both the linear middle and the saturated tails of tanh.
        check_gradients(k, random_input(3, cols, r), r, false);
      }
}

TEST_CASE("gradcheck: LayerNorm with and without affine, several eps, saved statistics or not") {
  struct variant {
    const char* name;
    bool gamma, beta;
  };
  const variant variants[] = {{"affine", true, true}, {"no affine", false, false}, {"gamma only", true, false},
                              {"beta only", false, true}};
  rng r(202);
  for (const variant& v : variants)
    for (index_t cols : kCols)
      for (double eps : {1e-5, 1e-2, 0.0})
        for (bool saved : {false, true}) {
          // Without eps, one column has zero variance (rstd infinite) and two
          // columns normalize to exactly +-1 whatever x is (dx is zero and the
          // differences only see rounding): both are degenerate, not tests.
          if (cols <= 2 && eps == 0.0) continue;
          INFO("variant: ", std::string(v.name));
          CAPTURE(cols);
          CAPTURE(eps);
          CAPTURE(saved);
          dyt_test::layer_norm_kit<double, ref> k(cols, r, v.gamma, v.beta, eps);
          randomize_params(k, r);
          matrix<double> x = random_input(3, cols, r);
          if (cols > 1) make_small_variance_row(x, 1, r);
          check_gradients(k, x, r, saved);
        }
}

TEST_CASE("gradcheck: RMSNorm plain, without gamma and in Gemma's (1 + gamma) form") {
  struct variant {
    const char* name;
    bool gamma;
    dyt::gamma_form form;
  };
  const variant variants[] = {{"plain", true, dyt::gamma_form::plain},
                              {"no gamma", false, dyt::gamma_form::plain},
                              {"one_plus", true, dyt::gamma_form::one_plus}};
  rng r(303);
  for (const variant& v : variants)
    for (index_t cols : kCols)
      for (double eps : {1e-6, 0.1, 0.0})
        for (bool saved : {false, true}) {
          INFO("variant: ", std::string(v.name));
          CAPTURE(cols);
          CAPTURE(eps);
          CAPTURE(saved);
          // One column without eps normalizes to sign(x): dx is zero, degenerate.
          if (cols == 1 && eps == 0.0) continue;
          dyt_test::rms_norm_kit<double, ref> k(cols, r, v.gamma, v.form, eps);
          randomize_params(k, r);
          matrix<double> x = random_input(3, cols, r);
          // A row of small magnitude, mean(x^2) ~ 1e-6: eps matters there.
          for (index_t c = 0; c < cols; ++c) x.at(2, c) = 1e-3 * r.normal();
          check_gradients(k, x, r, saved);
        }
}

TEST_CASE("gradcheck: parameter gradients summed over several backward chunks") {
  // 70 rows: the default plan has 2 chunks, so dgamma/dbeta/dalpha go through
  // the workspace slots and reduce_gradients' chunk-order sum.
  rng r(404);
  REQUIRE(dyt::make_backward_plan(70).chunks > 1);
  {
    dyt_test::dyt_kit<double, ref> k(3, r);
    randomize_params(k, r);
    check_gradients(k, random_input(70, 3, r), r, false);
  }
  {
    dyt_test::layer_norm_kit<double, ref> k(3, r);
    randomize_params(k, r);
    check_gradients(k, random_input(70, 3, r), r, true);
  }
  {
    dyt_test::rms_norm_kit<double, ref> k(3, r, true, dyt::gamma_form::one_plus);
    randomize_params(k, r);
    check_gradients(k, random_input(70, 3, r), r, false);
  }
}
