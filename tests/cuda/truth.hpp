// tests/cuda/truth.hpp: the float64 truth and per-element error bounds of every
// layer's outputs, for the CUDA tests. The forward ones are the CPU tests' own
// derivations (tests/test_forward.cpp: the dyt_truth, layer_norm_truth and
// rms_norm_truth functions, copied here verbatim apart from the namespace,
// because that file holds them next to its TEST_CASEs); the backward ones are
// tests/backward_truth.hpp's, included. They are valid for the CUDA backend as
// they stand: the CUDA kernels run the same ops/ formulas in float; every bound
// on a sum counts at most n - 1 additions for each of n terms, which holds for
// any summation tree (the GPU's per-thread, butterfly and slot order included:
// adding an exact zero rounds nothing); and contracting a*b+c into one FMA
// (nvcc does) only removes roundings. One exception: DyT's dalpha, whose bound
// the CUDA tests widen where they take it (test_cuda.cu's dyt_kit::btruth,
// test_sweep.cu's widen_dalpha_for_cuda).
#pragma once

#include "../backward_truth.hpp"
#include "../layer_variants.hpp"
#include "../support.hpp"

namespace dyt_test {
namespace fwd {

// The layers' parameter variants (layer_variants.hpp), named fwd:: here as
// the CUDA tests spell them.
using dyt_test::dyt_variant;
using dyt_test::kDytVariants;
using dyt_test::kLnVariants;
using dyt_test::kRmsVariants;
using dyt_test::ln_variant;
using dyt_test::rms_variant;

struct forward_truth {
  expected_output y;
  expected_output mean, rstd;  // 1 x rows, where the layer saves them
};

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

}  // namespace fwd

// The backward truth is the CPU tests' own (tests/backward_truth.hpp), named
// bwd:: here as the CUDA tests spell it.
namespace bwd {
using dyt_test::backward_truth;
using dyt_test::dyt_truth;
using dyt_test::dyt_variant;
using dyt_test::kDytVariants;
using dyt_test::kGradNames;
using dyt_test::kLnVariants;
using dyt_test::kRmsVariants;
using dyt_test::layer_norm_truth;
using dyt_test::ln_variant;
using dyt_test::rms_norm_truth;
using dyt_test::rms_variant;
}  // namespace bwd
}  // namespace dyt_test
