// gradcheck.hpp: the analytic gradient of the loss, from backward(), against
// central finite differences, for every entry of every parameter of a tiny
// model in double.
//
// Why the bound is 1e-6. With step h on one parameter the central difference
// (L(p+h) - L(p-h)) / 2h has two errors: truncation, h^2 L'''/6, and the
// rounding of the two losses, a few ulp of L (~2.5, so ~1e-15) over 2h. With
// h = 1e-5 (relative to the parameter when it exceeds 1; near the optimum
// (eps |L| / |L'''|)^(1/3)) both are 1e-11 to 1e-10 in absolute terms: the
// largest difference measured over all ~24,000 entries is below 1e-9. The
// relative error is |a - n| / max(|a| + |n|, 1e-3): a gradient of 1e-3 or
// more must agree to 1e-6 relative, a smaller one to 1e-9 absolute, which is
// 10x the finite difference's own noise. So a correct backward passes with
// room, and a wrong one (a dropped term, a wrong sign, a missing scale:
// relative errors of 1e-3 to 1 on the entries it touches) fails. The floor
// keeps an entry whose gradient is ~0 (attention's key bias, whose gradient
// is exactly 0 since softmax ignores a shift) from turning two noise terms
// into a meaningless ratio.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "data.hpp"
#include "model.hpp"

namespace tiny_lm {

constexpr double gradcheck_bound = 1e-6;
constexpr double gradcheck_step = 1e-5;
constexpr double gradcheck_floor = 1e-3;

struct gradcheck_result {
  double max_error = 0;       // over all entries
  double max_abs_diff = 0;    // |a - n|, the finite difference's noise when all is well
  std::string worst;          // "block1.w_up[3]"
  double norm_max_error = 0;  // over the norms' own parameters (alpha, gamma, beta)
  std::size_t entries = 0, norm_entries = 0;
};

// A tiny model, checked in two variants that between them take every path:
// untied output with the learnable embedding scale, and tied output without.
inline model_config gradcheck_config(int vocab, bool variant_b) {
  model_config cfg;
  cfg.vocab = vocab;
  cfg.layers = 2;
  cfg.width = 12;
  cfg.heads = 3;  // head width 4
  cfg.context = 6;
  cfg.mlp_ratio = 4;
  cfg.tied_output = variant_b;
  cfg.embed_scale = !variant_b;
  cfg.norms = {0.7f, 1.3f, 0.9f};  // distinct alphas: a swapped site would show
  return cfg;
}

template <template <class> class Norm>
gradcheck_result gradcheck_variant(bool variant_b, std::uint64_t seed) {
  const int vocab = 11, rows = 2;
  const model_config cfg = gradcheck_config(vocab, variant_b);
  transformer<double, Norm> model(cfg, seed);

  // Move every parameter away from its initial value: at the identity-like
  // start (gamma 1, beta 0, weights ~0.02) some terms of the gradient are
  // nearly zero and a bug in them would hide.
  rng random(seed + 1);
  model.for_each_param([&](const param_ref<double>& p) {
    for (Eigen::Index i = 0; i < p.value->size(); ++i) p.value->data()[i] += 0.3 * random.normal();
  });

  std::vector<int> tokens(std::size_t(rows * (cfg.context + 1)));
  for (int& t : tokens) t = int(random.below(std::size_t(vocab)));
  batch in;
  in.context = cfg.context;
  for (int r = 0; r < rows; ++r) add_window(in, tokens, std::size_t(r * (cfg.context + 1)));

  model.forward(in);
  model.backward();
  std::vector<Mat<double>> analytic;
  model.for_each_param([&](const param_ref<double>& p) { analytic.push_back(*p.grad); });

  gradcheck_result result;
  std::size_t tensor = 0;
  model.for_each_param([&](const param_ref<double>& p) {
    const bool is_norm_param = p.name.find("norm_") != std::string::npos;
    for (Eigen::Index i = 0; i < p.value->size(); ++i) {
      double& value = p.value->data()[i];
      const double saved = value;
      const double h = gradcheck_step * std::max(1.0, std::abs(saved));
      value = saved + h;
      const double loss_plus = model.forward(in);
      value = saved - h;
      const double loss_minus = model.forward(in);
      value = saved;
      const double numeric = (loss_plus - loss_minus) / (2 * h);
      const double a = analytic[tensor].data()[i];
      const double error = std::abs(a - numeric) / std::max(std::abs(a) + std::abs(numeric), gradcheck_floor);
      if (!(error <= result.max_error)) {  // also catches NaN
        result.max_error = error;
        result.worst = p.name + "[" + std::to_string(i) + "]";
      }
      result.max_abs_diff = std::max(result.max_abs_diff, std::abs(a - numeric));
      if (is_norm_param) {
        result.norm_max_error = std::max(result.norm_max_error, error);
        ++result.norm_entries;
      }
      ++result.entries;
    }
    ++tensor;
  });
  return result;
}

// Both variants of one norm; prints a line and returns whether it passed.
template <template <class> class Norm>
bool gradcheck_norm(std::uint64_t seed) {
  gradcheck_result total;
  for (bool variant_b : {false, true}) {
    const gradcheck_result r = gradcheck_variant<Norm>(variant_b, seed);
    if (!(r.max_error <= total.max_error)) {
      total.max_error = r.max_error;
      total.worst = r.worst + (variant_b ? " (tied)" : " (untied)");
    }
    total.norm_max_error = std::max(total.norm_max_error, r.norm_max_error);
    total.max_abs_diff = std::max(total.max_abs_diff, r.max_abs_diff);
    total.entries += r.entries;
    total.norm_entries += r.norm_entries;
  }
  const char* name = Norm<double>::name;
  const bool passed = total.max_error <= gradcheck_bound;
  std::printf(
      "%-9s %5zu entries (%3zu in the norms): max rel err %.2e at %s; norm params %.2e;"
      " max |a - n| %.1e; bound %.0e\n",
      name, total.entries, total.norm_entries, total.max_error, total.worst.c_str(), total.norm_max_error,
      total.max_abs_diff, gradcheck_bound);
  if (passed)
    std::printf("gradcheck passed: %s, max relative error %.2e <= %.0e\n", name, total.max_error, gradcheck_bound);
  else
    std::printf("gradcheck FAILED: %s, max relative error %.2e > %.0e\n", name, total.max_error, gradcheck_bound);
  return passed;
}

inline bool run_gradcheck(std::uint64_t seed) {
  std::printf(
      "gradient check: 2 layers, width 12, 3 heads, context 6, vocab 11, 2 windows, in double;\n"
      "every entry of every parameter, untied output + embedding scale and tied output without;\n"
      "central differences, h = %.0e * max(1, |p|); rel err = |a - n| / max(|a| + |n|, %.0e)\n",
      gradcheck_step, gradcheck_floor);
  bool ok = true;
  ok = gradcheck_norm<layer_norm_site>(seed) && ok;
  ok = gradcheck_norm<rms_norm_site>(seed) && ok;
  ok = gradcheck_norm<dyt_site>(seed) && ok;
  return ok;
}

}  // namespace tiny_lm
