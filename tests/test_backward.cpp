// Backward passes of DyT, LayerNorm and RMSNorm against the float64
// reference: dx and every parameter gradient, for every scalar type and CPU
// backend, at every test shape (support.hpp; 300 rows span 9 backward chunks),
// with dense and strided-misaligned views. On the strided-misaligned layout
// also: asking for fewer gradients changes none of the others' bits;
// grad_mode::accumulate adds to what the buffers held; saved statistics from
// forward give the same bits as recomputing them; dx == dy and dx == x give
// the same bits as out of place. Bounds follow the error model at the top of
// support.hpp; each k is derived where it is set (backward_truth.hpp).
#include <string>
#include <vector>

#include "backward_truth.hpp"
#include "support.hpp"

namespace {

using namespace dyt_test;
using dyt::grad_mode;

const layout kLayouts[] = {dense_aligned, strided_misaligned};

// One buffer per parameter gradient: dgamma and dbeta 1 x cols, dalpha 1 x 1.
template <class T>
struct grad_buffers {
  guarded<T> slot[3];

  grad_buffers(index_t cols, layout lay) : slot{guarded<T>(1, cols, lay), guarded<T>(1, cols, lay), guarded<T>(1, 1, lay)} {}
  T* ptr(unsigned want, int i) { return (want >> i) & 1u ? slot[i].data() : nullptr; }
};

// The layers' backward calls, with the gradients of `want` requested.
template <class T, class B, class P, class C>
dyt::status call_backward(const dyt::DyT<T, B, P>& layer, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                          dyt::rows_view<T> dx, grad_buffers<T>& g, unsigned want, grad_mode mode,
                          dyt::row_stats<const C>) {
  typename dyt::DyT<T, B, P>::gradients grads;
  grads.dgamma = g.ptr(want, 0);
  grads.dbeta = g.ptr(want, 1);
  grads.dalpha = g.ptr(want, 2);
  return layer.backward(x, dy, dx, grads, mode);
}
template <class T, class B, class C>
dyt::status call_backward(const dyt::LayerNorm<T, B>& layer, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                          dyt::rows_view<T> dx, grad_buffers<T>& g, unsigned want, grad_mode mode,
                          dyt::row_stats<const C> saved) {
  typename dyt::LayerNorm<T, B>::gradients grads;
  grads.dgamma = g.ptr(want, 0);
  grads.dbeta = g.ptr(want, 1);
  return layer.backward(x, dy, dx, grads, mode, saved);
}
template <class T, class B, class C>
dyt::status call_backward(const dyt::RMSNorm<T, B>& layer, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                          dyt::rows_view<T> dx, grad_buffers<T>& g, unsigned want, grad_mode mode,
                          dyt::row_stats<const C> saved) {
  typename dyt::RMSNorm<T, B>::gradients grads;
  grads.dgamma = g.ptr(want, 0);
  return layer.backward(x, dy, dx, grads, mode, saved);
}

// Whether a layer's forward saves statistics its backward can take.
template <class Layer>
struct keeps_stats : std::true_type {};
template <class T, class B, class P>
struct keeps_stats<dyt::DyT<T, B, P>> : std::false_type {};

// Checks one backward configuration of `layer` against the truth; with
// `properties`, also the request-subset, accumulate, saved-statistics and
// in-place behaviours (each against this backend's own full run). Returns dx
// and the gradients, for comparisons between backends.
template <class T, class Backend, class Layer>
std::pair<guarded<T>, grad_buffers<T>> backward_checked(const std::string& what, const Layer& layer,
                                                        const problem<T>& p, layout lay, const backward_truth& truth,
                                                        bool properties, rng& g) {
  using C = typename Layer::compute_type;
  using stats = dyt::row_stats<const C>;
  const unsigned all = truth.grads;
  const auto x = p.x.cview();
  const auto dy = p.dy.cview();

  guarded<T> dx(p.rows, p.cols, lay);
  grad_buffers<T> grads(p.cols, lay);
  REQUIRE(call_backward(layer, x, dy, dx.view(), grads, all, grad_mode::overwrite, stats{}).ok());
  check_against<T, Backend>(what + " dx", dx, truth.dx);
  for (int i = 0; i < 3; ++i)
    if ((all >> i) & 1u) check_against<T, Backend>(what + " " + kGradNames[i], grads.slot[i], truth.grad[i]);
  CHECK_MESSAGE(p.x.values() == p.xd.v, label<T, Backend>(what) << ": x was modified");
  CHECK_MESSAGE(p.dy.values() == p.dyd.v, label<T, Backend>(what) << ": dy was modified");
  CHECK(p.gamma.values() == p.gammad.v);
  CHECK(p.beta.values() == p.betad.v);
  if (!properties) return {std::move(dx), std::move(grads)};

  const std::string name = label<T, Backend>(what);
  const grad_buffers<T> untouched(p.cols, lay);

  // Asking for only some gradients (none included) gives the same dx and the
  // same bits for those asked, and leaves the others' buffers alone.
  for (unsigned want = 0; want < all; ++want) {
    if (want & ~all) continue;
    CAPTURE(want);
    guarded<T> dx2(p.rows, p.cols, lay);
    grad_buffers<T> g2(p.cols, lay);
    REQUIRE(call_backward(layer, x, dy, dx2.view(), g2, want, grad_mode::overwrite, stats{}).ok());
    CHECK_MESSAGE(dx2.same_bits_as(dx), name << ": dx depends on which gradients were asked for; " << dx2.difference_from(dx));
    for (int i = 0; i < 3; ++i) {
      const guarded<T>& expect = (want >> i) & 1u ? grads.slot[i] : untouched.slot[i];
      CHECK_MESSAGE(g2.slot[i].same_bits_as(expect), name << ": " << kGradNames[i] << " wrong for request " << want << "; "
                                                          << g2.slot[i].difference_from(expect));
      CHECK(g2.slot[i].canaries_intact());
    }
  }

  // grad_mode::accumulate: buffers holding `prior` end with prior + this
  // batch's gradient, summed in the compute type and rounded once to T.
  {
    grad_buffers<T> acc(p.cols, lay);
    for (int i = 0; i < 3; ++i)
      for (index_t c = 0; c < acc.slot[i].cols(); ++c) acc.slot[i].set(0, c, g.dy());
    const grad_buffers<T> prior = acc;
    guarded<T> dx2(p.rows, p.cols, lay);
    REQUIRE(call_backward(layer, x, dy, dx2.view(), acc, all, grad_mode::accumulate, stats{}).ok());
    CHECK_MESSAGE(dx2.same_bits_as(dx), name << ": dx differs under grad_mode::accumulate; " << dx2.difference_from(dx));
    using model = error_model<T, Backend>;
    // Float and double outputs computed in their own type: the result is
    // exactly the compute type's sum of the prior value and the overwritten
    // result, which is the unrounded total. Otherwise the overwritten result
    // was rounded to T (store_error of it), the sum rounds once in the compute
    // type (u of it) and is then rounded to T (store_error of it).
    constexpr bool exact = std::is_same<C, T>::value;
    for (int i = 0; i < 3; ++i) {
      if (!((all >> i) & 1u)) continue;
      error_check check(name + " " + kGradNames[i] + " accumulate");
      CHECK(acc.slot[i].canaries_intact());
      for (index_t c = 0; c < acc.slot[i].cols(); ++c) {
        const T before = prior.slot[i].at(0, c), once = grads.slot[i].at(0, c), got = acc.slot[i].at(0, c);
        if (exact) {
          const T sum = dyt::scalar_traits<T>::store(dyt::scalar_traits<T>::load(before) + dyt::scalar_traits<T>::load(once));
          check.add_exact(0, c, to_double(got), to_double(sum), same_bits(got, sum));
        } else {
          const double expect = to_double(before) + to_double(once), gd = to_double(got);
          const double m = std::max(std::fabs(gd), std::fabs(expect));
          const double e_once = model::store_error(std::fabs(to_double(once)));
          check.add(0, c, gd, expect, model::store_error(m) + e_once + model::u * (m + e_once));
        }
      }
    }
  }

  // Statistics saved by forward on the same backend give the same bits as recomputing them.
  if constexpr (keeps_stats<Layer>::value) {
    guarded<T> y(p.rows, p.cols, lay), dx2(p.rows, p.cols, lay);
    guarded<C> mean(1, p.rows, lay), rstd(1, p.rows, lay);
    const bool has_mean = std::is_same<Layer, dyt::LayerNorm<T, Backend>>::value;
    REQUIRE(layer.forward(x, y.view(), {has_mean ? mean.data() : nullptr, rstd.data()}).ok());
    grad_buffers<T> g2(p.cols, lay);
    REQUIRE(call_backward(layer, x, dy, dx2.view(), g2, all, grad_mode::overwrite,
                          stats{has_mean ? mean.data() : nullptr, rstd.data()})
                .ok());
    CHECK_MESSAGE(dx2.same_bits_as(dx), name << ": dx from saved statistics differs; " << dx2.difference_from(dx));
    for (int i = 0; i < 3; ++i)
      CHECK_MESSAGE(g2.slot[i].same_bits_as(grads.slot[i]), name << ": " << kGradNames[i] << " from saved statistics differs; "
                                                                 << g2.slot[i].difference_from(grads.slot[i]));
  }

  // In place: dx == dy, and dx == x.
  for (int aliased = 0; aliased < 2; ++aliased) {
    INFO(name << (aliased ? ": dx == x" : ": dx == dy"));
    guarded<T> shared(p.rows, p.cols, lay);
    shared.copy_from(aliased ? p.x : p.dy);
    grad_buffers<T> g2(p.cols, lay);
    REQUIRE(call_backward(layer, aliased ? shared.cview() : x, aliased ? dy : shared.cview(), shared.view(), g2, all,
                          grad_mode::overwrite, stats{})
                .ok());
    CHECK_MESSAGE(shared.same_bits_as(dx), "in-place dx differs; " << shared.difference_from(dx));
    CHECK(shared.canaries_intact());
    for (int i = 0; i < 3; ++i)
      CHECK_MESSAGE(g2.slot[i].same_bits_as(grads.slot[i]), kGradNames[i] << " differs in place; "
                                                                           << g2.slot[i].difference_from(grads.slot[i]));
  }
  return {std::move(dx), std::move(grads)};
}

// cpu against cpu_scalar: each within its bound of the truth.
template <class T>
void check_backends_agree(const std::string& what, const std::pair<guarded<T>, grad_buffers<T>>& a,
                          const std::pair<guarded<T>, grad_buffers<T>>& b, const backward_truth& truth) {
  check_agreement<T, dyt::cpu, dyt::cpu_scalar>(what + " dx", a.first, b.first, truth.dx);
  for (int i = 0; i < 3; ++i)
    if ((truth.grads >> i) & 1u)
      check_agreement<T, dyt::cpu, dyt::cpu_scalar>(what + " " + kGradNames[i], a.second.slot[i], b.second.slot[i],
                                                    truth.grad[i]);
}

// The reference's dx and gradients against the test's own textbook float64
// evaluation of DESIGN.md's formulas (check_textbook in support.hpp).
struct textbook_backward {
  dense dx, grad[3];
  textbook_backward(index_t rows, index_t cols) : dx(rows, cols), grad{dense(1, cols), dense(1, cols), dense(1, 1)} {}
  double& dx_at(index_t r, index_t c) { return dx.v[std::size_t(r * dx.cols + c)]; }
  double& grad_at(int i, index_t c) { return grad[i].v[std::size_t(c)]; }

  void check(const std::string& what, const backward_truth& truth) const {
    check_textbook(what + " dx", truth.dx, dx);
    for (int i = 0; i < 3; ++i)
      if ((truth.grads >> i) & 1u) check_textbook(what + " " + kGradNames[i], truth.grad[i], grad[i]);
  }
};

template <class T>
std::string case_name(const char* what) {
  return std::string(what) + "/" + type_name<T>();
}

// Runs `body(p, lay, properties, g)` for every shape and layout with a fresh problem and seed.
template <class T, class Body>
void for_each_problem(const char* test, layer_kind kind, int variant, const std::string& variant_name, Body&& body) {
  for (const shape& s : test_shapes())
    for (const layout& lay : kLayouts) {
      const std::uint64_t seed = seed_for(case_name<T>(test).c_str(), std::uint64_t(variant),
                                          std::uint64_t(s.rows * 100000 + s.cols), std::uint64_t(lay.pad));
      INFO(type_name<T>() << ", " << variant_name << ", " << s.rows << " x " << s.cols << ", " << describe(lay)
                          << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
      rng g(seed);
      const problem<T> p(kind, s.rows, s.cols, lay, g);
      body(p, lay, lay.pad != 0, g);
    }
}

// ---------------------------------------------------------------------------
// DyT (its truth: backward_truth.hpp)

// DESIGN.md's DyT backward: t = tanh(alpha x), g = dy gamma (1 - t^2),
// dx = alpha g, dalpha = sum x g (row sums first, as the bound assumes),
// dgamma = sum over rows of dy t, dbeta = sum over rows of dy.
template <class T>
void check_dyt_textbook(const problem<T>& p, const dyt_variant& v, const backward_truth& truth) {
  textbook_backward tb(p.rows, p.cols);
  double dalpha = 0;
  for (index_t r = 0; r < p.rows; ++r) {
    double row = 0;
    for (index_t c = 0; c < p.cols; ++c) {
      const double t = std::tanh(p.alphad * p.xd(r, c)), dy = p.dyd(r, c);
      const double g = dy * (v.gamma ? p.gammad(0, c) : 1.0) * (1 - t * t);
      tb.dx_at(r, c) = p.alphad * g;
      row += p.xd(r, c) * g;
      tb.grad_at(0, c) += dy * t;
      tb.grad_at(1, c) += dy;
    }
    dalpha += row;
  }
  tb.grad_at(2, 0) = dalpha;
  tb.check("DyT backward", truth);
}

template <class T, class Backend, class Tanh>
auto dyt_backward(const problem<T>& p, const dyt_variant& v, layout lay, const backward_truth& truth, bool properties,
                  rng& g) {
  const dyt::DyT<T, Backend, Tanh> layer(p.alpha.data(), v.gamma ? p.gamma.data() : nullptr,
                                         v.beta ? p.beta.data() : nullptr, p.cols);
  return backward_checked<T, Backend>("DyT backward (" + tanh_name<Tanh>() + ")", layer, p, lay, truth, properties, g);
}

template <class T, class Tanh>
void dyt_backward_all_backends(const char* test, const dyt_variant& v) {
  for_each_problem<T>(test, layer_kind::dyt, v.id, std::string(v.name) + ", " + tanh_name<Tanh>(),
                      [&](const problem<T>& p, layout lay, bool properties, rng& g) {
                        const backward_truth truth = dyt_truth(p, v, tanh_ulps<Tanh>);
                        check_dyt_textbook(p, v, truth);
                        const auto cpu = dyt_backward<T, dyt::cpu, Tanh>(p, v, lay, truth, properties, g);
                        const auto scalar = dyt_backward<T, dyt::cpu_scalar, Tanh>(p, v, lay, truth, properties, g);
                        dyt_backward<T, dyt::reference, Tanh>(p, v, lay, truth, properties, g);
                        check_backends_agree("DyT backward (" + tanh_name<Tanh>() + ")", cpu, scalar, truth);
                      });
}

TEST_CASE_TEMPLATE("DyT backward: dx, dalpha, dgamma and dbeta are within the derived bound of float64", T, float,
                   double, dyt::bfloat16, dyt::half) {
  for (const dyt_variant& v : kDytVariants) dyt_backward_all_backends<T, dyt::default_tanh_t<T>>("DyT backward", v);
}

TEST_CASE("DyT<float> backward meets the bound of each tanh policy chosen explicitly") {
  dyt_backward_all_backends<float, dyt::tanh_fast>("DyT backward, fast", kDytVariants[0]);
  dyt_backward_all_backends<float, dyt::tanh_precise>("DyT backward, precise", kDytVariants[0]);
}

// ---------------------------------------------------------------------------
// LayerNorm (its truth: backward_truth.hpp)

// DESIGN.md's LayerNorm backward: gh = dy gamma,
// dx = r (gh - mean(gh) - xh mean(gh xh)), dgamma = sum dy xh, dbeta = sum dy,
// with mean, var and r from the row (two passes).
template <class T>
void check_layer_norm_textbook(const problem<T>& p, const ln_variant& v, const backward_truth& truth) {
  textbook_backward tb(p.rows, p.cols);
  const double n = double(p.cols);
  for (index_t r = 0; r < p.rows; ++r) {
    double sum = 0, sq = 0, sum_gh = 0, sum_gh_xh = 0;
    for (index_t c = 0; c < p.cols; ++c) sum += p.xd(r, c);
    const double mu = sum / n;
    for (index_t c = 0; c < p.cols; ++c) sq += (p.xd(r, c) - mu) * (p.xd(r, c) - mu);
    const double rs = 1 / std::sqrt(sq / n + kLayerNormEps);
    auto xh = [&](index_t c) { return (p.xd(r, c) - mu) * rs; };
    auto gh = [&](index_t c) { return p.dyd(r, c) * (v.gamma ? p.gammad(0, c) : 1.0); };
    for (index_t c = 0; c < p.cols; ++c) {
      sum_gh += gh(c);
      sum_gh_xh += gh(c) * xh(c);
    }
    for (index_t c = 0; c < p.cols; ++c) {
      tb.dx_at(r, c) = rs * (gh(c) - sum_gh / n - xh(c) * (sum_gh_xh / n));
      tb.grad_at(0, c) += p.dyd(r, c) * xh(c);
      tb.grad_at(1, c) += p.dyd(r, c);
    }
  }
  tb.check("LayerNorm backward", truth);
}

template <class T, class Backend>
auto layer_norm_backward(const problem<T>& p, const ln_variant& v, layout lay, const backward_truth& truth,
                         bool properties, rng& g) {
  const dyt::LayerNorm<T, Backend> layer(v.gamma ? p.gamma.data() : nullptr, v.beta ? p.beta.data() : nullptr, p.cols,
                                         kLayerNormEps);
  return backward_checked<T, Backend>("LayerNorm backward", layer, p, lay, truth, properties, g);
}

TEST_CASE_TEMPLATE("LayerNorm backward: dx, dgamma and dbeta are within the derived bound of float64", T, float, double,
                   dyt::bfloat16, dyt::half) {
  for (const ln_variant& v : kLnVariants)
    for_each_problem<T>("LayerNorm backward", layer_kind::layer_norm, v.id, v.name,
                        [&](const problem<T>& p, layout lay, bool properties, rng& g) {
                          const backward_truth truth = layer_norm_truth(p, v);
                          check_layer_norm_textbook(p, v, truth);
                          const auto cpu = layer_norm_backward<T, dyt::cpu>(p, v, lay, truth, properties, g);
                          const auto scalar = layer_norm_backward<T, dyt::cpu_scalar>(p, v, lay, truth, properties, g);
                          layer_norm_backward<T, dyt::reference>(p, v, lay, truth, properties, g);
                          check_backends_agree("LayerNorm backward", cpu, scalar, truth);
                        });
}

// ---------------------------------------------------------------------------
// RMSNorm (its truth: backward_truth.hpp)

// DESIGN.md's RMSNorm backward: gh = dy w (w = gamma, 1 + gamma or 1),
// dx = r (gh - xh mean(gh xh)), dgamma = sum dy xh in both forms.
template <class T>
void check_rms_norm_textbook(const problem<T>& p, const rms_variant& v, const backward_truth& truth) {
  textbook_backward tb(p.rows, p.cols);
  const double n = double(p.cols);
  for (index_t r = 0; r < p.rows; ++r) {
    double sq = 0, sum_gh_xh = 0;
    for (index_t c = 0; c < p.cols; ++c) sq += p.xd(r, c) * p.xd(r, c);
    const double rs = 1 / std::sqrt(sq / n + kRmsNormEps);
    auto w = [&](index_t c) {
      if (!v.gamma) return 1.0;
      return v.form == dyt::gamma_form::one_plus ? 1 + p.gammad(0, c) : p.gammad(0, c);
    };
    for (index_t c = 0; c < p.cols; ++c) sum_gh_xh += p.dyd(r, c) * w(c) * (p.xd(r, c) * rs);
    for (index_t c = 0; c < p.cols; ++c) {
      const double xh = p.xd(r, c) * rs;
      tb.dx_at(r, c) = rs * (p.dyd(r, c) * w(c) - xh * (sum_gh_xh / n));
      tb.grad_at(0, c) += p.dyd(r, c) * xh;
    }
  }
  tb.check("RMSNorm backward", truth);
}

template <class T, class Backend>
auto rms_norm_backward(const problem<T>& p, const rms_variant& v, layout lay, const backward_truth& truth,
                       bool properties, rng& g) {
  const dyt::RMSNorm<T, Backend> layer(v.gamma ? p.gamma.data() : nullptr, p.cols, kRmsNormEps, v.form);
  return backward_checked<T, Backend>("RMSNorm backward", layer, p, lay, truth, properties, g);
}

TEST_CASE_TEMPLATE("RMSNorm backward: dx and dgamma are within the derived bound of float64", T, float, double,
                   dyt::bfloat16, dyt::half) {
  for (const rms_variant& v : kRmsVariants)
    for_each_problem<T>("RMSNorm backward", layer_kind::rms_norm, v.id, v.name,
                        [&](const problem<T>& p, layout lay, bool properties, rng& g) {
                          const backward_truth truth = rms_norm_truth(p, v);
                          check_rms_norm_textbook(p, v, truth);
                          const auto cpu = rms_norm_backward<T, dyt::cpu>(p, v, lay, truth, properties, g);
                          const auto scalar = rms_norm_backward<T, dyt::cpu_scalar>(p, v, lay, truth, properties, g);
                          rms_norm_backward<T, dyt::reference>(p, v, lay, truth, properties, g);
                          check_backends_agree("RMSNorm backward", cpu, scalar, truth);
                        });
}

}  // namespace
