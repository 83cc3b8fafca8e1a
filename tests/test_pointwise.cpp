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

#include "pointwise_truth.hpp"
#include "support.hpp"

namespace {

using namespace dyt_test;
using dyt::grad_mode;

const layout kLayouts[] = {dense_aligned, strided_misaligned};
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
  // The gradients: the same formulas on the same h and dy, summed in the same
  // order; only the compiler's FMA contraction may differ between the two
  // instantiations (dx's store differs; test_residual.cpp says the same of
  // DyT and the norms). Each side is then within (a + 8) u sum |t| of the
  // exact sum of its terms t (a: the additions a term passes through; 8 u:
  // the term's own roundings, f' included), so
  //   |g2 - g1| <= 2 (a + 8) u sum |t| + 2 half_ulp_T(|g|)   (then each store to T),
  // with |f'| <= 2 / sqrt(pi) < 1.13 (erf; isru's is <= 1) bounding the terms:
  //   dgamma[c], dbeta[c]: |dy| (|f| <= 1), a = rows;
  //   dalpha: 1.13 |x dy gamma|, dshift: 1.13 |dy gamma|, a = cols + rows.
  using C = typename dyt::backend_traits<B, T>::compute_type;
  const double u = std::is_same<C, double>::value ? 0x1p-53 : 0x1p-24;
  std::vector<double> col_abs(kCols, 0.0);
  double alpha_abs = 0, shift_abs = 0;
  for (index_t r = 0; r < kRows; ++r)
    for (index_t c = 0; c < kCols; ++c) {
      const double dyv = std::fabs(s.dy.get(r, c)), dyg = 1.13 * dyv * std::fabs(s.gamma.get(0, c));
      col_abs[std::size_t(c)] += dyv;
      alpha_abs += dyg * std::fabs(h.get(r, c));
      shift_abs += dyg;
    }
  for (int i = 0; i < 4; ++i)
    for (index_t c = 0; c < g1.slot[i].cols(); ++c) {
      const double a = g1.slot[i].get(0, c), b = g2.slot[i].get(0, c);
      const double terms = i < 2 ? col_abs[std::size_t(c)] : i == 2 ? alpha_abs : shift_abs;
      const double adds = i < 2 ? double(kRows) : double(kCols + kRows);
      const double bound = 2 * (adds + 8) * u * terms + 2 * half_ulp<T>(std::max(std::fabs(a), std::fabs(b)));
      CHECK_MESSAGE((std::fabs(a - b) <= bound || (std::isnan(a) && std::isnan(b))),
                    kGradNames[i] << "[" << c << "]: backward " << a << ", backward_residual " << b << ", bound " << bound);
    }
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
