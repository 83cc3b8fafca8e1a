// Forward passes of DyT, LayerNorm and RMSNorm, and forward saving per-row
// statistics, against the float64 reference: every scalar type, every CPU
// backend, every test shape (support.hpp), dense and strided-misaligned views,
// in place, and every combination of parameters. Bounds follow the error
// model at the top of support.hpp; each k is derived where it is set.
#include <string>
#include <vector>

#include "layer_variants.hpp"
#include "support.hpp"

namespace {

using namespace dyt_test;

const layout kLayouts[] = {dense_aligned, strided_misaligned};

// Which statistics a layer's forward can save.
template <class Layer>
struct saved_by {
  static constexpr bool mean = false, rstd = false;
};
template <class T, class B>
struct saved_by<dyt::LayerNorm<T, B>> {
  static constexpr bool mean = true, rstd = true;
};
template <class T, class B>
struct saved_by<dyt::RMSNorm<T, B>> {
  static constexpr bool mean = false, rstd = true;
};

struct forward_truth {
  expected_output y;
  expected_output mean, rstd;  // 1 x rows, where the layer saves them
};

// Runs layer.forward out of place, again saving statistics where the layer
// has them, and in place (y == x), and checks: y and the statistics against
// the truth; saving statistics leaves y bit-identical; in place gives the same
// bits as out of place; nothing is written outside the output views; x is not
// modified. Returns the out-of-place y, for comparisons between backends.
template <class T, class Backend, class Layer>
guarded<T> forward_checked(const std::string& what, const Layer& layer, const problem<T>& p, layout lay,
                           const forward_truth& truth) {
  guarded<T> y(p.rows, p.cols, lay);
  REQUIRE(layer.forward(p.x.cview(), y.view()).ok());
  check_against<T, Backend>(what + " y", y, truth.y);

  using C = typename Layer::compute_type;
  using saves = saved_by<Layer>;
  if constexpr (saves::rstd) {
    guarded<T> y2(p.rows, p.cols, lay);
    guarded<C> mean(1, p.rows, lay), rstd(1, p.rows, lay);
    REQUIRE(layer.forward(p.x.cview(), y2.view(), {saves::mean ? mean.data() : nullptr, rstd.data()}).ok());
    CHECK_MESSAGE(y2.same_bits_as(y), label<T, Backend>(what) << ": saving statistics changed y; " << y2.difference_from(y));
    CHECK(y2.canaries_intact());
    check_against<T, Backend>(what + " rstd", rstd, truth.rstd, false);
    if constexpr (saves::mean) {
      check_against<T, Backend>(what + " mean", mean, truth.mean, false);
      // Either statistic alone: the same values, the other pointer untouched.
      guarded<C> mean_only(1, p.rows, lay), rstd_only(1, p.rows, lay);
      REQUIRE(layer.forward(p.x.cview(), y2.view(), {mean_only.data(), nullptr}).ok());
      REQUIRE(layer.forward(p.x.cview(), y2.view(), {nullptr, rstd_only.data()}).ok());
      CHECK(mean_only.same_bits_as(mean));
      CHECK(rstd_only.same_bits_as(rstd));
      CHECK(y2.same_bits_as(y));
    } else {
      CHECK(mean.canaries_intact());
    }
  }

  guarded<T> in_place(p.rows, p.cols, lay);
  in_place.copy_from(p.x);
  REQUIRE(layer.forward(in_place.cview(), in_place.view()).ok());
  CHECK_MESSAGE(in_place.same_bits_as(y), label<T, Backend>(what) << ": in place (y == x) differs from out of place; "
                                                                  << in_place.difference_from(y));
  CHECK(in_place.canaries_intact());
  CHECK_MESSAGE(p.x.values() == p.xd.v, label<T, Backend>(what) << ": x was modified");
  return y;
}

template <class T>
std::string case_name(const char* what) {
  return std::string(what) + "/" + type_name<T>();
}

// ---------------------------------------------------------------------------
// DyT

// policy_ulps: the bound of the tanh policy the tested backend uses (the
// reference's std::tanh in double is within 2.2 double ulp, no more than any
// policy's bound in float ulp).
template <class T>
forward_truth dyt_truth(const problem<T>& p, const dyt_variant& v, double policy_ulps) {
  forward_truth t{expected_output(p.rows, p.cols), {}, {}};
  const double* gamma = v.gamma ? p.gammad.data() : nullptr;
  const double* beta = v.beta ? p.betad.data() : nullptr;
  dyt::DyT<double, dyt::reference> ref(&p.alphad, gamma, beta, p.cols);
  REQUIRE(ref.forward(p.xd.cview(), t.y.ref.view()).ok());
  // y = gamma * t + beta, t = tanh(alpha x), in a compute type of unit roundoff u:
  //  - a = fl(alpha x) = alpha x (1 + d), |d| <= u, moves t by at most
  //    (1 - t^2) |alpha x| u <= u |t|, since (1 - t^2) a / t = 2a / sinh(2a) <= 1;
  //  - the policy is within p ulp of tanh(a), and an ulp is at most 2u |t|: 2p u |t|;
  //  - gamma * t rounds: u |gamma t|; + beta rounds: u (|gamma t| + |beta|).
  // In all (2p + 3) u (|gamma| |t| + |beta|); k = 2p + 4 with one unit of slack.
  const double k = 2 * policy_ulps + 4;
  for (index_t r = 0; r < p.rows; ++r)
    for (index_t c = 0; c < p.cols; ++c) {
      const double th = std::tanh(p.alphad * p.xd(r, c));
      const double g = v.gamma ? std::fabs(p.gammad(0, c)) : 1.0;
      const double b = v.beta ? std::fabs(p.betad(0, c)) : 0.0;
      t.y.set_bound(r, c, k, g * std::fabs(th) + b);
    }
  return t;
}

// DESIGN.md's DyT in plain float64: y = gamma tanh(alpha x) + beta.
template <class T>
void check_dyt_textbook(const problem<T>& p, const dyt_variant& v, const forward_truth& truth) {
  dense y(p.rows, p.cols);
  for (index_t r = 0; r < p.rows; ++r)
    for (index_t c = 0; c < p.cols; ++c)
      y.v[std::size_t(r * p.cols + c)] = (v.gamma ? p.gammad(0, c) : 1.0) * std::tanh(p.alphad * p.xd(r, c)) +
                                         (v.beta ? p.betad(0, c) : 0.0);
  check_textbook("DyT forward y", truth.y, y);
}

template <class T, class Backend, class Tanh>
guarded<T> dyt_forward(const problem<T>& p, const dyt_variant& v, layout lay, const forward_truth& truth) {
  const dyt::DyT<T, Backend, Tanh> layer(p.alpha.data(), v.gamma ? p.gamma.data() : nullptr,
                                         v.beta ? p.beta.data() : nullptr, p.cols);
  return forward_checked<T, Backend>("DyT forward (" + tanh_name<Tanh>() + ")", layer, p, lay, truth);
}

// DyT forward with tanh_fast is the same float operations, in the same order,
// on the vector body and the scalar loop: no reduction, one formula for tanh
// (ops/tanh.hpp), and a correctly rounded division on every target
// (lanes<V>::div; xsimd 8.1's own AArch64 float division is not). What the
// design cannot control is FMA contraction: GCC at -O3 vectorizes the scalar
// backend's loop itself and may fuse gamma * t + beta on one path and not the
// other. That is one float rounding of the affine terms on each path, so the
// paths agree within 2 u (|gamma t| + |beta|), u = 2^-24, or within one ulp of
// a 16-bit T after the store. Measured: bit-identical on AVX-512 at -O2 and
// without xsimd; up to 5 ulp of y (far inside the bound) where gamma t + beta
// cancels on AVX2 at -O3.
template <class T>
void check_fast_paths_agree(const std::string& what, const guarded<T>& a, const guarded<T>& b,
                            const forward_truth& truth) {
  std::int64_t worst = 0;
  const std::int64_t store_ulps = dyt::is_16bit_v<T> ? 1 : 0;
  for (index_t r = 0; r < a.rows(); ++r)
    for (index_t c = 0; c < a.cols(); ++c) {
      const std::int64_t d = ulp_distance(a.at(r, c), b.at(r, c));
      const double gap = std::fabs(double(a.get(r, c)) - double(b.get(r, c)));
      const bool within = d <= store_ulps || gap <= 2 * 0x1p-24 * truth.y.scale(r, c);
      if (d > worst) worst = d;
      CHECK_MESSAGE(within, what << " / " << type_name<T>() << ": cpu and cpu_scalar are " << d << " ulp apart at ("
                                 << r << ", " << c << "): " << a.get(r, c) << " vs " << b.get(r, c) << ", scale "
                                 << truth.y.scale(r, c));
      if (!within) return;
    }
  ratio_registry::get().note(what + " / " + type_name<T>() + " / cpu vs cpu_scalar, ulps", double(worst));
}

template <class T, class Tanh>
void dyt_forward_all_backends(const char* test, const dyt_variant& v, const shape& s, layout lay) {
  const std::uint64_t seed = seed_for(case_name<T>(test).c_str(), std::uint64_t(v.id), std::uint64_t(s.rows * 100000 + s.cols),
                                      std::uint64_t(lay.pad));
  INFO(type_name<T>() << ", " << tanh_name<Tanh>() << ", " << std::string(v.name) << ", " << s.rows << " x " << s.cols << ", "
                      << describe(lay) << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
  rng g(seed);
  const problem<T> p(layer_kind::dyt, s.rows, s.cols, lay, g);
  const forward_truth truth = dyt_truth(p, v, tanh_ulps<Tanh>);
  check_dyt_textbook(p, v, truth);
  const guarded<T> y_cpu = dyt_forward<T, dyt::cpu, Tanh>(p, v, lay, truth);
  const guarded<T> y_scalar = dyt_forward<T, dyt::cpu_scalar, Tanh>(p, v, lay, truth);
  dyt_forward<T, dyt::reference, Tanh>(p, v, lay, truth);
  const std::string what = "DyT forward (" + tanh_name<Tanh>() + ")";
  if (std::is_same<Tanh, dyt::tanh_fast>::value)
    check_fast_paths_agree(what, y_cpu, y_scalar, truth);
  else
    check_agreement<T, dyt::cpu, dyt::cpu_scalar>(what, y_cpu, y_scalar, truth.y);
}

TEST_CASE_TEMPLATE("DyT forward with its default tanh is within the derived bound of float64 on every backend", T,
                   float, double, dyt::bfloat16, dyt::half) {
  for (const dyt_variant& v : kDytVariants)
    for (const shape& s : test_shapes())
      for (const layout& lay : kLayouts) dyt_forward_all_backends<T, dyt::default_tanh_t<T>>("DyT forward", v, s, lay);
}

TEST_CASE("DyT<float> forward meets the bound of each tanh policy chosen explicitly") {
  for (const shape& s : test_shapes()) {
    dyt_forward_all_backends<float, dyt::tanh_fast>("DyT forward, fast", kDytVariants[0], s, strided_misaligned);
    dyt_forward_all_backends<float, dyt::tanh_precise>("DyT forward, precise", kDytVariants[0], s, strided_misaligned);
  }
}

TEST_CASE("DyT's default tanh policy is fast for 16-bit storage and precise for float and double") {
  CHECK(std::is_same<dyt::default_tanh_t<dyt::bfloat16>, dyt::tanh_fast>::value);
  CHECK(std::is_same<dyt::default_tanh_t<dyt::half>, dyt::tanh_fast>::value);
  CHECK(std::is_same<dyt::default_tanh_t<float>, dyt::tanh_precise>::value);
  CHECK(std::is_same<dyt::default_tanh_t<double>, dyt::tanh_precise>::value);
  CHECK(std::is_same<dyt::DyT<float, dyt::reference, dyt::tanh_fast>::tanh_policy, dyt::tanh_precise>::value);
}

// ---------------------------------------------------------------------------
// LayerNorm

// Row statistics in float64 for the bounds: m1 = rstd * mean|x| is how far the
// row sits from zero in units of its spread (m1 <= 1 + |mean| rstd).
struct ln_row {
  double mean, rstd, mean_abs, m1;
};

template <class T>
forward_truth layer_norm_truth(const problem<T>& p, const ln_variant& v) {
  forward_truth t{expected_output(p.rows, p.cols), expected_output(1, p.rows), expected_output(1, p.rows)};
  dyt::LayerNorm<double, dyt::reference> ref(v.gamma ? p.gammad.data() : nullptr, v.beta ? p.betad.data() : nullptr,
                                             p.cols, kLayerNormEps);
  REQUIRE(ref.forward(p.xd.cview(), t.y.ref.view(), {t.mean.ref.data(), t.rstd.ref.data()}).ok());
  const double n = double(p.cols);
  for (index_t r = 0; r < p.rows; ++r) {
    const double mean = t.mean.ref(0, r), rstd = t.rstd.ref(0, r);
    double mean_abs = 0;
    for (index_t c = 0; c < p.cols; ++c) mean_abs += std::fabs(p.xd(r, c)) / n;
    const double m1 = rstd * mean_abs;
    // mean = fl(fl(sum x) / n): the sum is within (n - 1) u sum|x|, the
    // division adds u |mean|: |error| <= n u mean|x|; k = n + 1.
    t.mean.set_bound(0, r, n + 1, mean_abs);
    // rstd = 1 / sqrt(fl(sum fl(d^2)) / n + eps), d = fl(x - mean_c):
    //  - d has relative error u, d^2 then 3u, the sum (n - 1) u, / n u: the
    //    variance about mean_c is within (n + 3) u; about mean_c it exceeds
    //    the true one by (mean_c - mean)^2 <= (n u mean|x|)^2, i.e. by a
    //    relative (n u m1)^2 of var + eps;
    //  - eps rounded to the compute type (u of eps), + eps rounds (u): (n + 5) u;
    //  - sqrt halves it and rounds (u), 1 / rounds (u):
    // rho = (n/2 + 4.5) u + (n u m1)^2 / 2, the relative error of rstd that
    // everything below inherits: rho = (rho0 + rho1 u) u.
    const double rho0 = n / 2 + 4.5, rho1 = n * n * m1 * m1 / 2;
    t.rstd.set_bound(0, r, rho0 + 1, rstd, rho1);
    // y = gamma * xh + beta, xh = fl(fl(x - mean_c) * rstd_c):
    //  - xh: mean's error times rstd, n u m1; the subtraction, the product and
    //    rstd's error, (rho + 2) u |xh|;
    //  - gamma * xh rounds, + beta rounds: 2u |gamma xh| + u |beta|.
    // Coefficients of u: |gamma| |xh|: rho0 + 4 + rho1 u; |gamma| m1: n;
    // |beta|: 1. So k = max(n, n/2 + 8.5) + 1 + rho1 u with scale
    // |gamma| (|xh| + m1) + |beta|.
    for (index_t c = 0; c < p.cols; ++c) {
      const double xh = (p.xd(r, c) - mean) * rstd;
      const double g = v.gamma ? std::fabs(p.gammad(0, c)) : 1.0;
      const double b = v.beta ? std::fabs(p.betad(0, c)) : 0.0;
      t.y.set_bound(r, c, std::max(n, rho0 + 4) + 1, g * (std::fabs(xh) + m1) + b, rho1);
    }
  }
  return t;
}

// DESIGN.md's LayerNorm in plain float64: mean, the variance about it, rstd =
// 1 / sqrt(var + eps), y = gamma (x - mean) rstd + beta.
template <class T>
void check_layer_norm_textbook(const problem<T>& p, const ln_variant& v, const forward_truth& truth) {
  dense y(p.rows, p.cols), mean(1, p.rows), rstd(1, p.rows);
  const double n = double(p.cols);
  for (index_t r = 0; r < p.rows; ++r) {
    double sum = 0, sq = 0;
    for (index_t c = 0; c < p.cols; ++c) sum += p.xd(r, c);
    const double mu = sum / n;
    for (index_t c = 0; c < p.cols; ++c) sq += (p.xd(r, c) - mu) * (p.xd(r, c) - mu);
    const double rs = 1 / std::sqrt(sq / n + kLayerNormEps);
    mean.v[std::size_t(r)] = mu;
    rstd.v[std::size_t(r)] = rs;
    for (index_t c = 0; c < p.cols; ++c)
      y.v[std::size_t(r * p.cols + c)] =
          (v.gamma ? p.gammad(0, c) : 1.0) * ((p.xd(r, c) - mu) * rs) + (v.beta ? p.betad(0, c) : 0.0);
  }
  check_textbook("LayerNorm forward y", truth.y, y);
  check_textbook("LayerNorm forward mean", truth.mean, mean);
  check_textbook("LayerNorm forward rstd", truth.rstd, rstd);
}

template <class T, class Backend>
guarded<T> layer_norm_forward(const problem<T>& p, const ln_variant& v, layout lay, const forward_truth& truth) {
  const dyt::LayerNorm<T, Backend> layer(v.gamma ? p.gamma.data() : nullptr, v.beta ? p.beta.data() : nullptr, p.cols,
                                         kLayerNormEps);
  return forward_checked<T, Backend>("LayerNorm forward", layer, p, lay, truth);
}

TEST_CASE_TEMPLATE("LayerNorm forward and its saved mean and rstd are within the derived bound of float64", T, float,
                   double, dyt::bfloat16, dyt::half) {
  for (const ln_variant& v : kLnVariants)
    for (const shape& s : test_shapes())
      for (const layout& lay : kLayouts) {
        const std::uint64_t seed = seed_for(case_name<T>("LayerNorm forward").c_str(), std::uint64_t(v.id),
                                            std::uint64_t(s.rows * 100000 + s.cols), std::uint64_t(lay.pad));
        INFO(type_name<T>() << ", " << std::string(v.name) << ", " << s.rows << " x " << s.cols << ", " << describe(lay)
                            << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
        rng g(seed);
        const problem<T> p(layer_kind::layer_norm, s.rows, s.cols, lay, g);
        const forward_truth truth = layer_norm_truth(p, v);
        check_layer_norm_textbook(p, v, truth);
        const guarded<T> y_cpu = layer_norm_forward<T, dyt::cpu>(p, v, lay, truth);
        const guarded<T> y_scalar = layer_norm_forward<T, dyt::cpu_scalar>(p, v, lay, truth);
        layer_norm_forward<T, dyt::reference>(p, v, lay, truth);
        check_agreement<T, dyt::cpu, dyt::cpu_scalar>("LayerNorm forward", y_cpu, y_scalar, truth.y);
      }
}

// Rows far from zero relative to their spread (mean +-1000, spread 1, 256
// columns). The derived bound on rstd (layer_norm_truth's rho) stays small:
// m1 ~ 1000 / 0.58 = 1.7e3, so rho <= (n/2 + 4.5) u + (n u m1)^2 / 2 ~ 3.7e-4.
// E[x^2] - E[x]^2 in float could not meet it: both terms are ~1e6, where
// float's spacing is 0.0625, so their difference lands on a multiple of
// 0.0625 and misses the variance (~0.33) by 6% or more.
template <class Backend>
void check_offset_rows() {
  const index_t rows = 2, cols = 256;
  const std::uint64_t seed = seed_for("LayerNorm offset rows");
  INFO(backend_name<Backend>() << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
  rng g(seed);
  guarded<float> x(rows, cols, strided_misaligned), y(rows, cols, strided_misaligned);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) x.set(r, c, (r ? -1000.0 : 1000.0) + g.uniform(-1, 1));
  const dense xd(x);
  dense y_ref(rows, cols), mean_ref(1, rows), rstd_ref(1, rows);
  REQUIRE(dyt::LayerNorm<double, dyt::reference>(nullptr, nullptr, cols, kLayerNormEps)
              .forward(xd.cview(), y_ref.view(), {mean_ref.data(), rstd_ref.data()})
              .ok());
  guarded<float> mean(1, rows), rstd(1, rows);
  REQUIRE(dyt::LayerNorm<float, Backend>(nullptr, nullptr, cols, kLayerNormEps).forward(x.cview(), y.view(), {mean.data(), rstd.data()}).ok());
  using model = error_model<float, Backend>;
  const double n = double(cols);
  for (index_t r = 0; r < rows; ++r) {
    double mean_abs = 0;
    for (index_t c = 0; c < cols; ++c) mean_abs += std::fabs(xd(r, c)) / n;
    const double m1 = rstd_ref(0, r) * mean_abs;
    const double k = n / 2 + 5.5 + n * n * m1 * m1 / 2 * model::u;  // rho0 + 1 + rho1 u, as in layer_norm_truth
    CAPTURE(r);
    CHECK(std::fabs(rstd.get(0, r) - rstd_ref(0, r)) <= model::compute_bound(k, rstd_ref(0, r)));
    CHECK(std::fabs(mean.get(0, r) - mean_ref(0, r)) <= model::compute_bound(n + 1, mean_abs));
  }
}

TEST_CASE("LayerNorm's variance keeps its accuracy when the mean dwarfs the spread") {
  check_offset_rows<dyt::cpu>();
  check_offset_rows<dyt::cpu_scalar>();
}

// ---------------------------------------------------------------------------
// RMSNorm

// The gain w multiplying column c: gamma, 1 + gamma, or 1.
template <class T>
double rms_gain(const problem<T>& p, const rms_variant& v, index_t c) {
  if (!v.gamma) return 1.0;
  return v.form == dyt::gamma_form::one_plus ? 1.0 + p.gammad(0, c) : p.gammad(0, c);
}

template <class T>
forward_truth rms_norm_truth(const problem<T>& p, const rms_variant& v) {
  forward_truth t{expected_output(p.rows, p.cols), {}, expected_output(1, p.rows)};
  dyt::RMSNorm<double, dyt::reference> ref(v.gamma ? p.gammad.data() : nullptr, p.cols, kRmsNormEps, v.form);
  REQUIRE(ref.forward(p.xd.cview(), t.y.ref.view(), {nullptr, t.rstd.ref.data()}).ok());
  const double n = double(p.cols);
  // rstd = 1 / sqrt(fl(sum fl(x^2)) / n + eps): x^2 rounds (u), the sum
  // (n - 1) u, / n (u), eps's conversion and + eps (2u), sqrt halves it and
  // rounds (u), 1 / rounds (u): rho = (n/2 + 3.5) u relative; k = rho + 1.
  const double rho = n / 2 + 3.5;
  for (index_t r = 0; r < p.rows; ++r) {
    const double rstd = t.rstd.ref(0, r);
    t.rstd.set_bound(0, r, rho + 1, rstd);
    // y = fl(fl(x rstd_c) w_c): rstd's rho, the product (u), w = fl(1 + gamma)
    // in Gemma's form (u), the product with w (u). Relative to |w xh| alone:
    // k = rho + 3 + 1.
    for (index_t c = 0; c < p.cols; ++c)
      t.y.set_bound(r, c, rho + 4, std::fabs(rms_gain(p, v, c) * p.xd(r, c) * rstd));
  }
  return t;
}

// DESIGN.md's RMSNorm in plain float64: rstd = 1 / sqrt(mean(x^2) + eps),
// y = w x rstd with w = gamma, 1 + gamma or 1.
template <class T>
void check_rms_norm_textbook(const problem<T>& p, const rms_variant& v, const forward_truth& truth) {
  dense y(p.rows, p.cols), rstd(1, p.rows);
  for (index_t r = 0; r < p.rows; ++r) {
    double sq = 0;
    for (index_t c = 0; c < p.cols; ++c) sq += p.xd(r, c) * p.xd(r, c);
    const double rs = 1 / std::sqrt(sq / double(p.cols) + kRmsNormEps);
    rstd.v[std::size_t(r)] = rs;
    for (index_t c = 0; c < p.cols; ++c) y.v[std::size_t(r * p.cols + c)] = rms_gain(p, v, c) * (p.xd(r, c) * rs);
  }
  check_textbook("RMSNorm forward y", truth.y, y);
  check_textbook("RMSNorm forward rstd", truth.rstd, rstd);
}

template <class T, class Backend>
guarded<T> rms_norm_forward(const problem<T>& p, const rms_variant& v, layout lay, const forward_truth& truth) {
  const dyt::RMSNorm<T, Backend> layer(v.gamma ? p.gamma.data() : nullptr, p.cols, kRmsNormEps, v.form);
  return forward_checked<T, Backend>("RMSNorm forward", layer, p, lay, truth);
}

TEST_CASE_TEMPLATE("RMSNorm forward and its saved rstd are within the derived bound of float64", T, float, double,
                   dyt::bfloat16, dyt::half) {
  for (const rms_variant& v : kRmsVariants)
    for (const shape& s : test_shapes())
      for (const layout& lay : kLayouts) {
        const std::uint64_t seed = seed_for(case_name<T>("RMSNorm forward").c_str(), std::uint64_t(v.id),
                                            std::uint64_t(s.rows * 100000 + s.cols), std::uint64_t(lay.pad));
        INFO(type_name<T>() << ", " << std::string(v.name) << ", " << s.rows << " x " << s.cols << ", " << describe(lay)
                            << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
        rng g(seed);
        const problem<T> p(layer_kind::rms_norm, s.rows, s.cols, lay, g);
        const forward_truth truth = rms_norm_truth(p, v);
        check_rms_norm_textbook(p, v, truth);
        const guarded<T> y_cpu = rms_norm_forward<T, dyt::cpu>(p, v, lay, truth);
        const guarded<T> y_scalar = rms_norm_forward<T, dyt::cpu_scalar>(p, v, lay, truth);
        rms_norm_forward<T, dyt::reference>(p, v, lay, truth);
        check_agreement<T, dyt::cpu, dyt::cpu_scalar>("RMSNorm forward", y_cpu, y_scalar, truth.y);
      }
}

// ---------------------------------------------------------------------------
// Row slices: what a caller's thread pool runs.

TEST_CASE_TEMPLATE("forward over row slices writes the same bits as one whole-tensor call", T, float, dyt::bfloat16) {
  const index_t rows = 37, cols = 65;
  const std::uint64_t seed = seed_for(case_name<T>("forward row slices").c_str());
  INFO(type_name<T>() << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
  rng g(seed);
  const problem<T> p(layer_kind::layer_norm, rows, cols, strided_misaligned, g);
  const dyt::DyT<T> dyt_layer(p.alpha.data(), p.gamma.data(), p.beta.data(), cols);
  const dyt::LayerNorm<T> ln_layer(p.gamma.data(), p.beta.data(), cols);
  const dyt::RMSNorm<T> rms_layer(p.gamma.data(), cols);
  auto check_layer = [&](const auto& layer, const char* name) {
    INFO(std::string(name));
    guarded<T> whole(rows, cols, strided_misaligned), sliced(rows, cols, strided_misaligned);
    REQUIRE(layer.forward(p.x.cview(), whole.view()).ok());
    const index_t cuts[] = {0, 1, 10, 11, 30, rows};
    for (int i = 0; i + 1 < 6; ++i)
      REQUIRE(layer.forward(p.x.cview().subrows(cuts[i], cuts[i + 1]), sliced.view().subrows(cuts[i], cuts[i + 1])).ok());
    CHECK_MESSAGE(sliced.same_bits_as(whole), sliced.difference_from(whole));
    CHECK(sliced.canaries_intact());
  };
  check_layer(dyt_layer, "DyT");
  check_layer(ln_layer, "LayerNorm");
  check_layer(rms_layer, "RMSNorm");
}

}  // namespace
